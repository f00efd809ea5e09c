// Flows for a follower, handed from the agent's main thread to the worker
// that writes their JSON lines (flow-lines.ts), at a fraction of what
// writing them costs: the JSON and the TLS of a follower's lines took about
// 3.4 us a flow on the thread that also reads the datapath's events, which
// capped a followed node near 150,000 flows/s.
//
// Pure. FlowEncoder (main thread) turns a batch of flows into numbers, 30
// per flow in one Float64Array (moved to the worker, not copied), and the
// dictionary entries the worker has not seen yet: the JSON text of each
// string (node, reason, address, ...) and of each part the enricher shares
// (a pod's name and labels, the policies, the rule, the TCP flag names),
// under a number. FlowLineWriter (worker) keeps that dictionary and writes
// the lines with lib/flow-json.ts's flowText, so that they are exactly what
// JSON.stringify writes (agent/flows/flow-codec.test.ts).
//
// Numbers are kept per string and per frozen object as long as the encoder
// lives; past DICTIONARY_LIMIT entries both sides start over (a batch then
// carries `reset`), so neither grows with pods or addresses that come and go.
import type { Flow, FlowPeer } from '../../lib/flow.ts';
import { flowText, peerText } from '../../lib/flow-json.ts';

/** Numbers per flow in an encoded batch. */
export const FIELDS = 32;
export const DICTIONARY_LIMIT = 200_000;

/** A batch as it crosses to the worker. */
export interface EncodedBatch {
  /** The worker forgets its dictionary before this batch's entries. */
  reset: boolean;
  dictionary: Array<[number, string]>;
  count: number;
  data: Float64Array;
}

// Slots of a flow's numbers. 0 means "absent" for dictionary numbers (they start at 1), -1 for others.
const F = {
  TimePrefix: 0,
  TimeNanos: 1,
  Node: 2,
  Type: 3,
  Verdict: 4,
  Reason: 5,
  Direction: 6,
  Endpoint: 7,
  Protocol: 8,
  SrcIp: 9,
  SrcPort: 10,
  SrcIdentity: 11,
  SrcPod: 12,
  SrcLabels: 13,
  SrcEntity: 14,
  DstIp: 15,
  DstPort: 16,
  DstIdentity: 17,
  DstPod: 18,
  DstLabels: 19,
  DstEntity: 20,
  TcpFlags: 21,
  ServiceIp: 22,
  ServicePort: 23,
  Packets: 24,
  Bytes: 25,
  Isolated: 26,
  Policies: 27,
  DefaultDeny: 28,
  Rule: 29,
  Dns: 30,
  Fqdn: 31,
} as const;

/** RFC 3339 with nanoseconds as lib/flow.ts writes it: the part before the nanoseconds changes once a second. */
const TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z$/;

export class FlowEncoder {
  #strings = new Map<string, number>();
  #objects = new WeakMap<object, number>();
  #next = 1;
  #reset = false;
  #pending: Array<[number, string]> = [];

  encode(flows: readonly Flow[]): EncodedBatch {
    if (this.#next > DICTIONARY_LIMIT) {
      this.#strings = new Map();
      this.#objects = new WeakMap();
      this.#next = 1;
      this.#reset = true;
    }
    const data = new Float64Array(flows.length * FIELDS);
    let at = 0;
    for (const f of flows) {
      const time = TIME.exec(f.time);
      if (time) {
        data[at + F.TimePrefix] = this.#string(time[1]!);
        data[at + F.TimeNanos] = Number(time[2]);
      } else {
        data[at + F.TimePrefix] = -1;
        data[at + F.TimeNanos] = this.#string(f.time);
      }
      data[at + F.Node] = this.#string(f.node);
      data[at + F.Type] = this.#string(f.type);
      data[at + F.Verdict] = this.#string(f.verdict);
      data[at + F.Reason] = this.#string(f.reason);
      data[at + F.Direction] = this.#string(f.direction);
      data[at + F.Endpoint] = this.#object(f.endpoint);
      data[at + F.Protocol] = this.#string(f.protocol);
      this.#peer(data, at + F.SrcIp, f.source);
      this.#peer(data, at + F.DstIp, f.destination);
      data[at + F.TcpFlags] = this.#object(f.tcpFlags);
      data[at + F.ServiceIp] = f.service ? this.#string(f.service.ip) : 0;
      data[at + F.ServicePort] = f.service ? f.service.port : -1;
      data[at + F.Packets] = f.packets;
      data[at + F.Bytes] = f.bytes;
      data[at + F.Isolated] = f.isolated ? 1 : 0;
      data[at + F.Policies] = this.#object(f.policies);
      data[at + F.DefaultDeny] = f.defaultDeny === undefined ? -1 : f.defaultDeny ? 1 : 0;
      data[at + F.Rule] = this.#object(f.rule);
      data[at + F.Dns] = this.#object(f.dns);
      data[at + F.Fqdn] = this.#object(f.fqdn);
      at += FIELDS;
    }
    const batch = { reset: this.#reset, dictionary: this.#pending, count: flows.length, data };
    this.#reset = false;
    this.#pending = [];
    return batch;
  }

  // A peer's six slots from `at`: ip, port, identity, pod, labels, entity.
  #peer(data: Float64Array, at: number, p: FlowPeer): void {
    data[at] = this.#string(p.ip);
    data[at + 1] = p.port ?? -1;
    data[at + 2] = p.identity;
    data[at + 3] = this.#object(p.pod);
    data[at + 4] = this.#object(p.labels);
    data[at + 5] = p.entity === undefined ? 0 : this.#string(p.entity);
  }

  #string(s: string): number {
    let id = this.#strings.get(s);
    if (id === undefined) {
      id = this.#next++;
      this.#strings.set(s, id);
      this.#pending.push([id, JSON.stringify(s)]);
    }
    return id;
  }

  /** A frozen part keeps its number; any other object gets a new one each time (it may change). */
  #object(o: object | undefined): number {
    if (o === undefined) return 0;
    const frozen = Object.isFrozen(o);
    let id = frozen ? this.#objects.get(o) : undefined;
    if (id === undefined) {
      id = this.#next++;
      if (frozen) this.#objects.set(o, id);
      this.#pending.push([id, JSON.stringify(o)]);
    }
    return id;
  }
}

export class FlowLineWriter {
  #dictionary = new Map<number, string>();

  /** `{"flow":...}` lines, newline-terminated, of an encoded batch. */
  lines(batch: EncodedBatch): string {
    if (batch.reset) this.#dictionary = new Map();
    for (const [id, text] of batch.dictionary) this.#dictionary.set(id, text);
    const d = batch.data;
    const out: string[] = new Array(batch.count);
    for (let i = 0, at = 0; i < batch.count; i++, at += FIELDS) {
      const prefix = d[at + F.TimePrefix]!;
      // A time prefix is digits, dashes, colons and a T: its JSON is itself in quotes.
      const time = prefix < 0 ? this.#text(d[at + F.TimeNanos]!) : `${this.#text(prefix).slice(0, -1)}.${String(d[at + F.TimeNanos]).padStart(9, '0')}Z"`;
      const serviceIp = d[at + F.ServiceIp]!;
      const defaultDeny = d[at + F.DefaultDeny]!;
      out[i] = `{"flow":${flowText({
        time,
        node: this.#text(d[at + F.Node]!),
        type: this.#text(d[at + F.Type]!),
        verdict: this.#text(d[at + F.Verdict]!),
        reason: this.#text(d[at + F.Reason]!),
        direction: this.#text(d[at + F.Direction]!),
        endpoint: this.#optional(d[at + F.Endpoint]!),
        protocol: this.#text(d[at + F.Protocol]!),
        source: this.#peer(d, at + F.SrcIp),
        destination: this.#peer(d, at + F.DstIp),
        tcpFlags: this.#optional(d[at + F.TcpFlags]!),
        service: serviceIp === 0 ? undefined : `{"ip":${this.#text(serviceIp)},"port":${d[at + F.ServicePort]}}`,
        packets: d[at + F.Packets]!,
        bytes: d[at + F.Bytes]!,
        isolated: d[at + F.Isolated] === 1,
        policies: this.#text(d[at + F.Policies]!),
        defaultDeny: defaultDeny < 0 ? undefined : defaultDeny === 1,
        rule: this.#optional(d[at + F.Rule]!),
        dns: this.#optional(d[at + F.Dns]!),
        fqdn: this.#optional(d[at + F.Fqdn]!),
      })}}\n`;
    }
    return out.join('');
  }

  #peer(d: Float64Array, at: number): string {
    const port = d[at + 1]!;
    return peerText({
      ip: this.#text(d[at]!),
      port: port < 0 ? undefined : port,
      identity: d[at + 2]!,
      pod: this.#optional(d[at + 3]!),
      labels: this.#optional(d[at + 4]!),
      entity: this.#optional(d[at + 5]!),
    });
  }

  #text(id: number): string {
    const text = this.#dictionary.get(id);
    if (text === undefined) throw new Error(`flow lines: no dictionary entry ${id}`);
    return text;
  }

  #optional(id: number): string | undefined {
    return id === 0 ? undefined : this.#text(id);
  }
}
