// Pure: flows of several answers put together, and the account of what is
// missing from them. One request per namespace (-n a -n b) can return the
// same flow twice (a connection between a and b), so merging deduplicates;
// every answer is already in time order, and the merge keeps time order
// across nodes and answers.
import type { Flow } from '../lib/flow.ts';

/** What an agent lost, since it started (the pipeline's FlowLoss). */
export interface NodeLoss {
  kernel?: Record<string, number>;
  decoder?: number;
  consumer?: number;
}

/** The aggregated API's FlowList, as far as the plugin reads it. */
export interface FlowList {
  items: Flow[];
  nodes?: Record<string, { lost?: NodeLoss }>;
  unreachable?: string[];
}

export interface Merged {
  items: Flow[];
  lost: Map<string, Required<NodeLoss>>;
  unreachable: string[];
  /** Nodes that answered or were known to be unreachable. */
  nodes: string[];
}

/** Identical records are one flow (each carries its node and nanosecond time). */
export const flowKey = (f: Flow) => JSON.stringify(f);

const byTime = (a: Flow, b: Flow) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0);

export function mergeLists(lists: readonly FlowList[], last?: number): Merged {
  const seen = new Set<string>();
  let items: Flow[] = [];
  for (const list of lists) {
    for (const f of list.items) {
      const key = flowKey(f);
      if (seen.has(key)) continue;
      seen.add(key);
      items.push(f);
    }
  }
  // RFC 3339 with fixed-width nanoseconds in UTC sorts as text; sort is stable.
  items.sort(byTime);
  if (last !== undefined) items = items.slice(Math.max(0, items.length - last));
  const lost = new Map<string, Required<NodeLoss>>();
  for (const list of lists) {
    for (const [node, { lost: l = {} }] of Object.entries(list.nodes ?? {})) {
      // Each answer reports the same counters of the node; a later one may be higher.
      lost.set(node, maxLoss(lost.get(node), l));
    }
  }
  const unreachable = [...new Set(lists.flatMap((l) => l.unreachable ?? []))];
  const nodes = [...new Set([...lost.keys(), ...unreachable.map(unreachableNode)])].sort();
  return { items, lost, unreachable, nodes };
}

function maxLoss(a: Required<NodeLoss> | undefined, b: NodeLoss): Required<NodeLoss> {
  const kernel: Record<string, number> = { ...a?.kernel };
  for (const [type, n] of Object.entries(b.kernel ?? {})) kernel[type] = Math.max(kernel[type] ?? 0, n);
  return { kernel, decoder: Math.max(a?.decoder ?? 0, b.decoder ?? 0), consumer: Math.max(a?.consumer ?? 0, b.consumer ?? 0) };
}

/** `node-3: timed out` -> `node-3` */
export const unreachableNode = (entry: string) => entry.split(': ')[0]!;

/** What a --follow stream told about flows it could not deliver, and its agents' errors. */
export class FollowTally {
  readonly missed = new Map<string, number>();
  readonly errors: string[] = [];

  missedFlows(node: string | undefined, n: number): void {
    const key = node ?? 'unknown node';
    this.missed.set(key, (this.missed.get(key) ?? 0) + n);
  }

  error(node: string | undefined, message: string): string {
    const line = `${node ?? 'unknown node'}: ${message}`;
    this.errors.push(line);
    return line;
  }
}

/**
 * A --follow stream with one request per namespace sees a flow between two
 * of them twice; remembers the last `capacity` flows to print each once.
 */
export class RecentFlows {
  readonly #keys = new Set<string>();
  readonly #capacity: number;

  constructor(capacity = 50_000) {
    this.#capacity = capacity;
  }

  /** True the first time a flow is offered (within the last `capacity`). */
  first(f: Flow): boolean {
    const key = flowKey(f);
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    if (this.#keys.size > this.#capacity) this.#keys.delete(this.#keys.values().next().value!);
    return true;
  }
}

const count = (n: number) => n.toLocaleString('en-US');

/**
 * The lines to print on stderr about flows missing from the output: lost by
 * the agents (their counters since they started), missed by this follow,
 * and nodes that did not answer. Empty when nothing is missing.
 */
export function lossSummary(o: { lost?: ReadonlyMap<string, Required<NodeLoss>>; missed?: ReadonlyMap<string, number>; unreachable?: readonly string[]; errors?: readonly string[] }): string[] {
  const lines: string[] = [];
  for (const [node, l] of [...(o.lost ?? [])].sort(([a], [b]) => a.localeCompare(b))) {
    const kernel = Object.entries(l.kernel).filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b));
    const kernelTotal = kernel.reduce((sum, [, n]) => sum + n, 0);
    const total = kernelTotal + l.decoder + l.consumer;
    if (total === 0) continue;
    const where = [
      kernelTotal > 0 ? `${count(kernelTotal)} in the kernel, ring full (${kernel.map(([type, n]) => `${type} ${count(n)}`).join(', ')})` : '',
      l.decoder > 0 ? `${count(l.decoder)} undecodable` : '',
      l.consumer > 0 ? `${count(l.consumer)} not taken by slow followers` : '',
    ].filter(Boolean);
    lines.push(`lost: node ${node} lost ${count(total)} flows since its agent started: ${where.join('; ')}`);
  }
  const missed = [...(o.missed ?? [])].filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b));
  if (missed.length > 0) {
    const total = missed.reduce((sum, [, n]) => sum + n, 0);
    lines.push(`lost: this follow missed ${count(total)} flows because it or the API fell behind (${missed.map(([node, n]) => `node ${node}: ${count(n)}`).join(', ')})`);
  }
  for (const u of o.unreachable ?? []) lines.push(`unreachable: ${u} (its flows are missing)`);
  for (const e of o.errors ?? []) lines.push(`stream error: ${e}`);
  return lines;
}
