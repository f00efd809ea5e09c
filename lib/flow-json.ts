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
import type { Flow, FlowPeer } from './flow.ts';

const fragments = new WeakMap<object, string>();

function shared(value: object): string {
  if (!Object.isFrozen(value)) return JSON.stringify(value);
  let text = fragments.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    fragments.set(value, text);
  }
  return text;
}

const str = JSON.stringify as (value: string) => string;

function peer(p: FlowPeer): string {
  let out = `{"ip":${str(p.ip)}`;
  if (p.port !== undefined) out += `,"port":${p.port}`;
  out += `,"identity":${p.identity}`;
  if (p.pod !== undefined) out += `,"pod":${shared(p.pod)}`;
  if (p.labels !== undefined) out += `,"labels":${shared(p.labels)}`;
  if (p.entity !== undefined) out += `,"entity":${str(p.entity)}`;
  return `${out}}`;
}

/** `JSON.stringify(flow)` of a flow made by the enricher. */
export function flowJson(f: Flow): string {
  let out = `{"time":${str(f.time)},"node":${str(f.node)},"type":${str(f.type)},"verdict":${str(f.verdict)},"reason":${str(f.reason)},"direction":${str(f.direction)}`;
  if (f.endpoint !== undefined) out += `,"endpoint":${shared(f.endpoint)}`;
  out += `,"protocol":${str(f.protocol)},"source":${peer(f.source)},"destination":${peer(f.destination)}`;
  if (f.tcpFlags !== undefined) out += `,"tcpFlags":${shared(f.tcpFlags)}`;
  if (f.service !== undefined) out += `,"service":${JSON.stringify(f.service)}`;
  out += `,"packets":${f.packets},"bytes":${f.bytes},"isolated":${f.isolated},"policies":${shared(f.policies)}`;
  if (f.defaultDeny !== undefined) out += `,"defaultDeny":${f.defaultDeny}`;
  if (f.rule !== undefined) out += `,"rule":${shared(f.rule)}`;
  return `${out}}`;
}
