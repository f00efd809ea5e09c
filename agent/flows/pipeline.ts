// The agent's flow pipeline: the datapath's events (palisade-flow-reader on
// the pinned ring), decoded in batches, each drop counted for what it
// stands for (drop-totals.ts), enriched (enrich.ts) and kept in the store
// (store.ts), and written to the export file if there is one. Once a
// second it reads what the kernel lost (pal_flow_lost) and the drops no
// event reported (pal_drop_agg), which become drop-summary flows. Nothing
// here waits on a consumer: the store and its followers never block.
import { join } from 'node:path';
import { dropAgg, dropAggKey, FLOW_FLAG, FLOW_TYPE, FLOW_TYPES, type FlowEvent } from '../../datapath/abi.ts';
import { FlowReader } from '../../datapath/flow-reader.ts';
import type { Loader } from '../../datapath/loader-client.ts';
import type { Flow } from '../../lib/flow.ts';
import { DropTotals } from './drop-totals.ts';
import { enrichFlow, type FlowContext } from './enrich.ts';
import { FlowStore } from './store.ts';

/** Flows lost, by stage (the metric palisade_flows_lost_total). */
export interface FlowLoss {
  /** Events the kernel could not write (ring full), by event type name. */
  kernel: Record<string, number>;
  /** Records the agent could not decode. */
  decoder: number;
  /** Flows pushed out of the store before anyone read them is not loss; followers that fell behind: */
  consumer: number;
}

export interface FlowPipelineOptions {
  loader: Loader;
  pinDir: string;
  context: FlowContext;
  storeSize: number;
  /** Every flow, as it is stored (the JSON-lines export). */
  onFlows?: (flows: Flow[]) => void;
  log: (line: string) => void;
  readerBinary?: string;
}

const TYPE_NAMES: Record<number, string> = { [FLOW_TYPE.NEW]: 'new', [FLOW_TYPE.DROP]: 'drop', [FLOW_TYPE.END]: 'end', [FLOW_TYPE.UPDATE]: 'update', [FLOW_TYPE.DROP_SUMMARY]: 'drop-summary' };

export class FlowPipeline {
  readonly store: FlowStore;
  readonly #o: FlowPipelineOptions;
  readonly #reader: FlowReader;
  readonly #drops = new DropTotals();
  /** The last drop event of each pal_drop_agg key: what a summary of its tail repeats (with current names). */
  readonly #samples = new Map<string, FlowEvent>();
  readonly #timer: NodeJS.Timeout;
  #kernelLost: Record<string, number> = {};
  #polling: Promise<void> = Promise.resolve();
  /** Events decoded, by type name (the metric palisade_flow_events_total). */
  readonly events: Record<string, number> = {};
  consumerMissed = 0;

  constructor(options: FlowPipelineOptions) {
    this.#o = options;
    this.store = new FlowStore(options.storeSize);
    this.#reader = new FlowReader({
      ringPath: join(options.pinDir, 'pal_flows'),
      binary: options.readerBinary,
      onEvents: (events) => this.#ingest(events),
      onLog: (line) => options.log(`flows: ${line}`),
    });
    void this.#reader.exited.then((how) => this.#stopped || options.log(`flows: the ring reader exited (${how}); no more flows until the agent restarts`));
    this.#timer = setInterval(() => (this.#polling = this.#poll().catch((error: unknown) => options.log(`flows: cannot read the datapath's counters: ${(error as Error).message}`))), 1000);
  }

  #stopped = false;

  loss(): FlowLoss {
    return { kernel: { ...this.#kernelLost }, decoder: this.#reader.malformed, consumer: this.consumerMissed };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#polling;
    await this.#reader.stop();
  }

  /** Flows made elsewhere in the agent (the DNS proxy's): stored and handed on like the datapath's. */
  add(flows: Flow[]): void {
    if (flows.length === 0) return;
    for (const f of flows) this.events[f.type] = (this.events[f.type] ?? 0) + 1;
    this.store.add(flows);
    this.#o.onFlows?.(flows);
  }

  #ingest(events: FlowEvent[]): void {
    const flows: Flow[] = [];
    for (const event of events) {
      const type = TYPE_NAMES[event.type] ?? String(event.type);
      this.events[type] = (this.events[type] ?? 0) + 1;
      let packets: bigint | undefined;
      if (event.type === FLOW_TYPE.DROP && event.flags & FLOW_FLAG.RUNNING_TOTAL) {
        const key = dropKey(event);
        packets = this.#drops.event(key, event.packets);
        this.#samples.set(key, event);
      }
      flows.push(enrichFlow(event, this.#o.context, packets));
    }
    this.store.add(flows);
    this.#o.onFlows?.(flows);
  }

  async #poll(): Promise<void> {
    const { loader } = this.#o;
    const lost: Record<string, number> = {};
    for (const entry of await loader.dump('pal_flow_lost')) {
      const type = entry.key.readUInt32LE(0);
      let n = 0n;
      for (let at = 0; at < entry.value.length; at += 8) n += entry.value.readBigUInt64LE(at);
      if (n > 0n && type < FLOW_TYPES) lost[TYPE_NAMES[type] ?? String(type)] = Number(n);
    }
    this.#kernelLost = lost;
    const entries = (await loader.dump('pal_drop_agg')).map((e) => ({ key: e.key, total: dropAgg.decode(e.value).total }));
    const present = new Set(entries.map((e) => e.key.toString('hex')));
    for (const key of this.#samples.keys()) if (!present.has(key)) this.#samples.delete(key);
    const tails = this.#drops.read(entries);
    if (tails.length === 0) return;
    const now = BigInt(Date.now()) * 1_000_000n;
    this.#ingest(tails.map(({ key, drops }) => {
      const sample = this.#samples.get(dropAggKey.encode(key).toString('hex'));
      if (sample) return { ...sample, timeNs: now, packets: drops, bytes: 0n, type: FLOW_TYPE.DROP_SUMMARY, flags: sample.flags & ~FLOW_FLAG.RUNNING_TOTAL };
      // No event of the key seen (the agent started since): what the key says. The peer stands on the pod's far side.
      return {
        timeNs: now, packets: drops, bytes: 0n, ifindex: key.ifindex,
        saddr: key.direction === 0 ? key.peer : '0.0.0.0', daddr: key.direction === 0 ? '0.0.0.0' : key.peer,
        sport: 0, dport: key.dport, srcIdentity: 0, dstIdentity: 0, ruleId: 0, natAddr: '0.0.0.0', natPort: 0,
        protocol: key.protocol, direction: key.direction, type: FLOW_TYPE.DROP_SUMMARY, reason: key.reason, tcpFlags: 0, flags: 0,
      };
    }));
  }
}

/** pal_drop_agg's key of a drop event (flows.h flow_drop): the peer is the far side of the hook. */
function dropKey(e: FlowEvent): string {
  const peer = e.direction === 0 ? e.saddr : e.daddr;
  return dropAggKey.encode({ ifindex: e.ifindex, peer, dport: e.dport, protocol: e.protocol, reason: e.reason, direction: e.direction }).toString('hex');
}
