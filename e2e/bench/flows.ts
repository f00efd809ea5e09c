// Benchmark `flows` (issue 8 item 9): flow events from the real endpoint
// program through the real palisade-flow-reader into the real agent
// pipeline, on this machine.
//
// 1. Events per second into the agent's store with zero loss, one node.
//    e2e/bench/flows.bpf.c runs pal_to_pod's own code (compiled from
//    bpf/endpoint.bpf.c, on the maps of a datapath loaded as the agent loads
//    it) on a connection never seen per run, so every run is one NEW event
//    in pal_flows; the benchmark calls it with BPF_PROG_TEST_RUN in batches
//    (`repeat`) paced to an offered rate, for a few seconds per rate, the
//    rate stepped up until events are lost. The agent (flows-agent.ts, a
//    process of its own: FlowPipeline with a simple FlowContext, the default
//    store of 300,000, the agent's Prometheus counting, the flow API) reads
//    the ring through palisade-flow-reader. Per rate: events the programs
//    wrote (one per run, checked against pal_metrics), delivered into the
//    store, lost in the kernel (pal_flow_lost), lost elsewhere (written,
//    neither stored nor counted lost once the pipeline has drained), and
//    where the CPU went. Then the same with one follower attached
//    (flows-follower.ts: GET /v1/flows?follow=true over HTTPS through
//    serveFlows, every flow, read and discarded).
// 2. The cost flow events add per packet (new connection, established,
//    dropped): the same maps in two datapaths loaded with flow events on and
//    off (loadGlobals flowEvents), the pass-through program beside them, all
//    interleaved in a shuffled order per round, medians; new connections
//    through e2e/bench/fresh.bpf.c as in `bench packet`. The "on" ring is
//    drained by the real reader between runs, so events are written, not
//    counted lost.
// 3. The agent's memory (RSS, heap) with an empty store and a full one, and
//    the time from a packet (the test_run call) to its line at a follower
//    (matched by the flow's source address and port), idle and under load;
//    and what a follower asking for the whole store first (--since 10m)
//    costs the agent while events keep coming.
//
// Knobs (environment): PAL_BENCH_FLOW_SECONDS (5), PAL_BENCH_FLOW_RATES
// (comma-separated), PAL_BENCH_ROUNDS (11), PAL_BENCH_REPEAT (500,000),
// PAL_BENCH_FLOWS_AGENT_FLAGS (node flags for the agent process).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  DIRECTION,
  ENDPOINT_FLAG,
  endpointInfo,
  ipcacheValue,
  ipv4Key,
  loadGlobals,
  PASSTHROUGH_PROGRAM,
  policyKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  REASON,
  reasonName,
  sumMetrics,
  u32Key,
  type ReasonName,
} from '../../datapath/abi.ts';
import { defaultRuleNumber, ruleId } from '../../agent/datapath-plan.ts';
import { formatIpv4, parseIpv4 } from '../../agent/ipam/ipv4.ts';
import { FlowReader } from '../../datapath/flow-reader.ts';
import { Loader } from '../../datapath/loader-client.ts';
import { ipv4Packet, TCP_ACK, TCP_SYN } from '../../datapath/packet.ts';
import { scratchDatapath, type ScratchDatapath } from '../../datapath/scratch-datapath.ts';
import type { AgentArgs, AgentSnapshot } from './flows-agent.ts';
import type { FollowerArgs, FollowerCounts } from './flows-follower.ts';
import { Prng } from './prng.ts';
import { revision } from './revision.ts';
import { median, percentile } from './stats.ts';

const DRIVER_SOURCE = fileURLToPath(new URL('./flows.bpf.c', import.meta.url));
const FRESH_SOURCE = fileURLToPath(new URL('./fresh.bpf.c', import.meta.url));
const AGENT = fileURLToPath(new URL('./flows-agent.ts', import.meta.url));
const FOLLOWER = fileURLToPath(new URL('./flows-follower.ts', import.meta.url));
const PASSTHROUGH_OBJECT = fileURLToPath(new URL('../../build/bpf/passthrough.bpf.o', import.meta.url));
const BPF_LIB = fileURLToPath(new URL('../../bpf/lib', import.meta.url));
const BPF_DIR = fileURLToPath(new URL('../../bpf', import.meta.url));

const TEST_IFINDEX = 1; // test_run gives the packet the loopback device
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const STORE_SIZE = 300_000; // the agent's default (agent/config.ts)
const RING_EVENTS = Math.floor((16 << 20) / (64 + 8)); // pal_flows' default 16 MiB; 8-byte header per record
const TOKEN = 'bench-flows-token';
/** Extra node flags for the agent process (to try V8 settings): PAL_BENCH_FLOWS_AGENT_FLAGS="--max-semi-space-size=64". */
const AGENT_FLAGS = (process.env.PAL_BENCH_FLOWS_AGENT_FLAGS ?? '').split(/\s+/).filter(Boolean);

// The endpoint (pod shop/web) and its peers.
const POD = { name: 'web', ip: '10.200.1.5', endpointId: 7, identity: 300 };
const CLIENT = { first: '10.220.0.0', count: 1024, identity: 400 };
const PROBE = { ip: '10.221.0.1', identity: 400 };
const DENIED = { ip: '10.230.0.7', identity: 500 };
const POLICY = { namespace: 'shop', name: 'allow-clients' };
const PORT = 8080;
const RULE = ruleId({ ...POLICY, direction: 'ingress', index: 0 });

const syn = (saddr: string, sport: number) => ipv4Packet({ saddr, daddr: POD.ip, protocol: 'TCP', sport, dport: PORT, tcpFlags: TCP_SYN });
const ack = (saddr: string, sport: number) => ipv4Packet({ saddr, daddr: POD.ip, protocol: 'TCP', sport, dport: PORT, tcpFlags: TCP_ACK });
const clientIp = (k: number) => formatIpv4(parseIpv4(CLIENT.first) + k);

export interface FlowsBenchOptions {
  /** Seconds of traffic per rate. */
  seconds?: number;
  rates?: number[];
  rounds?: number;
  repeat?: number;
  freshRepeat?: number;
  latencySamples?: number;
}

export async function benchFlows(options: FlowsBenchOptions = {}): Promise<void> {
  const seconds = options.seconds ?? Number(process.env.PAL_BENCH_FLOW_SECONDS ?? 5);
  const rates = options.rates ?? (process.env.PAL_BENCH_FLOW_RATES ?? '50000,100000,125000,150000,200000,300000,400000,500000,600000,800000').split(',').map(Number);
  const rounds = options.rounds ?? Number(process.env.PAL_BENCH_ROUNDS ?? 11);
  const repeat = options.repeat ?? Number(process.env.PAL_BENCH_REPEAT ?? 500_000);
  const freshRepeat = options.freshRepeat ?? 20_000;
  const latencySamples = options.latencySamples ?? 1000;
  const started = performance.now();
  const code = await revision(['bpf', 'datapath', 'agent', 'lib']);

  const work = await mkdtemp(join(tmpdir(), 'pal-bench-flows-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  };
  // Interrupted: leave no mount, process or file behind.
  const interrupted = () => void cleanUp().finally(() => process.exit(130));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc', '-subj', '/CN=agent', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(work, 'key.pem'), '-out', join(work, 'cert.pem'), '-days', '1']);
    await compileBpf(DRIVER_SOURCE, join(work, 'flows.bpf.o'));
    await compileBpf(FRESH_SOURCE, join(work, 'fresh.bpf.o'));

    // ---- the node: the datapath as the agent loads it, the driver on its maps, the agent
    const datapath = await scratchDatapath('bench-flows');
    cleanups.push(() => datapath.dispose());
    await writeMaps(datapath.loader, { clients: CLIENT.count });
    const driver = await Loader.start({ onLog: () => undefined });
    cleanups.push(() => driver.close());
    await driver.load(join(work, 'flows.bpf.o'), datapath.pinDir, {
      globals: { ...loadGlobals({ hostReachesPods: true }), flows_first_peer: ipv4Key.encode(CLIENT.first), flows_peers: u32Key.encode(CLIENT.count) },
    });

    const agentArgs: AgentArgs = {
      pinDir: datapath.pinDir,
      storeSize: STORE_SIZE,
      cert: join(work, 'cert.pem'),
      key: join(work, 'key.pem'),
      token: TOKEN,
      pod: { name: POD.name, ip: POD.ip, ifindex: TEST_IFINDEX },
      peers: [...Array.from({ length: CLIENT.count }, (_, k) => ({ ip: clientIp(k), pod: `client-${k}` })), { ip: PROBE.ip, pod: 'probe' }],
      policy: POLICY,
    };
    const agent = await Child.start<{ port: number; readerPid: number }>(AGENT, agentArgs, AGENT_FLAGS);
    cleanups.push(() => agent.stop());
    if (!agent.info.readerPid) throw new Error('the agent\'s palisade-flow-reader was not found');
    const node: Node = { datapath, driver, agent, work };

    // ---- memory: empty store, then full
    const memory: MemoryFigures[] = [];
    const measureMemory = async (when: string) => memory.push({ when, ...(await agent.ask<MemoryAnswer>('memory')), reader: await rssOf(agent.info.readerPid) });
    await measureMemory('empty store');
    await checkDriver(datapath, driver);
    await step(node, 100_000, Math.ceil(STORE_SIZE / 100_000) + 0.2);
    await measureMemory(`full store (${int(STORE_SIZE)} flows)`);

    // ---- 1. events per second, without and with a follower
    const plain = await stepUp(node, rates, seconds, undefined);
    const followed = await stepUp(node, rates, seconds, { criteria: {} });

    // ---- 3. packet to its line at a follower
    const latency = [
      await measureLatency(node, { samples: latencySamples, intervalMs: 5, background: 0 }),
      await measureLatency(node, { samples: latencySamples, intervalMs: 5, background: 100_000 }),
      await measureLatency(node, { samples: latencySamples, intervalMs: 5, background: 200_000 }),
    ];
    const total = (await agent.ask<AgentSnapshot>('snapshot')).seq;
    await measureMemory(`full, after ${(total / 1e6).toFixed(1)} M flows`);
    const backlog = await followFromStart(node, 100_000);
    await measureMemory('full, after the backlog follower');
    await agent.stop();

    // ---- 2. per-packet cost, events on vs off
    const perPacket = await measurePerPacket({ work, rounds, repeat, freshRepeat, cleanups });

    report({ code, seconds, plain, followed, latency, backlog, memory, perPacket, rounds, repeat, freshRepeat, minutes: (performance.now() - started) / 60_000 });
  } finally {
    await cleanUp();
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
  }
}

// ---- the maps

/** The endpoint shop/web on TEST_IFINDEX, enforced for ingress; `clients` allowed peers (and the probe) by one policy rule; a denied peer. */
async function writeMaps(loader: Loader, o: { clients: number }): Promise<void> {
  const ipc = (ip: string, identity: number) => ({ key: ipv4Key.encode(ip), value: ipcacheValue.encode({ identity, flags: 0 }) });
  await loader.update('pal_ipcache4', [
    ipc(POD.ip, POD.identity),
    ipc(PROBE.ip, PROBE.identity),
    ipc(DENIED.ip, DENIED.identity),
    ...Array.from({ length: o.clients }, (_, k) => ipc(clientIp(k), CLIENT.identity)),
  ]);
  await loader.update('pal_endpoints', [{
    key: u32Key.encode(TEST_IFINDEX),
    value: endpointInfo.encode({ endpointId: POD.endpointId, identity: POD.identity, flags: ENDPOINT_FLAG.INGRESS_ENFORCED, ingressDefaultRule: defaultRuleNumber(POLICY, 'ingress'), egressDefaultRule: 0, ipv4: POD.ip }),
  }]);
  const key = (protocol: number) => policyKey.encode({ endpointId: POD.endpointId, identity: CLIENT.identity, direction: DIRECTION.INGRESS, protocol, dport: 0 });
  await loader.update('pal_policy', [
    { key: key(0), value: policyValue.encode({ ruleId: 0, flags: POLICY_FLAG.TCP_ANY_PORT }) },
    { key: key(PROTOCOL.TCP), value: policyValue.encode({ ruleId: RULE, flags: 0 }) },
  ]);
}

async function metrics(loader: Loader): Promise<Map<number, bigint>> {
  return new Map((await loader.dump('pal_metrics')).map((e) => [e.key.readUInt32LE(0), sumMetrics(e.value).packets]));
}

function counted(before: Map<number, bigint>, after: Map<number, bigint>): string {
  return [...after].filter(([c, n]) => n !== (before.get(c) ?? 0n)).map(([c, n]) => `${reasonName(c) ?? c} x${n - (before.get(c) ?? 0n)}`).join(',');
}

/** Events the programs could not write (pal_flow_lost, every type, every CPU). */
async function kernelLost(loader: Loader): Promise<number> {
  let n = 0n;
  for (const e of await loader.dump('pal_flow_lost')) for (let at = 0; at < e.value.length; at += 8) n += e.value.readBigUInt64LE(at);
  return Number(n);
}

/** The driver opens a connection never seen per run, each allowed by the rule, and leaves no conntrack entry behind. */
async function checkDriver(datapath: ScratchDatapath, driver: Loader): Promise<void> {
  const before = await metrics(datapath.loader);
  const r = await driver.testRun('flows_new', syn(CLIENT.first, 1024), { repeat: 1000 });
  const got = counted(before, await metrics(datapath.loader));
  const ct = (await datapath.loader.dump('pal_ct4')).length;
  if (r.retval !== TC_ACT_OK || got !== 'ALLOW_POLICY x1000' || ct !== 0) throw new Error(`flows.bpf.c: retval ${r.retval}, counted ${got || 'nothing'}, ${ct} pal_ct4 entries left`);
}

// ---- processes

/** A forked benchmark process (flows-agent.ts, flows-follower.ts) spoken to over IPC. */
class Child<Info> {
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, (body: unknown) => void>();
  #next = 0;
  info!: Info;
  closed: string | undefined;
  #exited: Promise<void>;

  private constructor(file: string, args: unknown, nodeFlags: string[]) {
    this.#proc = fork(file, [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...nodeFlags] });
    this.#exited = new Promise((resolve) => this.#proc.once('exit', () => resolve()));
    this.#proc.on('message', (m: { id?: number; closed?: boolean; why?: string }) => {
      if (m.closed) this.closed = m.why ?? 'closed';
      if (m.id === undefined) return;
      this.#pending.get(m.id)?.(m);
      this.#pending.delete(m.id);
    });
  }

  static async start<I>(file: string, args: unknown, nodeFlags: string[] = []): Promise<Child<I>> {
    const child = new Child<I>(file, args, nodeFlags);
    child.info = await new Promise<I>((resolve, reject) => {
      child.#proc.on('message', (m: { ready?: boolean; closed?: boolean; why?: string }) => {
        if (m.ready) resolve(m as I);
        else if (m.closed) reject(new Error(`${file}: ${m.why}`));
      });
      child.#proc.once('exit', (code) => reject(new Error(`${file} exited (${code}) before it was ready`)));
    });
    return child;
  }

  get pid(): number {
    return this.#proc.pid!;
  }

  ask<T>(cmd: string, extra: object = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, resolve as (body: unknown) => void);
      this.#proc.send({ id, cmd, ...extra }, (error) => error && reject(error));
    });
  }

  async stop(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    if (this.#proc.connected) {
      this.#proc.send({ id: -1, cmd: 'stop' });
      const stopped = await Promise.race([this.#exited.then(() => true), sleep(10_000).then(() => false)]);
      if (stopped) return;
    }
    this.#proc.kill('SIGKILL');
    await this.#exited;
  }
}

/** CPU seconds (user + system) of a process so far, from /proc. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

async function rssOf(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

// ---- 1. stepping the rate up

interface Node {
  datapath: ScratchDatapath;
  driver: Loader;
  agent: Child<{ port: number; readerPid: number }>;
  work: string;
}

interface StepFigures {
  offered: number;
  achieved: number;
  seconds: number;
  /** Events the programs wrote (one per run: each run checked to be ALLOW_POLICY). */
  written: number;
  stored: number;
  kernelLost: number;
  otherLost: number;
  /** Events delivered into the store while the traffic ran, per second. */
  storeRate: number;
  /** Written but not yet in the store when the traffic stopped. */
  backlog: number;
  drainMs: number;
  /** Shares of one CPU over the step (traffic + drain). */
  agentBusy: number;
  agentCpu: number;
  readerCpu: number;
  kernelCpu: number;
  gcMs: number;
  gcMajor: number;
  /** The longest single GC pause. */
  gcMaxMs: number;
  /** µs per flow in each stage. */
  perFlow: { decode: number; enrich: number; store: number; metrics: number; other: number; gc: number };
  /** Flows the agent stores per second of its event loop's busy time: what one CPU of it can take. */
  capacity: number;
  maxLoopDelayMs: number;
  follower?: { flows: number; missed: number; closed?: string };
}

async function stepUp(node: Node, rates: number[], seconds: number, follow: { criteria: object } | undefined): Promise<StepFigures[]> {
  const out: StepFigures[] = [];
  let follower: Child<unknown> | undefined;
  let lossySteps = 0;
  try {
    for (const rate of rates) {
      if (follow && (!follower || follower.closed)) {
        await follower?.stop();
        follower = await startFollower(node, { criteria: follow.criteria, sinceMs: Date.now(), mode: 'count' });
      }
      const figures = await step(node, rate, seconds, follower);
      out.push(figures);
      process.stderr.write(`flows: ${follow ? 'with a follower, ' : ''}${rate}/s offered: ${figures.achieved.toFixed(0)}/s achieved, stored ${figures.stored} of ${figures.written}, lost ${figures.kernelLost} + ${figures.otherLost}${figures.follower ? `, follower ${figures.follower.flows} (missed ${figures.follower.missed})` : ''}\n`);
      if (figures.kernelLost + figures.otherLost > 0 || figures.achieved < 0.9 * rate) lossySteps++;
      if (lossySteps >= 2) break;
    }
  } finally {
    await follower?.stop();
  }
  return out;
}

/** A follower, once the agent's store counts it. */
async function startFollower(node: Node, o: Omit<FollowerArgs, 'port' | 'token' | 'ca'>): Promise<Child<unknown>> {
  const before = (await node.agent.ask<AgentSnapshot>('snapshot')).followers;
  const follower = await Child.start(FOLLOWER, { ...o, port: node.agent.info.port, token: TOKEN, ca: join(node.work, 'cert.pem') } satisfies FollowerArgs);
  for (let i = 0; i < 500; i++) {
    if ((await node.agent.ask<AgentSnapshot>('snapshot')).followers > before) return follower;
    if (follower.closed) break;
    await sleep(10);
  }
  await follower.stop();
  throw new Error(`the follower never registered with the agent${follower.closed ? ` (${follower.closed})` : ''}`);
}

/** `rate` new connections per second for `seconds`, paced in batches of at least a millisecond's worth; returns the runs made. */
async function drive(driver: Loader, rate: number, seconds: number, stop?: { stopped: boolean }): Promise<{ runs: number; seconds: number }> {
  const packet = syn(CLIENT.first, 1024);
  const minBatch = Math.max(1, Math.floor(rate / 1000));
  const maxBatch = Math.max(1, Math.ceil(rate / 50)); // 20 ms worth: a driver that fell behind catches up in steps
  const start = performance.now();
  let runs = 0;
  for (;;) {
    const elapsed = (performance.now() - start) / 1000;
    if (elapsed >= seconds || stop?.stopped) break;
    const due = Math.floor(rate * elapsed) - runs;
    if (due < minBatch) {
      await sleep(1);
      continue;
    }
    const batch = Math.min(due, maxBatch);
    const r = await driver.testRun('flows_new', packet, { repeat: batch });
    if (r.retval !== TC_ACT_OK) throw new Error(`flows_new returned ${r.retval}`);
    runs += batch;
  }
  return { runs, seconds: (performance.now() - start) / 1000 };
}

async function step(node: Node, rate: number, seconds: number, follower?: Child<unknown>): Promise<StepFigures> {
  const { datapath, driver, agent } = node;
  const m0 = await metrics(datapath.loader);
  const lost0 = await kernelLost(datapath.loader);
  const f0 = follower ? await follower.ask<FollowerCounts>('counts') : undefined;
  const a0 = await agent.ask<AgentSnapshot>('snapshot', { reset: true });
  const cpu0 = { reader: await cpuSeconds(a0.readerPid), kernel: await cpuSeconds(driver.pid) };
  const t0 = performance.now();

  const sent = await drive(driver, rate, seconds);
  const aEnd = await agent.ask<AgentSnapshot>('snapshot');
  const lost = (await kernelLost(datapath.loader)) - lost0;
  const tEnd = performance.now();
  // Drain: until every event is in the store or counted lost, or nothing moves for 2 s.
  let a1 = aEnd;
  let lastMove = performance.now();
  while (a1.seq - a0.seq + lost < sent.runs && performance.now() - lastMove < 2000) {
    await sleep(50);
    const a = await agent.ask<AgentSnapshot>('snapshot');
    if (a.seq !== a1.seq) lastMove = performance.now();
    a1 = a;
  }
  const drainMs = a1.seq - a0.seq + lost >= sent.runs ? performance.now() - tEnd : NaN;
  const t1 = performance.now();
  const cpu1 = { reader: await cpuSeconds(a1.readerPid), kernel: await cpuSeconds(driver.pid) };
  const f1 = follower ? await waitFollower(follower, f0!, a1.seq - a0.seq) : undefined;

  const allowed = counted(m0, await metrics(datapath.loader));
  if (allowed !== `ALLOW_POLICY x${sent.runs}`) throw new Error(`${rate}/s: the programs counted ${allowed}, expected ALLOW_POLICY x${sent.runs}`);
  const stored = a1.seq - a0.seq;
  const wall = (t1 - t0) / 1000;
  const flows = a1.stage.flows - a0.stage.flows;
  const us = (ms: number) => (flows > 0 ? (ms * 1000) / flows : NaN);
  const busyMs = a1.elu.active - a0.elu.active;
  const stages = {
    decode: a1.stage.decodeMs - a0.stage.decodeMs,
    enrich: a1.stage.enrichMs - a0.stage.enrichMs,
    store: a1.stage.storeMs - a0.stage.storeMs,
    metrics: a1.stage.metricsMs - a0.stage.metricsMs,
  };
  return {
    offered: rate,
    achieved: sent.runs / sent.seconds,
    seconds: sent.seconds,
    written: sent.runs - lost,
    stored,
    kernelLost: lost,
    otherLost: sent.runs - lost - stored,
    storeRate: (aEnd.seq - a0.seq) / ((tEnd - t0) / 1000),
    backlog: sent.runs - lost - (aEnd.seq - a0.seq),
    drainMs,
    agentBusy: busyMs / 1000 / wall,
    agentCpu: ((a1.cpu.user + a1.cpu.system - a0.cpu.user - a0.cpu.system) / 1e6) / wall,
    readerCpu: (cpu1.reader - cpu0.reader) / wall,
    kernelCpu: (cpu1.kernel - cpu0.kernel) / wall,
    gcMs: a1.gc.ms - a0.gc.ms,
    gcMajor: a1.gc.major - a0.gc.major,
    gcMaxMs: a1.gc.maxMs,
    perFlow: {
      decode: us(stages.decode),
      enrich: us(stages.enrich),
      store: us(stages.store),
      metrics: us(stages.metrics),
      other: us(busyMs - stages.decode - stages.enrich - stages.store - stages.metrics),
      gc: us(a1.gc.ms - a0.gc.ms),
    },
    capacity: flows / (busyMs / 1000),
    maxLoopDelayMs: a1.delay.max,
    ...(f1 ? { follower: { flows: f1.flows - f0!.flows, missed: f1.missed - f0!.missed, ...(follower!.closed ? { closed: follower!.closed } : {}) } } : {}),
  };
}

/** The follower's counts once it has got (or been told it missed) `expected` more flows, or nothing moved for 2 s. */
async function waitFollower(follower: Child<unknown>, before: FollowerCounts, expected: number): Promise<FollowerCounts> {
  let last = await follower.ask<FollowerCounts>('counts');
  let lastMove = performance.now();
  while (last.flows - before.flows + last.missed - before.missed < expected && performance.now() - lastMove < 2000 && !follower.closed) {
    await sleep(50);
    const c = await follower.ask<FollowerCounts>('counts');
    if (c.flows !== last.flows || c.missed !== last.missed) lastMove = performance.now();
    last = c;
  }
  return last;
}

// ---- 3. packet -> its line at a follower

interface LatencyFigures {
  background: number;
  backgroundAchieved: number;
  samples: number;
  matched: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  criteria: object;
  lost: number;
  /** The agent's longest event-loop delay and longest GC pause meanwhile. */
  loopMaxMs: number;
  gcMaxMs: number;
}

let probePort = 1024;

/**
 * `samples` SYNs from the probe pod through pal_to_pod (the datapath's own
 * program), one every `intervalMs`, each on a source port not used before,
 * while a follower follows; with `background` new connections per second
 * from the clients meanwhile (the follower then follows the probe's flows
 * only, as `observe --follow --from-pod shop/probe` does). Latency: from
 * just before the test_run call to the line's arrival at the follower.
 */
async function measureLatency(node: Node, o: { samples: number; intervalMs: number; background: number }): Promise<LatencyFigures> {
  const criteria = o.background ? { fromPods: ['shop/probe'] } : {};
  const follower = await startFollower(node, { criteria, sinceMs: Date.now(), mode: 'latency' });
  const lost0 = await kernelLost(node.datapath.loader);
  await node.agent.ask<AgentSnapshot>('snapshot', { reset: true });
  const stop = { stopped: false };
  const background = o.background ? drive(node.driver, o.background, 3600, stop) : undefined;
  try {
    if (background) await sleep(500);
    const sent = new Map<string, bigint>();
    for (let i = 0; i < o.samples; i++) {
      const sport = probePort++;
      const packet = syn(PROBE.ip, sport);
      const t = process.hrtime.bigint();
      const r = await node.datapath.loader.testRun('pal_to_pod', packet);
      if (r.retval !== TC_ACT_OK) throw new Error(`probe SYN: retval ${r.retval}`);
      sent.set(`${PROBE.ip}:${sport}`, t);
      await sleep(o.intervalMs);
    }
    stop.stopped = true;
    const bg = background ? await background : undefined;
    const latencies: number[] = [];
    for (let waited = 0; waited < 5000; waited += 100) {
      const { arrivals } = await follower.ask<FollowerCounts>('counts');
      for (const [ip, port, at] of arrivals) {
        const t = sent.get(`${ip}:${port}`);
        if (t !== undefined) {
          latencies.push(Number(BigInt(at) - t) / 1e6);
          sent.delete(`${ip}:${port}`);
        }
      }
      if (sent.size === 0) break;
      await sleep(100);
    }
    const agentAfter = await node.agent.ask<AgentSnapshot>('snapshot');
    return {
      loopMaxMs: agentAfter.delay.max,
      gcMaxMs: agentAfter.gc.maxMs,
      background: o.background,
      backgroundAchieved: bg ? bg.runs / bg.seconds : 0,
      samples: o.samples,
      matched: latencies.length,
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
      criteria,
      lost: (await kernelLost(node.datapath.loader)) - lost0,
    };
  } finally {
    stop.stopped = true;
    await background?.catch(() => undefined);
    await follower.stop();
  }
}

interface BacklogFigures {
  background: number;
  flows: number;
  seconds: number;
  maxLoopDelayMs: number;
  kernelLost: number;
  otherLost: number;
}

/**
 * A follower that asks for every stored flow first (`observe --follow
 * --since 10m` on a full store): the agent queries and writes them all (one
 * synchronous piece of work in server.ts), while `background` new
 * connections per second keep coming. How long the backlog takes and how
 * long the agent's event loop was held.
 */
async function followFromStart(node: Node, background: number): Promise<BacklogFigures> {
  const { datapath, agent } = node;
  const lost0 = await kernelLost(datapath.loader);
  const a0 = await agent.ask<AgentSnapshot>('snapshot', { reset: true });
  const stop = { stopped: false };
  const driving = drive(node.driver, background, 3600, stop);
  await sleep(500);
  const t0 = performance.now();
  const follower = await startFollower(node, { criteria: {}, sinceMs: Date.now() - 600_000, mode: 'count' });
  let counts = await follower.ask<FollowerCounts>('counts');
  while (counts.flows < a0.size && performance.now() - t0 < 30_000 && !follower.closed) {
    await sleep(50);
    counts = await follower.ask<FollowerCounts>('counts');
  }
  const seconds = (performance.now() - t0) / 1000;
  await sleep(500);
  stop.stopped = true;
  const sent = await driving;
  await follower.stop();
  let a1 = await agent.ask<AgentSnapshot>('snapshot');
  const lost = (await kernelLost(datapath.loader)) - lost0;
  for (let i = 0; i < 100 && a1.seq - a0.seq + lost < sent.runs; i++) {
    await sleep(50);
    a1 = await agent.ask<AgentSnapshot>('snapshot');
  }
  return { background: sent.runs / sent.seconds, flows: counts.flows, seconds, maxLoopDelayMs: a1.delay.max, kernelLost: lost, otherLost: sent.runs - lost - (a1.seq - a0.seq) };
}

// ---- memory

interface MemoryAnswer {
  heapUsed: number;
  heapTotal: number;
  /** V8: the heap's resident pages; all resident V8 pages (256 KiB anonymous mappings), the heap's and those it freed and kept. */
  heapPhysical: number;
  v8Pages: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  /** VmHWM: the process's highest RSS so far. */
  peakRss: number;
  size: number;
}

interface MemoryFigures extends MemoryAnswer {
  when: string;
  reader: number;
}

// ---- 2. per packet: events on vs off

type Case = 'new connection' | 'established' | 'dropped';
const CASES: Case[] = ['new connection', 'established', 'dropped'];

interface Copy {
  events: boolean;
  datapath: ScratchDatapath;
  fresh: Loader;
}

interface PerPacketFigures {
  /** `${case}@${on|off}` -> ns per packet per round (new connection: added over the driver's empty target) */
  runs: Map<string, number[]>;
  pass: number[];
  freshBaseline: number[];
  eventsRead: number;
  eventsExpected: number;
  lostOn: number;
}

async function measurePerPacket(o: { work: string; rounds: number; repeat: number; freshRepeat: number; cleanups: Array<() => Promise<unknown>> }): Promise<PerPacketFigures> {
  const rng = new Prng(0xf10e);
  const FRESH = { first: CLIENT.first, peers: 64 };
  const copies: Copy[] = [];
  for (const events of [true, false]) {
    const datapath = await scratchDatapath(`bench-flows-${events ? 'on' : 'off'}`, { globals: { hostReachesPods: true, flowEvents: events } });
    o.cleanups.push(() => datapath.dispose());
    await writeMaps(datapath.loader, { clients: FRESH.peers });
    const fresh = await Loader.start({ onLog: () => undefined });
    o.cleanups.push(() => fresh.close());
    await fresh.load(join(o.work, 'fresh.bpf.o'), datapath.pinDir, {
      globals: { ...loadGlobals({ hostReachesPods: true, flowEvents: events }), fresh_first_peer: ipv4Key.encode(FRESH.first), fresh_peers: u32Key.encode(FRESH.peers) },
    });
    copies.push({ events, datapath, fresh });
  }
  const [on, off] = copies as [Copy, Copy];
  const pass = await Loader.start({ onLog: () => undefined });
  o.cleanups.push(() => pass.close());
  const passDir = join(dirname(on.datapath.pinDir), 'passthrough');
  await mkdir(passDir);
  await pass.load(PASSTHROUGH_OBJECT, passDir);

  // The real reader drains the "on" ring; every run's events are awaited before the next run.
  let read = 0;
  let expected = 0;
  const reader = new FlowReader({ ringPath: join(on.datapath.pinDir, 'pal_flows'), onEvents: (events) => (read += events.length), onLog: () => undefined });
  o.cleanups.push(() => reader.stop());
  const caughtUp = async () => {
    for (let i = 0; i < 400 && read < expected; i++) await sleep(5);
    if (read < expected) throw new Error(`the reader got ${read} of ${expected} events`);
  };

  const established = ack(clientIp(1), 40000);
  const denied = syn(DENIED.ip, 40000);
  // Check each case once on each copy (and open the established connection).
  for (const copy of copies) {
    const expect = async (program: string, packet: Buffer, reason: ReasonName, loader = copy.datapath.loader, n = 1) => {
      const before = await metrics(copy.datapath.loader);
      const r = await loader.testRun(program, packet, { repeat: n });
      const got = counted(before, await metrics(copy.datapath.loader));
      if (got !== `${reason} x${n}` || r.retval !== (REASON[reason] >= 128 ? TC_ACT_SHOT : TC_ACT_OK)) throw new Error(`per packet, events ${copy.events ? 'on' : 'off'}: ${program} counted ${got || 'nothing'}, retval ${r.retval}; expected ${reason} x${n}`);
    };
    await expect('pal_to_pod', syn(clientIp(1), 40000), 'ALLOW_POLICY');
    await expect('pal_to_pod', established, 'ALLOW_ESTABLISHED');
    await expect('pal_to_pod', denied, 'DROP_POLICY');
    await expect('fresh_syn', syn(FRESH.first, 1024), 'ALLOW_POLICY', copy.fresh, 1000);
    if (copy.events) {
      // The SYN's NEW (the ACK writes nothing: a new entry's report clock starts at its NEW);
      // the drop (its key's first); the fresh connections.
      expected += 1 + 1 + 1000;
      await caughtUp();
    }
  }
  if (read !== expected) throw new Error(`events off wrote events: read ${read}, expected ${expected}`);

  const runs = new Map<string, number[]>();
  const passRuns: number[] = [];
  const freshBaseline: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const list: Array<() => Promise<void>> = [];
    for (const copy of copies) {
      const tag = copy.events ? 'on' : 'off';
      list.push(async () => push(runs, `established@${tag}`, (await timed(copy.datapath.loader, 'pal_to_pod', established, o.repeat, TC_ACT_OK)).durationNs));
      list.push(async () => {
        const r = await timed(copy.datapath.loader, 'pal_to_pod', denied, o.repeat, TC_ACT_SHOT);
        push(runs, `dropped@${tag}`, r.durationNs);
        if (copy.events) {
          await sleep(1); // at most one event per 250 ms window: counted by the reader whenever it comes
        }
      });
      list.push(async () => {
        // The pair in a random order, back to back: load shifts both alike.
        const pair = rng.shuffle(['fresh_syn', 'fresh_baseline']);
        const ns: Record<string, number> = {};
        for (const program of pair) {
          ns[program] = (await timed(copy.fresh, program, syn(FRESH.first, 1024), o.freshRepeat, TC_ACT_OK)).durationNs;
          if (program === 'fresh_syn' && copy.events) {
            expected += o.freshRepeat;
            await caughtUp();
          }
        }
        push(runs, `new connection@${tag}`, ns.fresh_syn! - ns.fresh_baseline!);
        if (copy.events) freshBaseline.push(ns.fresh_baseline!);
      });
    }
    const passNs: number[] = [];
    for (let i = 0; i < 3; i++) list.push(async () => void passNs.push((await timed(pass, PASSTHROUGH_PROGRAM, established, o.repeat, TC_ACT_OK)).durationNs));
    for (const run of rng.shuffle(list)) await run();
    passRuns.push(median(passNs));
  }
  await sleep(300);
  const lostOn = await kernelLost(on.datapath.loader);
  const lostOff = await kernelLost(off.datapath.loader);
  if (lostOff) throw new Error(`events off: pal_flow_lost ${lostOff}`);
  return { runs, pass: passRuns, freshBaseline, eventsRead: read, eventsExpected: expected, lostOn };
}

async function timed(loader: Loader, program: string, packet: Buffer, repeat: number, want: number) {
  const r = await loader.testRun(program, packet, { repeat });
  if (r.retval !== want) throw new Error(`${program}: retval ${r.retval}, expected ${want}`);
  return r;
}

function push<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Builds one of the benchmark's BPF sources as bpf/bpf.mk builds the datapath (bpf/ on the include path for endpoint.bpf.c). */
async function compileBpf(source: string, object: string): Promise<void> {
  const { stdout: machine } = await execa('cc', ['-dumpmachine']);
  await execa('clang', ['-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-I', BPF_LIB, '-I', BPF_DIR, '-I', `/usr/include/${machine.trim()}`, '-Wall', '-Werror', '-c', source, '-o', object]);
}

// ---- report

interface Figures {
  code: string;
  seconds: number;
  plain: StepFigures[];
  followed: StepFigures[];
  latency: LatencyFigures[];
  backlog: BacklogFigures;
  memory: MemoryFigures[];
  perPacket: PerPacketFigures;
  rounds: number;
  repeat: number;
  freshRepeat: number;
  minutes: number;
}

const k = (n: number) => (Number.isFinite(n) ? `${Math.round(n / 1000)}k` : 'n/a');
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const ms = (v: number) => (Number.isFinite(v) ? `${v === 0 ? '0' : v.toFixed(v < 10 ? 2 : 0)} ms` : 'n/a');
const us = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/** The step is lossless and the agent kept up: it stored at the rate offered, with less than a quarter second's worth behind at the end. */
const lossless = (s: StepFigures) => s.kernelLost === 0 && s.otherLost === 0;
const keptUp = (s: StepFigures) => lossless(s) && s.backlog < s.achieved / 4 && s.achieved >= 0.95 * s.offered;

function stepTable(title: string, steps: StepFigures[]): void {
  console.log(title);
  console.log(`  ${'offered'.padStart(8)} ${'achieved'.padStart(9)} ${'events'.padStart(10)} ${'in store'.padStart(10)} ${'lost:kern'.padStart(10)} ${'other'.padStart(7)} ${'store/s*'.padStart(9)} ${'backlog'.padStart(8)} ${'drain'.padStart(8)} | ${'agent busy'.padStart(10)} ${'cpu'.padStart(5)} ${'reader'.padStart(6)} ${'test_run'.padStart(8)} ${'GC ms (major, longest)'.padStart(22)} | µs/flow decode enrich store metrics other (GC in them) | capacity | loop max${steps[0]?.follower ? ' | follower got / missed' : ''}`);
  for (const s of steps) {
    const f = s.follower;
    console.log(
      `  ${k(s.offered).padStart(8)} ${k(s.achieved).padStart(9)} ${int(s.written + s.kernelLost).padStart(10)} ${int(s.stored).padStart(10)} ${int(s.kernelLost).padStart(10)} ${int(s.otherLost).padStart(7)} ${k(s.storeRate).padStart(9)} ${int(s.backlog).padStart(8)} ${ms(s.drainMs).padStart(8)} | ` +
        `${pct(s.agentBusy).padStart(10)} ${pct(s.agentCpu).padStart(5)} ${pct(s.readerCpu).padStart(6)} ${pct(s.kernelCpu).padStart(8)} ${`${s.gcMs.toFixed(0)} (${s.gcMajor}, ${s.gcMaxMs.toFixed(0)})`.padStart(22)} | ` +
        `       ${us(s.perFlow.decode).padStart(6)} ${us(s.perFlow.enrich).padStart(6)} ${us(s.perFlow.store).padStart(5)} ${us(s.perFlow.metrics).padStart(7)} ${us(s.perFlow.other).padStart(5)} ${`(${us(s.perFlow.gc)})`.padStart(12)} | ${`${k(s.capacity)}/s`.padStart(8)} | ${ms(s.maxLoopDelayMs).padStart(8)}` +
        (f ? ` | ${int(f.flows)} / ${int(f.missed)}${f.closed ? ` (${f.closed})` : ''}` : ''),
    );
  }
  const clean = steps.filter(lossless);
  const sustained = steps.filter(keptUp);
  const firstLoss = steps.find((s) => !lossless(s));
  console.log(`  highest offered rate with zero loss: ${clean.length ? `${k(Math.max(...clean.map((s) => s.offered)))}/s` : 'none'}; with zero loss and the agent keeping up (stored at the offered rate, under 0.25 s behind at the end): ${sustained.length ? `${k(Math.max(...sustained.map((s) => s.offered)))}/s` : 'none'}; loss begins at ${firstLoss ? `${k(firstLoss.offered)}/s offered (${k(firstLoss.achieved)}/s achieved)` : 'no rate tried'}`);
  const withFollower = steps.filter((s) => s.follower);
  if (withFollower.length) {
    const complete = withFollower.filter((s) => lossless(s) && s.follower!.missed === 0 && s.follower!.flows === s.stored);
    console.log(`  highest rate at which the follower also got every flow: ${complete.length ? `${k(Math.max(...complete.map((s) => s.offered)))}/s` : 'none'}`);
  }
}

function report(f: Figures): void {
  console.log(`flows: NEW events from pal_to_pod's code (e2e/bench/flows.bpf.c, BPF_PROG_TEST_RUN, a connection never seen per run) through pal_flows (16 MiB: ~${int(RING_EVENTS)} events) and palisade-flow-reader into the agent's FlowPipeline (store ${int(STORE_SIZE)}), ${f.seconds} s per rate; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
  console.log(`code: ${f.code}; kernel ${release()}; node ${process.version}${AGENT_FLAGS.length ? `, agent flags ${AGENT_FLAGS.join(' ')}` : ''}; ${f.minutes.toFixed(1)} minutes`);
  console.log('');
  console.log('1. events per second into the store (* store/s: what the agent stored while the traffic ran; backlog: written, not yet stored when it stopped; CPU as shares of one CPU over traffic + drain; test_run = the kernel running the program, in the driver\'s loader; µs per flow of the agent\'s event loop by stage, GC pauses included where they fell; capacity = flows stored per second of the event loop\'s busy time)');
  stepTable('  no follower:', f.plain);
  stepTable('  one follower (GET /v1/flows?follow=true, every flow, HTTPS, read and discarded in another process):', f.followed);
  console.log('');
  console.log('2. per packet, flow events on vs off (same maps, same programs loaded with pal_flow_events 1 / 0), interleaved, shuffled, medians of ' + `${f.rounds} rounds; established and dropped repeat ${f.repeat}, new connections ${f.freshRepeat} per run through fresh.bpf.c (ns added over its driver with an empty target)`);
  const p = f.perPacket;
  const pass = median(p.pass);
  console.log(`  pass-through ${pass.toFixed(0)} ns; the reader drained ${int(p.eventsRead)} events of the "on" copy (${int(p.eventsExpected)} expected, plus a drop event per 250 ms of the dropped runs); pal_flow_lost there: ${p.lostOn}`);
  console.log(`  ${'case'.padEnd(16)} ${'events off'.padStart(11)} ${'events on'.padStart(10)} ${'on - off'.padStart(9)} ${'on/off'.padStart(7)} ${'(over pass-through: off, on, ratio)'}`);
  for (const c of CASES) {
    const offRuns = p.runs.get(`${c}@off`)!;
    const onRuns = p.runs.get(`${c}@on`)!;
    const off = median(offRuns);
    const on = median(onRuns);
    const diff = median(onRuns.map((v, i) => v - offRuns[i]!));
    const extra = c === 'new connection' ? '(already net of the driver)' : `(${(off - pass).toFixed(0)}, ${(on - pass).toFixed(0)}, ${((on - pass) / (off - pass)).toFixed(2)}x)`;
    console.log(`  ${c.padEnd(16)} ${`${off.toFixed(0)} ns`.padStart(11)} ${`${on.toFixed(0)} ns`.padStart(10)} ${`${diff >= 0 ? '+' : ''}${diff.toFixed(0)} ns`.padStart(9)} ${`${(on / off).toFixed(2)}x`.padStart(7)} ${extra}`);
  }
  console.log('  (dropped: a flood of one kind, so its events are summarised: one event per key per 250 ms, the rest a lookup and a count in pal_drop_agg)');
  console.log('');
  console.log('3. the agent process (pipeline, store, flow API; not the informers and compiler of a real agent), after two full GCs; palisade-flow-reader beside it');
  for (const m of f.memory) {
    console.log(`  ${m.when.padEnd(34)} store ${int(m.size).padStart(7)}: RSS ${mib(m.rss).padStart(8)} (peak so far ${mib(m.peakRss).padStart(8)}), V8 heap used ${mib(m.heapUsed).padStart(8)} (resident ${mib(m.heapPhysical).padStart(8)}; V8 pages resident ${mib(m.v8Pages).padStart(8)}), external ${mib(m.external)}; reader RSS ${mib(m.reader)}`);
  }
  const [empty, full] = f.memory;
  if (empty && full) console.log(`  per stored flow: ${((full.heapUsed - empty.heapUsed) / STORE_SIZE).toFixed(0)} bytes of heap, ${((full.rss - empty.rss) / STORE_SIZE).toFixed(0)} bytes of RSS`);
  console.log('  (V8 pages resident: its 256 KiB anonymous mappings in /proc/self/smaps; beyond the heap\'s own, pages freed by collections and kept mapped, as many as the heap\'s peak under load needed)');
  console.log('  packet (test_run call) -> its line at a follower (HTTPS, another process), one SYN from shop/probe every 5 ms:');
  for (const l of f.latency) {
    console.log(`    ${l.background ? `under ${k(l.backgroundAchieved)}/s other new connections, following --from-pod shop/probe` : 'idle, following every flow'}: p50 ${ms(l.p50)}, p90 ${ms(l.p90)}, p99 ${ms(l.p99)}, max ${ms(l.max)} (${l.matched} of ${l.samples} matched; kernel lost ${int(l.lost)}; the agent's event loop held up to ${ms(l.loopMaxMs)}, its longest GC pause ${ms(l.gcMaxMs)})`);
  }
  const b = f.backlog;
  console.log(`  a follower asking for the whole store first (--follow --since 10m) under ${k(b.background)}/s: its first ${int(b.flows)} lines in ${b.seconds.toFixed(1)} s; the agent's event loop held up to ${ms(b.maxLoopDelayMs)}; lost meanwhile: kernel ${int(b.kernelLost)}, other ${int(b.otherLost)}`);
  console.log('');
  console.log('targets:');
  const best = f.plain.filter(keptUp);
  const bestRate = best.length ? Math.max(...best.map((s) => s.offered)) : 0;
  console.log(`  ${bestRate >= 200_000 ? 'PASS' : 'MISS'}  >= 200,000 events/s into the store with no loss (and kept up): ${k(bestRate)}/s`);
  const bestF = f.followed.filter(keptUp);
  const bestFRate = bestF.length ? Math.max(...bestF.map((s) => s.offered)) : 0;
  console.log(`  ${bestFRate >= 200_000 ? 'PASS' : 'MISS'}  the same with a follower attached: ${k(bestFRate)}/s`);
}
