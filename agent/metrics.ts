// The agent's Prometheus metrics (/metrics on --metrics-listen), through
// prom-client: counters the datapath keeps (packets by reason, from
// pal_metrics; flow events lost, from pal_flow_lost) are read when scraped;
// the rest the agent counts as it goes. Names follow Prometheus conventions
// (palisade_ prefix, _total for counters, base units).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isDrop, reasonName, sumMetrics } from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import type { Flow } from '../lib/flow.ts';

export interface MetricsSources {
  loader: Loader;
  /** Entries and capacity of the maps the agent writes. */
  maps: () => Record<string, { entries: number; capacity: number | null }>;
  /** Flows lost by stage other than the kernel's (decoder, consumer, export). */
  flowLoss: () => Record<string, number>;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly #flows: Counter<'verdict' | 'direction' | 'type'>;
  readonly #realization: Histogram;
  readonly #datapathErrors: Counter<'operation'>;
  #sources: MetricsSources | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'palisade_agent_' });
    this.#flows = new Counter({ name: 'palisade_flows_total', help: 'Flows recorded by the agent, by verdict, direction (the hook that judged) and type.', labelNames: ['verdict', 'direction', 'type'], registers });
    this.#realization = new Histogram({
      name: 'palisade_policy_realization_seconds',
      help: 'From the first watch event of a batch (NetworkPolicy, Pod, Namespace, identity, Service) to its map writes done.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#datapathErrors = new Counter({ name: 'palisade_datapath_errors_total', help: 'Failed datapath operations (load, attach, map write), by operation.', labelNames: ['operation'], registers });
    const self = this;
    new Counter({
      name: 'palisade_packets_total',
      help: 'Packets judged by the endpoint programs, and dropped by the XDP prefilter (DROP_PREFILTER), by verdict and reason (the datapath\'s pal_metrics).',
      labelNames: ['verdict', 'reason'],
      registers,
      async collect() {
        if (!self.#sources) return;
        this.reset();
        for (const entry of await self.#sources.loader.dump('pal_metrics')) {
          const code = entry.key.readUInt32LE(0);
          const name = reasonName(code);
          const packets = sumMetrics(entry.value).packets;
          if (name && packets > 0n) this.inc({ verdict: isDrop(code) ? 'dropped' : 'forwarded', reason: name }, Number(packets));
        }
      },
    });
    new Counter({
      name: 'palisade_flows_lost_total',
      help: 'Flow events lost, by stage: kernel (the ring was full, by event type), decoder, consumer (a follower fell behind), export.',
      labelNames: ['stage', 'type'],
      registers,
      async collect() {
        if (!self.#sources) return;
        this.reset();
        for (const entry of await self.#sources.loader.dump('pal_flow_lost')) {
          let n = 0n;
          for (let at = 0; at < entry.value.length; at += 8) n += entry.value.readBigUInt64LE(at);
          if (n > 0n) this.inc({ stage: 'kernel', type: String(entry.key.readUInt32LE(0)) }, Number(n));
        }
        for (const [stage, n] of Object.entries(self.#sources.flowLoss())) if (n > 0) this.inc({ stage, type: '' }, n);
      },
    });
    for (const [name, help, field] of [
      ['palisade_map_entries', 'Entries of each map the agent writes.', 'entries'],
      ['palisade_map_capacity', 'max_entries of each map the agent writes.', 'capacity'],
    ] as const) {
      new Gauge({
        name,
        help,
        labelNames: ['map'],
        registers,
        collect() {
          if (!self.#sources) return;
          for (const [map, fill] of Object.entries(self.#sources.maps())) {
            const value = fill[field];
            if (value !== null) this.set({ map }, value);
          }
        },
      });
    }
  }

  /** What is read at scrape time; until set, only the agent's own counters are exported. */
  attach(sources: MetricsSources): void {
    this.#sources = sources;
  }

  flows(batch: readonly Flow[]): void {
    // Counted per label set once per batch: a batch holds thousands of flows of a few kinds,
    // told apart by object identity (no string built per flow).
    const counts = new Map<string, Map<string, Map<string, number>>>();
    for (const f of batch) {
      let byDirection = counts.get(f.verdict);
      if (!byDirection) counts.set(f.verdict, (byDirection = new Map()));
      let byType = byDirection.get(f.direction);
      if (!byType) byDirection.set(f.direction, (byType = new Map()));
      byType.set(f.type, (byType.get(f.type) ?? 0) + 1);
    }
    for (const [verdict, byDirection] of counts) {
      for (const [direction, byType] of byDirection) for (const [type, n] of byType) this.#flows.inc({ verdict, direction, type }, n);
    }
  }

  realized(seconds: number): void {
    this.#realization.observe(seconds);
  }

  datapathError(operation: 'load' | 'attach' | 'write'): void {
    this.#datapathErrors.inc({ operation });
  }

  /**
   * Serves /metrics, and for the kubelet's probes /healthz (live: the agent
   * can still drive its datapath) and /readyz (ready: it serves CNI); each
   * check answers undefined when good, else why not (a 503 with that text).
   */
  async serve(listen: { host: string; port: number }, health: { live: () => string | undefined; ready: () => string | undefined } = { live: () => undefined, ready: () => undefined }): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url === '/healthz' || req.url === '/readyz') {
        const why = req.url === '/healthz' ? health.live() : health.ready();
        res.writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(why === undefined ? 'ok\n' : `${why}\n`);
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String((error as Error).message)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
    return server;
  }
}
