// A flow as JSON: the text JSON.stringify gives for a flow the enricher
// made (agent/flows/enrich.ts; same keys, same order), in about half its
// time. The agent writes every flow to each follower and to the export
// file, and at 200,000 flows/s JSON.stringify alone took a third of a CPU.
// Two things make it cheap: the flow's shape is known, so there is no walk
// over keys; and most of a flow is shared: the enricher hands out frozen
// objects (a pod's name and labels, the policies, the rule, the TCP flag
// names) that many flows reference, whose JSON is made once and kept beside
// the object (a WeakMap, gone with it). Only frozen objects are cached,
// since only they cannot change after their text is made.
//
// flowText and peerText are the one place the shape is written down: they
// take every value as its JSON text already, so that the follower's writer
// (agent/flows/flow-codec.ts, in a worker thread) builds the same text from
// its own dictionary of parts.
import type { Flow, FlowPeer } from './flow.ts';

/** A flow's values as JSON texts (numbers and booleans as themselves). */
export interface FlowParts {
  time: string;
  node: string;
  type: string;
  verdict: string;
  reason: string;
  direction: string;
  endpoint: string | undefined;
  protocol: string;
  source: string;
  destination: string;
  tcpFlags: string | undefined;
  service: string | undefined;
  packets: number;
  bytes: number;
  isolated: boolean;
  policies: string;
  defaultDeny: boolean | undefined;
  rule: string | undefined;
  dns: string | undefined;
  fqdn: string | undefined;
}

export interface PeerParts {
  ip: string;
  port: number | undefined;
  identity: number;
  pod: string | undefined;
  labels: string | undefined;
  entity: string | undefined;
}

export function peerText(p: PeerParts): string {
  return `{"ip":${p.ip}${p.port !== undefined ? `,"port":${p.port}` : ''},"identity":${p.identity}${p.pod !== undefined ? `,"pod":${p.pod}` : ''}${p.labels !== undefined ? `,"labels":${p.labels}` : ''}${p.entity !== undefined ? `,"entity":${p.entity}` : ''}}`;
}

export function flowText(p: FlowParts): string {
  return `{"time":${p.time},"node":${p.node},"type":${p.type},"verdict":${p.verdict},"reason":${p.reason},"direction":${p.direction}${p.endpoint !== undefined ? `,"endpoint":${p.endpoint}` : ''},"protocol":${p.protocol},"source":${p.source},"destination":${p.destination}${p.tcpFlags !== undefined ? `,"tcpFlags":${p.tcpFlags}` : ''}${p.service !== undefined ? `,"service":${p.service}` : ''},"packets":${p.packets},"bytes":${p.bytes},"isolated":${p.isolated},"policies":${p.policies}${p.defaultDeny !== undefined ? `,"defaultDeny":${p.defaultDeny}` : ''}${p.rule !== undefined ? `,"rule":${p.rule}` : ''}${p.dns !== undefined ? `,"dns":${p.dns}` : ''}${p.fqdn !== undefined ? `,"fqdn":${p.fqdn}` : ''}}`;
}

const fragments = new WeakMap<object, string>();

/** The JSON of a part: made once for a frozen object, every time for another. */
export function sharedJson(value: object): string {
  if (!Object.isFrozen(value)) return JSON.stringify(value);
  let text = fragments.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    fragments.set(value, text);
  }
  return text;
}

const str = JSON.stringify as (value: string) => string;
const opt = (value: object | undefined) => (value === undefined ? undefined : sharedJson(value));

function peer(p: FlowPeer): string {
  return peerText({ ip: str(p.ip), port: p.port, identity: p.identity, pod: opt(p.pod), labels: opt(p.labels), entity: p.entity === undefined ? undefined : str(p.entity) });
}

/** `JSON.stringify(flow)` of a flow made by the enricher. */
export function flowJson(f: Flow): string {
  return flowText({
    time: str(f.time), node: str(f.node), type: str(f.type), verdict: str(f.verdict), reason: str(f.reason), direction: str(f.direction),
    endpoint: opt(f.endpoint), protocol: str(f.protocol), source: peer(f.source), destination: peer(f.destination),
    tcpFlags: opt(f.tcpFlags), service: f.service === undefined ? undefined : JSON.stringify(f.service),
    packets: f.packets, bytes: f.bytes, isolated: f.isolated, policies: sharedJson(f.policies), defaultDeny: f.defaultDeny, rule: opt(f.rule),
    dns: f.dns === undefined ? undefined : JSON.stringify(f.dns), fqdn: opt(f.fqdn),
  });
}
