// The `flows` benchmark's agent (e2e/bench/flows.ts), a process of its own
// so that its memory and CPU are the pipeline's alone: the real FlowPipeline
// (palisade-flow-reader on the benchmark's pinned ring, decode, enrich, the
// store) with the agent's Prometheus counting of every flow (as agent.ts
// wires onFlows) and the real flow API (serveFlows) for followers. Its
// loader loads the datapath object into the benchmark's pin directory, as
// a restarted agent does, so it reads the same maps (pal_flow_lost,
// pal_drop_agg).
//
// Driven over the IPC channel: {id, cmd: 'snapshot' | 'memory' | 'stop'},
// answered {id, ...}. Times are simple timers around the pipeline's stages,
// set here on the prototypes the pipeline uses (no pipeline code changed):
// decode (FlowRecordDecoder.push per chunk), count + enrich (from the end
// of a chunk's decode to its store.add), store (FlowStore.add, which also
// queues for followers), metrics (onFlows).
import { readdir, readFile } from 'node:fs/promises';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { loadGlobals } from '../../datapath/abi.ts';
import { FlowRecordDecoder } from '../../datapath/flow-records.ts';
import { Loader } from '../../datapath/loader-client.ts';
import { ENDPOINT_OBJECT } from '../../datapath/scratch-datapath.ts';
import { RuleIndex, type FlowContext, type PodFacts } from '../../agent/flows/enrich.ts';
import { FlowPipeline } from '../../agent/flows/pipeline.ts';
import { serveFlows } from '../../agent/flows/server.ts';
import { FlowStore } from '../../agent/flows/store.ts';
import { AgentMetrics } from '../../agent/metrics.ts';
import type { PolicyRef } from '../../policy/types.ts';
import { heapUsed } from './heap.ts';

export interface AgentArgs {
  pinDir: string;
  storeSize: number;
  cert: string;
  key: string;
  token: string;
  /** The endpoint's pod, its address, and the peers: address -> pod name (namespace shop). */
  pod: { name: string; ip: string; ifindex: number };
  peers: Array<{ ip: string; pod: string }>;
  policy: PolicyRef;
}

export interface StageTimes {
  chunks: number;
  bytes: number;
  flows: number;
  decodeMs: number;
  enrichMs: number;
  storeMs: number;
  metricsMs: number;
}

export interface AgentSnapshot {
  seq: number;
  size: number;
  events: Record<string, number>;
  loss: { kernel: Record<string, number>; decoder: number; consumer: number };
  followers: number;
  /** Cumulative: event loop idle and active ms. */
  elu: { idle: number; active: number };
  /** Cumulative process CPU, µs. */
  cpu: { user: number; system: number };
  gc: { ms: number; majorMs: number; count: number; major: number; maxMs: number };
  stage: StageTimes;
  /** Event loop delay since the last snapshot with reset (ms). */
  delay: { max: number; p99: number };
  rss: number;
  heapUsed: number;
  readerPid: number | undefined;
}

const args = JSON.parse(process.argv[2]!) as AgentArgs;

// ---- stage timers
const stage: StageTimes = { chunks: 0, bytes: 0, flows: 0, decodeMs: 0, enrichMs: 0, storeMs: 0, metricsMs: 0 };
let decodeEnd: number | undefined;
const push = FlowRecordDecoder.prototype.push;
FlowRecordDecoder.prototype.push = function (this: FlowRecordDecoder, chunk: Buffer) {
  const t0 = performance.now();
  const result = push.call(this, chunk);
  const t1 = performance.now();
  stage.decodeMs += t1 - t0;
  stage.chunks++;
  stage.bytes += chunk.length;
  decodeEnd = result.events.length > 0 ? t1 : undefined;
  return result;
};
const add = FlowStore.prototype.add;
FlowStore.prototype.add = function (this: FlowStore, flows) {
  const t2 = performance.now();
  if (decodeEnd !== undefined) stage.enrichMs += t2 - decodeEnd;
  decodeEnd = undefined;
  add.call(this, flows);
  stage.storeMs += performance.now() - t2;
  stage.flows += flows.length;
};

const gc = { ms: 0, majorMs: 0, count: 0, major: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.ms += entry.duration;
    gc.count++;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
    if (((entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0) & constants.NODE_PERFORMANCE_GC_MAJOR) {
      gc.majorMs += entry.duration;
      gc.major++;
    }
  }
}).observe({ entryTypes: ['gc'] });
const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();

// ---- the context: one endpoint, its peers' pods with labels, one policy
const pods = new Map<string, PodFacts>();
const owners = new Map<string, string>();
const podKey = `shop/${args.pod.name}`;
pods.set(podKey, { namespace: 'shop', name: args.pod.name, labels: { app: args.pod.name, 'app.kubernetes.io/part-of': 'shop', 'pod-template-hash': '7c9d5b8f6' } });
owners.set(args.pod.ip, podKey);
for (const peer of args.peers) {
  const key = `shop/${peer.pod}`;
  if (!pods.has(key)) pods.set(key, { namespace: 'shop', name: peer.pod, labels: { app: peer.pod.replace(/-\d+$/, ''), 'app.kubernetes.io/part-of': 'shop', 'pod-template-hash': '5f6b7d8c9' } });
  owners.set(peer.ip, key);
}
const isolating = [args.policy];
const rules = new RuleIndex();
rules.setPolicy(args.policy, { ingress: 1, egress: 0 });
const context: FlowContext = {
  node: 'bench-node',
  endpoint: (ifindex) => (ifindex === args.pod.ifindex ? podKey : undefined),
  owner: (ip) => owners.get(ip),
  pod: (key) => pods.get(key),
  rules,
  // One array for as long as the policy stands, as the agent's compiler result is.
  isolatedBy: (pod, direction) => (pod === podKey && direction === 'ingress' ? isolating : undefined),
};

const loader = await Loader.start({ onLog: () => undefined });
await loader.load(ENDPOINT_OBJECT, args.pinDir, { globals: loadGlobals({ hostReachesPods: true }) });
const metrics = new AgentMetrics();
const pipeline = new FlowPipeline({
  loader,
  pinDir: args.pinDir,
  context,
  storeSize: args.storeSize,
  onFlows: (batch) => {
    const t = performance.now();
    metrics.flows(batch);
    stage.metricsMs += performance.now() - t;
  },
  log: (line) => process.stderr.write(`[bench agent] ${line}\n`),
});
const server: Server = await serveFlows({
  listen: { host: '127.0.0.1', port: 0 },
  cert: await readFile(args.cert),
  key: await readFile(args.key),
  token: args.token,
  node: 'bench-node',
  pipeline,
  status: async () => ({}),
  log: (line) => process.stderr.write(`[bench agent] ${line}\n`),
});

/** This process's palisade-flow-reader (the pipeline keeps its child to itself). */
async function readerPid(): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
    if (m && Number(m[2]) === process.pid && m[1]!.startsWith('palisade-flow')) return Number(entry);
  }
  return undefined;
}
let reader: number | undefined;
for (let i = 0; i < 50 && reader === undefined; i++) {
  reader = await readerPid();
  if (reader === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
}

function snapshot(reset: boolean): AgentSnapshot {
  const elu = performance.eventLoopUtilization();
  const memory = process.memoryUsage();
  const s: AgentSnapshot = {
    seq: pipeline.store.nextSeq,
    size: pipeline.store.size,
    events: { ...pipeline.events },
    loss: pipeline.loss(),
    followers: pipeline.store.followers,
    elu: { idle: elu.idle, active: elu.active },
    cpu: process.cpuUsage(),
    gc: { ...gc },
    stage: { ...stage },
    delay: { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6 },
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    readerPid: reader,
  };
  if (reset) {
    delay.reset();
    gc.maxMs = 0;
  }
  return s;
}

process.on('message', (message: { id: number; cmd: string; reset?: boolean }) => {
  const answer = (body: object) => process.send!({ id: message.id, ...body });
  if (message.cmd === 'snapshot') answer(snapshot(message.reset ?? false));
  else if (message.cmd === 'memory') {
    const heap = heapUsed(); // after two full collections
    const m = process.memoryUsage();
    void Promise.all([readFile('/proc/self/status', 'utf8'), readFile('/proc/self/smaps', 'utf8').catch(() => '')]).then(([status, smaps]) => {
      const peak = /^VmHWM:\s+(\d+) kB/m.exec(status);
      // V8 maps its heap in anonymous 256 KiB pages: what of the RSS they hold, in use by the heap or not.
      let v8Pages = 0;
      let page = false;
      for (const line of smaps.split('\n')) {
        const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (head) page = !head[3] && parseInt(head[2]!, 16) - parseInt(head[1]!, 16) === 256 * 1024;
        const rss = page && /^Rss:\s+(\d+) kB/.exec(line);
        if (rss) v8Pages += Number(rss[1]) * 1024;
      }
      const v8heap = getHeapStatistics();
      answer({
        heapUsed: heap, heapTotal: m.heapTotal, heapPhysical: v8heap.total_physical_size, v8Pages,
        external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, peakRss: peak ? Number(peak[1]) * 1024 : NaN, size: pipeline.store.size,
      });
    });
  } else if (message.cmd === 'stop') {
    void (async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pipeline.stop();
      await loader.close();
      answer({});
      process.exit(0);
    })();
  }
});
process.send!({ ready: true, port: (server.address() as AddressInfo).port, readerPid: reader });
