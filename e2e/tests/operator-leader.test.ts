// Leader election of two real operator replicas against a real API server:
// an API server that hangs or restarts for less than the renew deadline is
// ridden out; a
// stalled leader (SIGSTOP) is replaced only after the lease duration, and,
// resumed, steps down without writing; a leader stopped cleanly (SIGTERM)
// releases the lease and is replaced at once. Pods here are bare Pod objects
// (no node): the operator allocates identities for every pod it sees.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { listIdentities, type SecurityIdentityObject } from '../cluster/node-status.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { NODE_BIN, programs } from '../cluster/paths.ts';
import { startProcess, waitFor, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace } from '../cluster/workload.ts';

const LEASE_MS = 15_000; // the operator's defaults: lease 15 s, renew deadline 10 s, retry 2 s
const RETRY_MS = 2_000;
const ALLOCATED_BY = 'palisade.io/allocated-by';

let cluster: Cluster;
let replicaB: ManagedProcess | undefined;
/** Processes this file stopped with SIGSTOP: resumed in after() so they can be stopped. */
const stalled = new Set<number>();

before(async () => {
  cluster = await startCluster({ nodes: 0, identityGraceSeconds: 60 });
  await createNamespace(cluster, 'lead', { 'kubernetes.io/metadata.name': 'lead' });
  replicaB = await startProcess({
    name: 'operator replica b',
    command: NODE_BIN,
    args: [programs.operator, '--kubeconfig', cluster.controlPlane.adminKubeconfig, '--identity', 'replica-b', '--identity-grace-seconds', '60'],
    logFile: join(cluster.runDir, 'operator-b.log'),
  });
  // A follower prints nothing that must be relied on; give it a retry period to read the lease.
  await sleep(RETRY_MS + 500);
  assert.equal(await Promise.race([replicaB.exited.then(() => 'exited'), sleep(0, 'running')]), 'running', replicaB.logTail());
});

after(async () => {
  for (const pid of stalled) signal(pid, 'SIGCONT');
  try {
    await replicaB?.stop();
  } finally {
    await cluster?.stop();
  }
});

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function holder(): Promise<string> {
  const lease = await cluster.kubeconfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'palisade-operator', namespace: 'kube-system' });
  return lease.spec?.holderIdentity ?? '';
}

const identities = () => listIdentities(cluster);

async function createPod(name: string, labels: Record<string, string>): Promise<void> {
  await cluster.core.createNamespacedPod({
    namespace: 'lead',
    body: { metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'none' }] } },
  });
}

async function identityOf(labels: Record<string, string>, timeoutMs: number): Promise<SecurityIdentityObject> {
  let found: SecurityIdentityObject | undefined;
  await waitFor(
    `an identity for ${JSON.stringify(labels)}`,
    async () => {
      found = (await identities()).find((i) => JSON.stringify(i.spec.podLabels) === JSON.stringify(labels));
      assert.ok(found);
    },
    { timeoutMs },
  );
  return found!;
}

/** Log of a replica from byte `from` on. */
const logOf = (file: string, from = 0) => readFileSync(file).subarray(from).toString();
const logSize = (file: string) => readFileSync(file).length;
const logA = () => join(cluster.runDir, 'operator.log');
const logB = () => join(cluster.runDir, 'operator-b.log');
/** The cluster's own replica (named after its host and pid) holds the lease. */
const firstReplicaLeads = async () => {
  const name = await holder();
  assert.ok(name !== '' && name !== 'replica-b', `lease held by "${name}"`);
};

test('the leader rides out a hung API server (6 s): its calls time out, it keeps the lease', async () => {
  const leader = await holder();
  assert.notEqual(leader, 'replica-b');
  const from = logSize(logA());
  await cluster.controlPlane.pauseApiserver(6_000);
  await sleep(RETRY_MS + 500);
  const during = logOf(logA(), from);
  assert.match(during, /leader: renewal failed: no answer within 4000 ms/, during);
  assert.doesNotMatch(during, /stepped down/, during);
  assert.equal(await holder(), leader);
  await createPod('after-hang', { app: 'after-hang' });
  const made = await identityOf({ app: 'after-hang' }, 10_000);
  assert.equal(made.metadata.annotations?.[ALLOCATED_BY], leader);
});

test('the leader rides out an API server restart shorter than the lease', async () => {
  const leader = await holder();
  assert.notEqual(leader, 'replica-b');
  const from = logSize(logA());
  const started = performance.now();
  await cluster.controlPlane.restartApiserver();
  const outageMs = performance.now() - started;
  console.log(`API server down and back in ${Math.round(outageMs)} ms`);
  assert.ok(outageMs < 10_000, `the restart took ${Math.round(outageMs)} ms, longer than the renew deadline: the test cannot judge`);
  await sleep(RETRY_MS + 500);
  const after = logOf(logA(), from);
  assert.doesNotMatch(after, /stepped down|leadership lost|exiting/, after);
  assert.equal(await Promise.race([cluster.operator.exited.then(() => 'exited'), sleep(0, 'running')]), 'running');
  assert.equal(await holder(), leader);
  // And it still allocates: its watches came back.
  await createPod('after-outage', { app: 'after-outage' });
  const made = await identityOf({ app: 'after-outage' }, 10_000);
  assert.equal(made.metadata.annotations?.[ALLOCATED_BY], leader);
});

test('a stalled leader is replaced only after the lease duration and, resumed, steps down without writing', async () => {
  const leaderA = await holder();
  assert.ok(leaderA && leaderA !== 'replica-b');
  await createPod('before-stall', { app: 'before-stall' });
  await identityOf({ app: 'before-stall' }, 10_000);
  // Stop it only once it has processed the answer to that write, so that what it logs after resuming is new.
  await waitFor('the leader logging the allocation', async () => assert.match(logOf(logA()), /allocated for lead \{"app":"before-stall"\}/), { timeoutMs: 5_000 });

  const stoppedAt = performance.now();
  signal(cluster.operator.pid, 'SIGSTOP');
  stalled.add(cluster.operator.pid);
  // A pod with a new label set while nobody leads: the new leader must allocate it.
  await createPod('during-stall', { app: 'during-stall' });
  await waitFor('replica-b holding the lease', async () => assert.equal(await holder(), 'replica-b'), { timeoutMs: LEASE_MS + 3 * RETRY_MS, intervalMs: 50 });
  const takeoverMs = performance.now() - stoppedAt;
  console.log(`replica-b took over ${Math.round(takeoverMs)} ms after the leader was stopped`);
  // b takes over a whole lease after the last change it saw, which was at most one retry period before the stop.
  assert.ok(takeoverMs >= LEASE_MS - RETRY_MS - 500, `took over after ${Math.round(takeoverMs)} ms: before the lease could have expired`);
  const during = await identityOf({ app: 'during-stall' }, 10_000);
  assert.equal(during.metadata.annotations?.[ALLOCATED_BY], 'replica-b');

  const ownedByA = async () => (await identities()).filter((i) => i.metadata.annotations?.[ALLOCATED_BY] === leaderA).map((i) => i.metadata.uid).sort();
  const aBefore = await ownedByA();
  const from = logSize(logA());
  signal(cluster.operator.pid, 'SIGCONT');
  stalled.delete(cluster.operator.pid);
  // Work that a confused old leader would do: a new label set right after it resumes.
  await createPod('after-resume', { app: 'after-resume' });
  const afterResume = await identityOf({ app: 'after-resume' }, 10_000);
  assert.equal(afterResume.metadata.annotations?.[ALLOCATED_BY], 'replica-b');
  await sleep(RETRY_MS + 1_000);
  const resumedLog = logOf(logA(), from);
  assert.match(resumedLog, /stepped down: renew deadline/, resumedLog);
  assert.doesNotMatch(resumedLog, /identity \d+ (allocated|released)/, resumedLog);
  assert.deepEqual(await ownedByA(), aBefore, 'the resumed replica wrote SecurityIdentity objects');
  assert.equal(await holder(), 'replica-b');
  // It went back to being a candidate rather than exiting.
  assert.equal(await Promise.race([cluster.operator.exited.then(() => 'exited'), sleep(0, 'running')]), 'running');
  // One identity per label set, whoever allocated it.
  const keys = (await identities()).map((i) => i.spec.key);
  assert.equal(new Set(keys).size, keys.length, `duplicate identities: ${keys}`);
});

test('a leader stopped with SIGTERM releases the lease; the other replica takes over well within the lease', async () => {
  assert.equal(await holder(), 'replica-b');
  const stoppedAt = performance.now();
  await replicaB!.stop();
  const exitedMs = performance.now() - stoppedAt;
  assert.match(logOf(logB()), /released lease/);
  await waitFor('the first replica holding the lease', firstReplicaLeads, { timeoutMs: LEASE_MS, intervalMs: 50 });
  const takeoverMs = performance.now() - stoppedAt;
  console.log(`replica-b exited ${Math.round(exitedMs)} ms after SIGTERM; the other replica led ${Math.round(takeoverMs)} ms after SIGTERM`);
  assert.ok(takeoverMs < RETRY_MS + 1_500, `took over after ${Math.round(takeoverMs)} ms`);
  await createPod('after-release', { app: 'after-release' });
  const made = await identityOf({ app: 'after-release' }, 10_000);
  assert.equal(made.metadata.annotations?.[ALLOCATED_BY], await holder());
});
