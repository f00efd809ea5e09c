// The operator's identity allocation against the real API server: one
// SecurityIdentity per security label set (shared by pods with equal labels),
// unused ones released after the grace period.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
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

interface Identity {
  metadata: { name: string };
  spec: { namespace: string; podLabels: Record<string, string> };
}

async function identities(): Promise<Identity[]> {
  const list = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).listClusterCustomObject({
    group: 'palisade.io',
    version: 'v1alpha1',
    plural: 'securityidentities',
  })) as { items: Identity[] };
  return list.items.filter((i) => i.spec.namespace === 'x');
}

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
