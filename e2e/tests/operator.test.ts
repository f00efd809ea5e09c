// The operator's identity allocation against the real API server: one
// SecurityIdentity per security label set (shared by pods with equal labels),
// unused ones released after the grace period.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { listIdentities } from '../cluster/node-status.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { waitFor } from '../cluster/processes.ts';
import { createNamespace, startPods, stopPods } from '../cluster/workload.ts';

let cluster: Cluster;

before(async () => {
  cluster = await startCluster({ nodes: 1, identityGraceSeconds: 1 });
  await createNamespace(cluster, 'x', { 'kubernetes.io/metadata.name': 'x' });
});

after(async () => {
  await cluster?.stop();
});

const identities = async () => (await listIdentities(cluster)).filter((i) => i.spec.namespace === 'x');

const labelSets = async () => (await identities()).map((i) => JSON.stringify(i.spec.podLabels)).sort();

test('pods with equal labels share one identity; distinct label sets get distinct numbers', async () => {
  await startPods(cluster, [
    { namespace: 'x', name: 'a1', labels: { app: 'a' } },
    { namespace: 'x', name: 'a2', labels: { app: 'a' } },
    { namespace: 'x', name: 'b', labels: { app: 'b' } },
  ]);
  await waitFor('two identities', async () => assert.deepEqual(await labelSets(), ['{"app":"a"}', '{"app":"b"}']), { timeoutMs: 10_000 });
  const numbers = (await identities()).map((i) => Number(i.metadata.name));
  assert.ok(numbers.every((n) => n >= 256), `numbers ${numbers}`);
  assert.equal(new Set(numbers).size, 2);
});

test('an identity nobody uses any more is released after the grace period', async () => {
  await stopPods(cluster, [cluster.pods.get('x/b')!]);
  await waitFor('the identity of app=b released', async () => assert.deepEqual(await labelSets(), ['{"app":"a"}']), { timeoutMs: 15_000 });
});

test('label churn on pods allocates without conflicts: no 409s, one identity per label set, every final label set has one', async () => {
  // Bare Pod objects (no node): the operator allocates for every pod it sees.
  const names = ['churn-1', 'churn-2', 'churn-3'];
  for (const name of names) {
    await cluster.core.createNamespacedPod({ namespace: 'x', body: { metadata: { name, labels: { app: name, rev: '0' } }, spec: { containers: [{ name: 'c', image: 'none' }] } } });
  }
  const log = join(cluster.runDir, 'operator.log');
  const from = readFileSync(log).length;
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  // 20 relabels per second per pod for 3 s; the rev values recur, and with a 1 s grace
  // period identities are released and allocated again meanwhile.
  const final = new Map<string, string>();
  const started = performance.now();
  for (let step = 1; performance.now() - started < 3_000; step++) {
    const tick = performance.now();
    await Promise.all(
      names.map(async (name, i) => {
        const rev = String((step + i) % 7);
        final.set(name, rev);
        await cluster.core.patchNamespacedPod({ namespace: 'x', name, body: { metadata: { labels: { rev } } } }, mergePatch);
      }),
    );
    await sleep(Math.max(0, 50 - (performance.now() - tick)));
  }
  await waitFor(
    'an identity for every final label set',
    async () => {
      const sets = new Set(await labelSets());
      for (const name of names) assert.ok(sets.has(JSON.stringify({ app: name, rev: final.get(name) })), `${name} rev ${final.get(name)}`);
    },
    { timeoutMs: 10_000 },
  );
  const keys = (await identities()).map((i) => i.spec.key);
  assert.equal(new Set(keys).size, keys.length, 'two identities for one label set');
  const churnLog = readFileSync(log).subarray(from).toString();
  const allocations = churnLog.match(/identity \d+ allocated/g)?.length ?? 0;
  const fights = churnLog.split('\n').filter((line) => /409|conflict|sync failed|another label set/i.test(line));
  console.log(`label churn: ${allocations} identities allocated, ${fights.length} conflict or failure lines`);
  assert.deepEqual(fights, []);
  // How long a pod relabelled to a label set never seen before waits for its identity
  // (what an agent must bridge by keeping the pod's previous identity meanwhile).
  const relabelled = performance.now();
  await cluster.core.patchNamespacedPod({ namespace: 'x', name: 'churn-1', body: { metadata: { labels: { rev: 'fresh' } } } }, mergePatch);
  await waitFor('the identity of a fresh label set', async () => assert.ok((await labelSets()).includes(JSON.stringify({ app: 'churn-1', rev: 'fresh' }))), {
    timeoutMs: 5_000,
    intervalMs: 5,
  });
  console.log(`relabel to a new label set -> its SecurityIdentity readable: ${Math.round(performance.now() - relabelled)} ms`);
  await Promise.all(names.map((name) => cluster.core.deleteNamespacedPod({ namespace: 'x', name })));
});
