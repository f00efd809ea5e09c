// Benchmark `apply-latency`: how long after the API server accepts a
// NetworkPolicy write the datapath enforces it.
//
// Two nodes; pod A on node-1, pods B and C on node-2. Two 1 kHz probers
// (reach-prober.ts, a new TCP connection per attempt) run inside A's and C's
// network namespaces against B's echo server: A->B crosses nodes, C->B stays
// on B's node. A third prober keeps ONE UDP flow A->B going (same 5-tuple,
// 1 kHz) and reports whether each verdict also reached that established
// flow; it is not waited for. Then `samples` writes
// alternately deny and allow A->B (and C->B), each timed from the moment the
// write call returns (the API server has accepted it) to the send time of the
// prober's first attempt with the new verdict (of the run of them that held
// until the next write: one odd attempt before it counts as a flap). Each sample is split into
// stages by the `policy-stages` line that B's agent logs for the batch
// (agent/policy-sync.ts): watch, queue, compile, publish (diff), map-write
// and datapath-visible. Two ways of flipping the verdict are measured, one
// after the other: creating and deleting a deny-all-ingress policy selecting B
// (B goes from unselected to isolated and back), and replacing a policy that
// keeps B selected between a spec that allows A and C and one that does not.
//
// Baselines measured in the same run: the prober's own resolution (time
// between its attempts) and the round trip of a no-op write (a ConfigMap
// replaced by itself, interleaved with the samples).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { cp } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import type { SimNode } from '../cluster/node.ts';
import { NODE_BIN } from '../cluster/paths.ts';
import { startProcess, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';
import { KeepAliveApi } from './keepalive-api.ts';
import { LogLines } from './log-lines.ts';
import { median, percentile } from './stats.ts';

const NAMESPACE = 'bench-apply';
const PROBER = new URL('./reach-prober.ts', import.meta.url).pathname;
const PROBE_PORT = 80;
const PROBE_INTERVAL_MS = 1;
/** An attempt not answered within this long counts as denied. */
const PROBE_TIMEOUT_MS = 50;
/** A sample whose new verdict is not seen within this long counts as missed (infinite latency). */
const SAMPLE_TIMEOUT_MS = 5_000;
const WARMUP = 10;
const TARGET_P50_MS = 25;
const TARGET_P99_MS = 100;

type Verdict = 'ok' | 'fail';

interface Change {
  verdict: Verdict;
  /** Send time of the first attempt with this verdict. */
  at: number;
  /** Send time of the attempt before it: the change happened in (previousAt, at]. */
  previousAt: number;
}

/** One prober process and the verdict changes it has printed so far. */
class Prober {
  readonly name: string;
  readonly process: ManagedProcess;
  readonly logFile: string;
  readonly changes: Change[] = [];
  readonly #lines: LogLines;
  summary: { attempts: number; gapP50Ms: number; gapP99Ms: number; gapMaxMs: number; late: number; errors: number } | undefined;

  private constructor(name: string, process: ManagedProcess, logFile: string) {
    this.name = name;
    this.process = process;
    this.logFile = logFile;
    this.#lines = new LogLines(logFile, 0);
  }

  static async start(cluster: Cluster, name: string, protocol: 'tcp' | 'udp', from: SimPod, to: SimPod): Promise<Prober> {
    const logFile = `${cluster.runDir}/prober-${name}.log`;
    const process = await startProcess({
      name: `prober ${name}`,
      command: NODE_BIN,
      args: [PROBER, protocol, to.ip, String(PROBE_PORT), String(PROBE_INTERVAL_MS), String(PROBE_TIMEOUT_MS)],
      netns: from.netns,
      logFile,
      readyLine: /^ready/,
    });
    return new Prober(name, process, logFile);
  }

  poll(): void {
    for (const line of this.#lines.next()) {
      const change = /^change (ok|fail) ([\d.]+) \d+ ([\d.]+)$/.exec(line);
      if (change) this.changes.push({ verdict: change[1] as Verdict, at: Number(change[2]), previousAt: Number(change[3]) });
      const summary = /^summary (\{.*\})$/.exec(line);
      if (summary) this.summary = JSON.parse(summary[1]!) as Prober['summary'];
    }
  }

  /** The current verdict, if the last change happened at or after `since`. */
  verdictSince(since: number): Verdict | undefined {
    const last = this.changes.at(-1);
    return last && last.at >= since ? last.verdict : undefined;
  }

  get verdict(): Verdict | undefined {
    return this.changes.at(-1)?.verdict;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    this.poll();
  }
}

interface Stages {
  revision: number;
  eventAt: number;
  startedAt: number;
  compiledAt: number;
  diffedAt: number;
  writtenAt: number;
}

interface Sample {
  mode: Mode;
  expect: Verdict;
  before: number;
  /** When the write call returned: the API server had accepted it. */
  accepted: number;
  noopMs: number;
  /** The change to the new verdict that held until the next write, per prober (undefined: never seen). */
  seen: Map<string, Change | undefined>;
  /** Verdict changes within the sample's window besides the one that settled it (flapping). */
  flaps: number;
  stages?: Stages;
}

type Mode = 'create/delete' | 'replace';

const podLabels = (app: string) => ({ app });

// Specs as the API spells them (KeepAliveApi sends plain JSON: the rule's peers are `from`).
function denyAllSpec(): Record<string, unknown> {
  return { podSelector: { matchLabels: podLabels('b') }, policyTypes: ['Ingress'] };
}

/** Keeps B selected; allows (or not) TCP and UDP 80 from A and C. */
function gateSpec(allow: boolean): Record<string, unknown> {
  const peers = allow ? ['a', 'c'] : ['nobody'];
  return {
    podSelector: { matchLabels: podLabels('b') },
    policyTypes: ['Ingress'],
    ingress: [{ from: peers.map((app) => ({ podSelector: { matchLabels: podLabels(app) } })), ports: [{ protocol: 'TCP', port: PROBE_PORT }, { protocol: 'UDP', port: PROBE_PORT }] }],
  };
}

export async function benchApplyLatency(samples = 200): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const cluster = await startCluster({ nodes: 2 });
  const probers: Prober[] = [];
  let api: KeepAliveApi | undefined;
  try {
    const [node1, node2] = cluster.nodes as [SimNode, SimNode];
    const enforcement = new EnforcementTracker();
    enforcement.note('Namespace', await createNamespace(cluster, NAMESPACE, { bench: 'apply-latency' }));
    const start = async (name: string, node: SimNode) => {
      const pod = await cluster.kubelet.startPod({ namespace: NAMESPACE, name, labels: podLabels(name), node });
      cluster.pods.set(`${NAMESPACE}/${name}`, pod);
      enforcement.note('Pod', pod.resourceVersion);
      return pod;
    };
    const [a, b, c] = await Promise.all([start('a', node1), start('b', node2), start('c', node2)]);
    await enforcement.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 30_000);

    probers.push(await Prober.start(cluster, 'cross-node', 'tcp', a, b), await Prober.start(cluster, 'same-node', 'tcp', c, b));
    // Not waited for: one long-lived UDP flow A->B, to see whether each verdict reaches established flows too.
    const flow = await Prober.start(cluster, 'udp-flow', 'udp', a, b);
    await waitAll([...probers, flow], 'ok', 0, 10_000);
    probers.push(flow);
    const measured = probers.slice(0, 2);

    // Writes go over one kept-alive connection, so that a call's return is close to the API server's accepting it.
    api = await KeepAliveApi.connect(cluster.kubeconfig);
    const policies = `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/networkpolicies`;
    const noopPath = `/api/v1/namespaces/${NAMESPACE}/configmaps/noop`;
    const noop = (await api.request('POST', `/api/v1/namespaces/${NAMESPACE}/configmaps`, { metadata: { name: 'noop' }, data: { k: 'v' } })).body;
    const noopWrite = async () => {
      const start = performance.now();
      await api!.request('PUT', noopPath, noop);
      return performance.now() - start;
    };

    let gateVersion: string | undefined;
    const writes: Record<Mode, (deny: boolean) => Promise<unknown>> = {
      'create/delete': (deny) =>
        deny
          ? api!.request('POST', policies, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny' }, spec: denyAllSpec() })
          : api!.request('DELETE', `${policies}/deny`),
      replace: async (deny) => {
        const body = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'gate', resourceVersion: gateVersion }, spec: gateSpec(!deny) };
        const written = gateVersion ? await api!.request('PUT', `${policies}/gate`, body) : await api!.request('POST', policies, body);
        gateVersion = (written.body.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
      },
    };

    const all: Sample[] = [];
    /** Every write in order (warm-up and set-up writes too): they bound the samples' windows. */
    const writeLog: Array<{ before: number; expect: Verdict | undefined }> = [];
    for (const mode of ['create/delete', 'replace'] as const) {
      if (mode === 'replace') {
        // B stays selected from here on: the first write (allowing) is not a sample.
        writeLog.push({ before: Date.now(), expect: undefined });
        await writes.replace(false);
        await sleep(200);
        await waitAll(measured, 'ok', 0, 10_000);
      }
      for (let i = 0; i < WARMUP + samples; i++) {
        const expect: Verdict = i % 2 === 0 ? 'fail' : 'ok';
        const before = Date.now();
        writeLog.push({ before, expect });
        await writes[mode](expect === 'fail');
        const accepted = Date.now();
        await waitAll(measured, expect, before, SAMPLE_TIMEOUT_MS).catch((error: Error) => console.error(`${mode} write ${i}: ${error.message}`));
        const noopMs = await noopWrite();
        // Let stragglers (late echoes, flaps) show, at a pace that does not lock onto anything periodic.
        await sleep(20 + Math.random() * 40);
        if (i >= WARMUP) all.push({ mode, expect, before, accepted, noopMs, seen: new Map(), flaps: 0 });
      }
      if (mode === 'replace') {
        writeLog.push({ before: Date.now(), expect: undefined });
        await api.request('DELETE', `${policies}/gate`);
      }
    }
    for (const prober of probers) await prober.stop();

    // What each prober saw within each sample's window (up to the next write).
    for (const prober of probers) {
      for (const sample of all) {
        const end = writeLog.find((w) => w.before > sample.before)?.before ?? Infinity;
        const inWindow = prober.changes.filter((c) => c.at >= sample.before && c.at < end);
        // The change after which the new verdict held until the next write (a single odd attempt before it is a flap).
        const last = inWindow.at(-1);
        const settled = last?.verdict === sample.expect ? last : undefined;
        sample.seen.set(prober.name, settled);
        if (measured.includes(prober)) sample.flaps += Math.max(0, inWindow.length - (settled ? 1 : 0));
      }
    }
    const stageLines = readStages(`${cluster.runDir}/${node2.name}/agent.log`);
    const otherLines = readStages(`${cluster.runDir}/${node1.name}/agent.log`).filter((s) => s.eventAt >= all[0]!.before);
    let next = 0;
    for (const sample of all) {
      while (next < stageLines.length && stageLines[next]!.eventAt < sample.before) next++;
      const line = stageLines[next];
      if (line && line.writtenAt >= sample.before) {
        sample.stages = line;
        next++;
      }
    }
    const batchesInRun = stageLines.filter((s) => s.eventAt >= all[0]!.before).length;
    const writesInRun = writeLog.filter((w) => w.before >= all[0]!.before).length;

    // Whether the long-lived UDP flow followed every deny, warm-up included.
    const denies = writeLog.flatMap((w, i) => {
      if (w.expect !== 'fail') return [];
      const end = writeLog[i + 1]?.before ?? Infinity;
      return [{ index: i + 1, seen: flow.changes.some((c) => c.verdict === 'fail' && c.at >= w.before && c.at < end) }];
    });
    const firstMissed = denies.find((d) => !d.seen);
    const flowSummary = `${denies.filter((d) => d.seen).length} of ${denies.length} deny writes (warm-up included)` +
      (firstMissed ? `; the first it missed was write ${firstMissed.index} of ${writeLog.length}, after which it saw ${denies.filter((d) => d.seen && d.index > firstMissed.index).length}` : '');

    report(all, probers, samples, { batchesInRun, writesInRun, node1Batches: otherLines.length, flowSummary, load: [loadBefore, loadavg()[0]!] });
  } finally {
    api?.close();
    for (const prober of probers) await prober.process.stop();
    await keepLogs(cluster);
    await cluster.stop();
  }
}

/** PALISADE_BENCH_KEEP_LOGS=DIR keeps the run's logs (agents, probers, operator) there, for a closer look. */
async function keepLogs(cluster: Cluster): Promise<void> {
  const dir = process.env.PALISADE_BENCH_KEEP_LOGS;
  if (!dir) return;
  await cp(cluster.runDir, dir, { recursive: true, filter: (src) => !/bpffs|\.sock$|control-plane\/.*(etcd|pki)/.test(src) }).catch((e: Error) =>
    console.error(`could not keep the logs: ${e.message}`),
  );
}

async function waitAll(probers: Prober[], expect: Verdict, since: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of probers) p.poll();
    if (probers.every((p) => (since === 0 ? p.verdict : p.verdictSince(since)) === expect)) return;
    if (Date.now() > deadline) {
      const state = probers.map((p) => `${p.name}=${p.verdict} (last change ${p.changes.at(-1)?.at.toFixed(1)}, ${p.changes.length} changes)`);
      throw new Error(`probers did not all see ${expect} since ${since} within ${timeoutMs} ms: ${state.join(', ')}`);
    }
    await sleep(2);
  }
}

function readStages(file: string): Stages[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines.flatMap((line) => {
    const m = /policy-stages (\{.*\})/.exec(line);
    if (!m) return [];
    const s = JSON.parse(m[1]!) as Partial<Stages>;
    return typeof s.eventAt === 'number' ? [s as Stages] : [];
  });
}

function report(
  all: Sample[],
  probers: Prober[],
  samples: number,
  agent: { batchesInRun: number; writesInRun: number; node1Batches: number; flowSummary: string; load: number[] },
): void {
  const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1) : 'never').padStart(7);
  const row = (label: string, values: number[]) =>
    values.length === 0
      ? `  ${label.padEnd(34)} (no samples)`
      : `  ${label.padEnd(34)} p50 ${fmt(median(values))} ms   p99 ${fmt(percentile(values, 99))} ms   max ${fmt(Math.max(...values))} ms`;
  const verdicts = { fail: 'deny', ok: 'allow' } as const;

  console.log(`apply-latency: ${samples} writes per mode (after ${WARMUP} warm-up writes), alternately denying and allowing;`);
  console.log(`  probers: a new TCP connection to port ${PROBE_PORT} every ${PROBE_INTERVAL_MS} ms; one not established within ${PROBE_TIMEOUT_MS} ms is denied;`);
  console.log(`  cross-node = pod A (node-1) -> pod B (node-2), same-node = pod C (node-2) -> pod B;`);
  console.log(`  latency = API write accepted (call returned) -> send time of the first attempt of the prober's run of new verdicts that held until the next write`);
  console.log(`  machine: 1-min load average ${agent.load.map((l) => l.toFixed(2)).join(' before, ')} after`);

  const targets: string[] = [];
  for (const mode of ['create/delete', 'replace'] as const) {
    const ofMode = all.filter((s) => s.mode === mode);
    const total = (s: Sample, prober: string) => (s.seen.get(prober)?.at ?? Infinity) - s.accepted;
    const staged = ofMode.filter((s) => s.stages && s.seen.get('cross-node') !== undefined);
    console.log('');
    console.log(
      mode === 'create/delete'
        ? `mode create/delete: create a deny-all-ingress policy selecting B, then delete it`
        : `mode replace: replace a policy selecting B between "allow TCP+UDP 80 from A and C" and "from nobody"`,
    );
    console.log(row('total, cross-node', ofMode.map((s) => total(s, 'cross-node'))));
    for (const v of ['fail', 'ok'] as const) {
      console.log(row(`  of which ${verdicts[v]} writes`, ofMode.filter((s) => s.expect === v).map((s) => total(s, 'cross-node'))));
    }
    console.log(row('total, same-node', ofMode.map((s) => total(s, 'same-node'))));
    console.log(row('cross-node from call START (bound)', ofMode.map((s) => total(s, 'cross-node') + (s.accepted - s.before))));
    console.log(`  stages (cross-node, ${staged.length} of ${ofMode.length} samples matched to a policy-stages line of B's agent):`);
    const st = (f: (s: Sample & { stages: Stages }) => number) => staged.map((s) => f(s as Sample & { stages: Stages }));
    console.log(row('  watch      accepted -> eventAt', st((s) => s.stages.eventAt - s.accepted)));
    console.log(row('  queue      eventAt -> startedAt', st((s) => s.stages.startedAt - s.stages.eventAt)));
    console.log(row('  compile    startedAt -> compiledAt', st((s) => s.stages.compiledAt - s.stages.startedAt)));
    console.log(row('  publish    compiledAt -> diffedAt', st((s) => s.stages.diffedAt - s.stages.compiledAt)));
    console.log(row('  map-write  diffedAt -> writtenAt', st((s) => s.stages.writtenAt - s.stages.diffedAt)));
    console.log(row('  visible    writtenAt -> prober', st((s) => s.seen.get('cross-node')!.at - s.stages.writtenAt)));
    const brackets = ofMode.flatMap((s) => {
      const c = s.seen.get('cross-node');
      return c ? [c.at - c.previousAt] : [];
    });
    console.log(row('  (detection bracket: attempt gap)', brackets));
    const flaps = ofMode.reduce((n, s) => n + s.flaps, 0);
    const missed = ofMode.filter((s) => s.seen.get('cross-node') === undefined || s.seen.get('same-node') === undefined).length;
    console.log(`  write call round trip: p50 ${fmt(median(ofMode.map((s) => s.accepted - s.before)))} ms   p99 ${fmt(percentile(ofMode.map((s) => s.accepted - s.before), 99))} ms;  missed samples ${missed}; flaps ${flaps}`);
    const flowSaw = (v: Verdict) => {
      const of = ofMode.filter((s) => s.expect === v);
      return `${of.filter((s) => s.seen.get('udp-flow') !== undefined).length} of ${of.length} ${verdicts[v]} writes`;
    };
    const flowTotals = ofMode.filter((s) => s.seen.get('udp-flow')).map((s) => total(s, 'udp-flow'));
    console.log(`  one long-lived UDP flow A->B (same 5-tuple throughout) saw ${flowSaw('fail')} and ${flowSaw('ok')}` +
      (flowTotals.length ? `; when it did: p50 ${fmt(median(flowTotals))} ms` : ''));
    const cross = ofMode.map((s) => total(s, 'cross-node'));
    const p50 = median(cross);
    const p99 = percentile(cross, 99);
    targets.push(
      `target ${mode.padEnd(13)} p50 < ${TARGET_P50_MS} ms: ${p50 < TARGET_P50_MS ? 'PASS' : 'MISS'} (${p50.toFixed(1)} ms)`,
      `target ${mode.padEnd(13)} p99 < ${TARGET_P99_MS} ms: ${p99 < TARGET_P99_MS ? 'PASS' : 'MISS'} (${p99.toFixed(1)} ms)`,
    );
  }

  console.log('');
  console.log('baselines (same run):');
  for (const p of probers) {
    const s = p.summary;
    console.log(
      s
        ? `  prober ${p.name.padEnd(10)} resolution (time between attempts): p50 ${s.gapP50Ms.toFixed(2)} ms  p99 ${s.gapP99Ms.toFixed(2)} ms  max ${s.gapMaxMs.toFixed(2)} ms  (${s.attempts} attempts, ${s.late} late answers, ${s.errors} errors)`
        : `  prober ${p.name}: no summary`,
    );
  }
  const noop = all.map((s) => s.noopMs);
  console.log(`  API no-op write round trip (ConfigMap replaced by itself): p50 ${fmt(median(noop))} ms   p99 ${fmt(percentile(noop, 99))} ms`);
  console.log(`  the long-lived UDP flow A->B saw ${agent.flowSummary}`);
  console.log(`  agent batches during the samples: node-2 ${agent.batchesInRun} for ${agent.writesInRun} policy writes, node-1 ${agent.node1Batches}`);
  console.log('');
  console.log('targets (cross-node total; Cilium reports p50 9 ms, p99 0.32 s at 1,000 nodes):');
  for (const line of targets) console.log(`  ${line}`);
}
