// Make-before-break on relabel (README, "Enforcement semantics"): a pod whose
// labels change keeps its verdicts until the identity of its new label set
// exists. Client pod A (node-1) opens a new TCP connection to server pod B
// (node-2) every 10 ms; the policies allow A -> B:80 throughout (B's ingress
// from app=client, A's egress to app=server: labels that never change) while
// A's `rev` label changes 20 times at 20 per second, each time to a label set
// nobody had before (a new identity for the operator to allocate). Every
// connection opened during and after the churn must succeed, as before it.
// A second test pauses the operator (SIGSTOP) during the churn, so that no
// new identity exists for 2.5 s: A must keep its old identity and verdicts
// meanwhile, and switch to its last label set's identity once the operator
// resumes. Before make-before-break, each relabel left A without an identity
// until its SecurityIdentity arrived (B's node judged it as world): 31 of 199
// connections failed in the first test, 219 of 227 in the second.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { CustomObjectsApi, NetworkingV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { LogLines } from '../bench/log-lines.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { NODE_BIN } from '../cluster/paths.ts';
import { probeAll } from '../cluster/probe.ts';
import { startProcess, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

const NAMESPACE = 'relabel';
const CHANGES = 20;
const CHANGE_EVERY_MS = 50;

// Run in A's network namespace: `node -e DRIVER IP PORT`. Every 10 ms it opens
// a new TCP connection (200 ms timeout) and prints `ok STARTED_AT` once
// connected or `fail STARTED_AT REASON`.
const DRIVER = String.raw`
const net = require('node:net');
const [ip, port] = process.argv.slice(1);
const out = (line) => process.stdout.write(line + '\n');
out('ready');
setInterval(() => {
  const at = Date.now();
  const s = net.connect({ host: ip, port: Number(port) });
  let done = false;
  const end = (line) => { if (done) return; done = true; out(line); s.destroy(); };
  s.setTimeout(200, () => end('fail ' + at + ' timeout'));
  s.on('connect', () => end('ok ' + at));
  s.on('error', (e) => end('fail ' + at + ' ' + e.code));
}, 10);
`;

let cluster: Cluster;
let a: SimPod;
let b: SimPod;
let driver: ManagedProcess | undefined;
const tracker = new EnforcementTracker();

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  tracker.note('Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
  let other: SimPod;
  [a, b, other] = (await startPods(cluster, [
    { namespace: NAMESPACE, name: 'a', labels: { app: 'client', rev: '0' } },
    { namespace: NAMESPACE, name: 'b', labels: { app: 'server' } },
    { namespace: NAMESPACE, name: 'other', labels: { app: 'other' } },
  ])) as [SimPod, SimPod, SimPod];
  assert.notEqual(a.node, b.node);
  for (const pod of [a, b, other]) tracker.note('Pod', pod.resourceVersion);
  const networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  const port = [{ protocol: 'TCP', port: 80 }];
  for (const body of [
    { metadata: { name: 'b-from-client' }, spec: { podSelector: { matchLabels: { app: 'server' } }, policyTypes: ['Ingress'], ingress: [{ _from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: port }] } }, // the client library spells `from` `_from`
    { metadata: { name: 'a-to-server' }, spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { app: 'server' } } }], ports: port }] } },
  ]) {
    const created = await networking.createNamespacedNetworkPolicy({ namespace: NAMESPACE, body });
    tracker.note('NetworkPolicy', created.metadata?.resourceVersion);
  }
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 30_000);
  // The policies are enforced by identity and port: A reaches B on port 80 only, a pod without app=client does not.
  const outcomes = await probeAll([
    { from: a, to: b, port: 80, protocol: 'TCP' },
    { from: a, to: b, port: 81, protocol: 'TCP' },
    { from: other, to: b, port: 80, protocol: 'TCP' },
  ]);
  assert.deepEqual(outcomes.map((o) => o.verdict), ['ok', 'fail', 'fail']);
});

after(async () => {
  if (paused) process.kill(cluster.operator.pid, 'SIGCONT');
  await driver?.stop();
  await cluster?.stop();
});

/** The connection driver's outcomes so far, by start time. */
class Outcomes {
  readonly results: Array<{ at: number; ok: boolean; line: string }> = [];
  readonly #lines: LogLines;
  constructor(logFile: string) {
    this.#lines = new LogLines(logFile, 0);
  }
  count(from: number, to: number): { total: number; failed: Array<{ at: number; line: string }> } {
    for (const line of this.#lines.next()) {
      const m = /^(ok|fail) (\d+)/.exec(line);
      if (m) this.results.push({ at: Number(m[2]), ok: m[1] === 'ok', line });
    }
    const inWindow = this.results.filter((r) => r.at >= from && r.at < to);
    return { total: inWindow.length, failed: inWindow.filter((r) => !r.ok) };
  }
}

let outcomes: Outcomes;
let paused = false;
let rev = 0;

async function startDriver(): Promise<void> {
  if (driver) return;
  const logFile = `${cluster.runDir}/relabel-driver.log`;
  driver = await startProcess({ name: 'connections a -> b', command: NODE_BIN, args: ['-e', DRIVER, b.ip, '80'], netns: a.netns, logFile, readyLine: /^ready$/, readyTimeoutMs: 10_000 });
  outcomes = new Outcomes(logFile);
}

/** Changes A's rev label CHANGES times, every CHANGE_EVERY_MS, each time to a label set never seen before. */
async function churn(): Promise<void> {
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  for (let i = 0; i < CHANGES; i++) {
    const tick = Date.now();
    const patched = await cluster.core.patchNamespacedPod({ namespace: NAMESPACE, name: 'a', body: { metadata: { labels: { rev: `churn-${++rev}` } } } }, mergePatch);
    tracker.note('Pod', patched.metadata?.resourceVersion);
    await sleep(Math.max(0, CHANGE_EVERY_MS - (Date.now() - tick)));
  }
}

const enforced = () => tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 30_000);

const describe = (c: { total: number; failed: Array<{ at: number; line: string }> }, since: number) =>
  `${c.failed.length} of ${c.total} connections failed${c.failed.length ? ` (first: ${c.failed[0]!.line}, ${c.failed[0]!.at - since} ms after the first relabel)` : ''}`;

test(`a flow the policy allows keeps passing while the client's labels change ${CHANGES} times at ${1000 / CHANGE_EVERY_MS}/s`, async (t) => {
  await startDriver();
  // Before: 2 s of connections with stable labels.
  const baselineFrom = Date.now();
  await sleep(2_000);
  const churnFrom = Date.now();
  await churn();
  const churnTo = Date.now();
  // Every node enforces the last label set (its identity known everywhere), then 1 s more.
  await enforced();
  const settledAt = Date.now();
  await sleep(1_000);
  const end = Date.now();
  await sleep(400); // connections opened before `end` have printed their outcome (200 ms timeout)

  const baseline = outcomes.count(baselineFrom, churnFrom);
  const during = outcomes.count(churnFrom, end);
  t.diagnostic(`before the churn: ${describe(baseline, churnFrom)}`);
  t.diagnostic(`${CHANGES} relabels in ${churnTo - churnFrom} ms, enforced everywhere ${settledAt - churnTo} ms after the last; from the first relabel to 1 s after that: ${describe(during, churnFrom)}`);
  assert.ok(baseline.total >= 100, `only ${baseline.total} connections in the baseline`);
  assert.equal(baseline.failed.length, 0, `before the churn: ${describe(baseline, churnFrom)}`);
  assert.ok(during.total >= 150, `only ${during.total} connections during the churn`);
  assert.equal(during.failed.length, 0, `during the churn: ${describe(during, churnFrom)}`);
});

test('while the operator cannot allocate (paused), the relabelled client keeps its old identity and verdicts; it switches once the identity exists', async (t) => {
  await startDriver();
  const baselineFrom = Date.now();
  await sleep(1_000);
  // SIGSTOP: the operator allocates nothing until SIGCONT (after() resumes it if this test fails first).
  process.kill(cluster.operator.pid, 'SIGSTOP');
  paused = true;
  const churnFrom = Date.now();
  try {
    await churn();
    await sleep(1_500);
  } finally {
    process.kill(cluster.operator.pid, 'SIGCONT');
    paused = false;
  }
  const resumedAt = Date.now();
  const gap = outcomes.count(churnFrom, resumedAt - 200);
  await enforced();
  const settledAt = Date.now();
  await sleep(1_000);
  const end = Date.now();
  await sleep(400);
  const baseline = outcomes.count(baselineFrom, churnFrom);
  const after = outcomes.count(resumedAt, end);
  t.diagnostic(`before: ${describe(baseline, churnFrom)}`);
  t.diagnostic(`operator paused ${resumedAt - churnFrom} ms, ${CHANGES} relabels meanwhile: ${describe(gap, churnFrom)}`);
  t.diagnostic(`after it resumed (last label set enforced everywhere ${settledAt - resumedAt} ms later): ${describe(after, churnFrom)}`);
  assert.equal(baseline.failed.length, 0, `before: ${describe(baseline, churnFrom)}`);
  assert.ok(gap.total >= 150, `only ${gap.total} connections while the operator was paused`);
  assert.equal(gap.failed.length, 0, `while the new identities were missing: ${describe(gap, churnFrom)}`);
  assert.equal(after.failed.length, 0, `after the switch: ${describe(after, churnFrom)}`);
  // The switch happened: every node reports no pending identity (tracker.wait above), and A's
  // identity is the one of its last label set.
  const identities = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'palisade.io', version: 'v1alpha1', plural: 'securityidentities' })) as {
    items: Array<{ metadata: { name: string }; spec: { namespace: string; podLabels: Record<string, string> } }>;
  };
  const last = identities.items.find((i) => i.spec.namespace === NAMESPACE && i.spec.podLabels.rev === `churn-${rev}`);
  assert.ok(last, 'the last label set has its identity');
  // B's node judges A by it: its ipcache maps A's address to that number.
  const dump = JSON.parse((await execa('bpftool', ['-j', 'map', 'dump', 'pinned', `${b.node.bpffs}/pal_ipcache4`])).stdout) as Array<{ key: string[]; value: string[] }>;
  const entry = dump.find((e) => e.key.map((x) => Number(x)).join('.') === a.ip);
  assert.ok(entry, `A's address ${a.ip} is in ${b.node.name}'s ipcache`);
  assert.equal(Buffer.from(entry.value.slice(0, 4).map((x) => Number(x))).readUInt32LE(0), Number(last.metadata.name));
});
