// The identity controller: keeps one SecurityIdentity per security label set
// in use (see identity-plan.ts). Informer events only request a sync; the
// sync lists nothing itself, it plans from the informers' caches.
import { CoreV1Api, CustomObjectsApi, makeInformer, type Informer, type KubeConfig, type KubernetesObject, type V1Namespace, type V1Pod } from '@kubernetes/client-node';
import { identityKey } from '../policy/ids.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { watchInformer } from '../lib/informers.ts';
import { planIdentities, type IdentityWanted } from './identity-plan.ts';
import { PALISADE_GROUP, PALISADE_VERSION, type SecurityIdentityObject } from './kube.ts';

const PLURAL = 'securityidentities';

/** graceMs: how long an identity nobody uses is kept, so a pod recreated at once keeps its number. */
export async function startIdentityController(kubeconfig: KubeConfig, graceMs: number, log: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  const core = kubeconfig.makeApiClient(CoreV1Api);
  const custom = kubeconfig.makeApiClient(CustomObjectsApi);
  const pods = makeInformer<V1Pod>(kubeconfig, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const namespaces = makeInformer<V1Namespace>(kubeconfig, '/api/v1/namespaces', () => core.listNamespace());
  const identities = makeInformer<SecurityIdentityObject & KubernetesObject>(
    kubeconfig,
    `/apis/${PALISADE_GROUP}/${PALISADE_VERSION}/${PLURAL}`,
    () => custom.listClusterCustomObject({ group: PALISADE_GROUP, version: PALISADE_VERSION, plural: PLURAL }) as never,
  );
  let unusedSince = new Map<string, number>();

  const sync = new CoalescingTask(
    async () => {
      const nsLabels = new Map(namespaces.list().map((ns) => [ns.metadata!.name!, ns.metadata?.labels ?? {}]));
      const wanted: IdentityWanted[] = [];
      for (const pod of pods.list()) {
        const namespace = pod.metadata!.namespace!;
        const labels = nsLabels.get(namespace);
        if (!labels || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
        const podLabels = pod.metadata?.labels ?? {};
        wanted.push({ key: identityKey(labels, podLabels), namespace, namespaceLabels: labels, podLabels });
      }
      const held = identities.list().map((i) => ({ id: Number(i.metadata.name), key: i.spec.key }));
      const plan = planIdentities(wanted, held, unusedSince, Date.now(), graceMs);
      unusedSince = plan.unusedSince;
      for (const c of plan.create) {
        const body: SecurityIdentityObject = {
          apiVersion: `${PALISADE_GROUP}/${PALISADE_VERSION}`,
          kind: 'SecurityIdentity',
          metadata: { name: String(c.id) },
          spec: { key: c.key, namespace: c.namespace, namespaceLabels: c.namespaceLabels, podLabels: c.podLabels },
        };
        await custom.createClusterCustomObject({ group: PALISADE_GROUP, version: PALISADE_VERSION, plural: PLURAL, body });
        log(`identity ${c.id} allocated for ${c.namespace} ${JSON.stringify(c.podLabels)}`);
      }
      for (const id of plan.delete) {
        await custom.deleteClusterCustomObject({ group: PALISADE_GROUP, version: PALISADE_VERSION, plural: PLURAL, name: String(id) });
        log(`identity ${id} released`);
      }
      // Unused identities are re-examined once their grace period is over.
      if (plan.unusedSince.size > 0) setTimeout(() => sync.request(), graceMs).unref();
    },
    { onError: (error) => log(`identities: sync failed, retrying: ${(error as Error).message}`) },
  );

  const watches = ([pods, namespaces, identities] as Informer<KubernetesObject>[]).map((informer) =>
    watchInformer(informer, () => sync.request(), (error) => log(`identities: watch failed, restarting: ${String(error)}`)),
  );
  await Promise.all(watches.map((w) => w.start()));
  sync.request();
  return {
    async stop() {
      await Promise.all(watches.map((w) => w.stop()));
      await sync.idle();
    },
  };
}
