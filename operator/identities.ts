// The identity controller: keeps one SecurityIdentity per security label set
// in use (see identity-plan.ts). Informer events only request a sync; bursts
// fold into one follow-up run (CoalescingTask). The sync lists nothing itself:
// it plans from the informers' caches, with its own recent writes laid over
// them (the caches lag behind those writes; planning without them handed the
// same number out again and fought itself with 409s).
//
// Writes are idempotent: a create that finds the number already taken for the
// same key is a success; taken for another key, the key gets another number in
// an immediate re-run. Every write is fenced by isLeading(), checked just
// before the request, so a replica that has stepped down (or was stopped and
// resumed) writes nothing; and every call is bounded by a timeout.
import { CoreV1Api, CustomObjectsApi, makeInformer, type Informer, type KubeConfig, type KubernetesObject, type V1Namespace, type V1Pod } from '@kubernetes/client-node';
import { identityKey } from '../policy/ids.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { watchInformer } from '../lib/informers.ts';
import { knownIdentities, planIdentities, type IdentityHeld, type IdentityWanted } from './identity-plan.ts';
import { ALLOCATED_BY_ANNOTATION, isHttpStatus, PALISADE_GROUP, PALISADE_VERSION, timeoutOptions, type SecurityIdentityObject } from './kube.ts';

const PLURAL = 'securityidentities';
const coordinates = { group: PALISADE_GROUP, version: PALISADE_VERSION, plural: PLURAL };

export interface IdentityControllerOptions {
  /** How long an identity nobody uses is kept, so a pod recreated at once keeps its number and other nodes can catch up. */
  graceMs: number;
  log: (line: string) => void;
  /** Whether this replica may write now (the leader elector's fence). */
  isLeading: () => boolean;
  /** This replica's name, recorded on what it creates (ALLOCATED_BY_ANNOTATION). */
  writer: string;
  /** Monotonic clock for the grace period; default performance.now. */
  now?: () => number;
}

export async function startIdentityController(kubeconfig: KubeConfig, options: IdentityControllerOptions): Promise<{ stop(): Promise<void> }> {
  const { graceMs, log, isLeading, writer } = options;
  const now = options.now ?? (() => performance.now());
  const core = kubeconfig.makeApiClient(CoreV1Api);
  const custom = kubeconfig.makeApiClient(CustomObjectsApi);
  const pods = makeInformer<V1Pod>(kubeconfig, '/api/v1/pods', () => core.listPodForAllNamespaces({}, timeoutOptions()));
  const namespaces = makeInformer<V1Namespace>(kubeconfig, '/api/v1/namespaces', () => core.listNamespace({}, timeoutOptions()));
  const identities = makeInformer<SecurityIdentityObject & KubernetesObject>(
    kubeconfig,
    `/apis/${PALISADE_GROUP}/${PALISADE_VERSION}/${PLURAL}`,
    () => custom.listClusterCustomObject(coordinates, timeoutOptions()) as never,
  );
  let unusedSince = new Map<string, number>();
  let written = new Map<number, IdentityHeld>();
  let deleted = new Map<number, IdentityHeld>();
  let expiryTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** False (and logged once per sync) when this replica must not write. */
  let fenced = false;
  const mayWrite = () => {
    if (isLeading() && !stopped) return true;
    if (!fenced) log('identities: not leading; writes skipped');
    fenced = true;
    return false;
  };

  const sync: CoalescingTask = new CoalescingTask(
    async () => {
      fenced = false;
      if (!mayWrite()) return;
      const nsLabels = new Map(namespaces.list().map((ns) => [ns.metadata!.name!, ns.metadata?.labels ?? {}]));
      const wanted: IdentityWanted[] = [];
      for (const pod of pods.list()) {
        const namespace = pod.metadata!.namespace!;
        const labels = nsLabels.get(namespace);
        if (!labels || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
        const podLabels = pod.metadata?.labels ?? {};
        wanted.push({ key: identityKey(labels, podLabels), namespace, namespaceLabels: labels, podLabels });
      }
      const cache = identities.list().map((i) => ({ id: Number(i.metadata.name), key: i.spec.key, uid: i.metadata.uid }));
      const known = knownIdentities(cache, written, deleted);
      written = known.written;
      deleted = known.deleted;
      const plan = planIdentities(wanted, known.held, unusedSince, now(), graceMs);
      unusedSince = plan.unusedSince;
      let again = false;
      for (const c of plan.create) {
        if (!mayWrite()) return;
        const body: SecurityIdentityObject = {
          apiVersion: `${PALISADE_GROUP}/${PALISADE_VERSION}`,
          kind: 'SecurityIdentity',
          metadata: { name: String(c.id), annotations: { [ALLOCATED_BY_ANNOTATION]: writer } },
          spec: { key: c.key, namespace: c.namespace, namespaceLabels: c.namespaceLabels, podLabels: c.podLabels },
        };
        try {
          const made = (await custom.createClusterCustomObject({ ...coordinates, body }, timeoutOptions())) as SecurityIdentityObject & KubernetesObject;
          written.set(c.id, { id: c.id, key: c.key, uid: made.metadata?.uid });
          log(`identity ${c.id} allocated for ${c.namespace} ${JSON.stringify(c.podLabels)}`);
        } catch (error) {
          if (!isHttpStatus(error, 409)) throw error;
          // The number exists already (our cache had not shown it): whose is it?
          const existing = (await custom.getClusterCustomObject({ ...coordinates, name: String(c.id) }, timeoutOptions())) as SecurityIdentityObject & KubernetesObject;
          written.set(c.id, { id: c.id, key: existing.spec.key, uid: existing.metadata?.uid });
          if (existing.spec.key !== c.key) {
            log(`identity ${c.id} belongs to another label set (409); allocating another number`);
            again = true;
          }
        }
      }
      for (const d of plan.delete) {
        if (!mayWrite()) return;
        try {
          // Conditional on the uid we judged unused: never deletes a newer object of that number.
          await custom.deleteClusterCustomObject({ ...coordinates, name: String(d.id), body: d.uid ? { preconditions: { uid: d.uid } } : undefined }, timeoutOptions());
          log(`identity ${d.id} released`);
        } catch (error) {
          if (isHttpStatus(error, 409)) {
            again = true; // replaced by a newer object of that number meanwhile: plan again from what exists
            continue;
          }
          if (!isHttpStatus(error, 404)) throw error;
        }
        deleted.set(d.id, d);
        unusedSince.delete(d.key);
      }
      if (again) sync.request();
      // Unused identities are re-examined once the earliest grace period ends: one timer, not one per sync.
      clearTimeout(expiryTimer);
      if (plan.nextExpiry !== undefined && !stopped) expiryTimer = setTimeout(() => sync.request(), Math.max(0, plan.nextExpiry - now()) + 1).unref();
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
      stopped = true;
      clearTimeout(expiryTimer);
      await Promise.all(watches.map((w) => w.stop()));
      await sync.idle();
    },
  };
}
