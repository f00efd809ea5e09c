// The status controller of Palisade's policy kinds: watches every
// PalisadeNetworkPolicy and PalisadeClusterNetworkPolicy, validates each
// generation with the zod validator (the CRD's schema and CEL rules refuse
// most invalid policies already; this also catches what a CRD cannot check,
// and objects stored before a stricter CRD), and writes `status` by
// server-side apply of the status subresource: observedGeneration, Valid
// (False naming every invalid field) and Enforced (Unknown, reason
// NotYetImplemented, until the compiler and datapath exist). A policy that
// turns invalid also gets a Warning event naming the fields.
//
// Level-triggered: any change requests one sync over both caches; a sync
// writes only where the status would change, and not again while the cache
// still shows the version it judged (the cache lags behind our own writes).
// Every write is fenced by isLeading() and bounded by a timeout.
//
// Why @kubernetes/client-node and not kubernetes-fluent-client, which the
// issue suggested for this: docs/adr/0009-palisade-policy-api.md.
import { CoreV1Api, CustomObjectsApi, makeInformer, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import {
  PALISADE_POLICY_GROUP,
  PALISADE_POLICY_KINDS,
  PALISADE_POLICY_VERSION,
  validatePalisadePolicy,
  type PalisadePolicyValidation,
  type PolicyKindInfo,
} from '../policy/palisade-policy.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { postWarningEvent } from '../lib/events.ts';
import { watchInformer } from '../lib/informers.ts';
import { isHttpStatus, timeoutOptions } from './kube.ts';
import { desiredStatus, needsWrite, statusApplyBody, VALID, type PolicyObject } from './policy-status.ts';

/** The field manager of the operator's status writes (it owns observedGeneration, Valid and Enforced). */
export const POLICY_STATUS_FIELD_MANAGER = 'palisade-operator';

export interface PolicyStatusControllerOptions {
  log: (line: string) => void;
  /** Whether this replica may write now (the leader elector's fence). */
  isLeading: () => boolean;
  now?: () => Date;
}

type Policy = PolicyObject & KubernetesObject;

/** Options of one server-side apply call: its content type, and a signal that aborts it after the call timeout. */
const applyOptions = () => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply, timeoutOptions());

export async function startPalisadePolicyController(kubeconfig: KubeConfig, options: PolicyStatusControllerOptions): Promise<{ stop(): Promise<void> }> {
  const { log, isLeading } = options;
  const now = options.now ?? (() => new Date());
  const custom = kubeconfig.makeApiClient(CustomObjectsApi);
  const core = kubeconfig.makeApiClient(CoreV1Api);
  const coordinates = (info: PolicyKindInfo) => ({ group: PALISADE_POLICY_GROUP, version: PALISADE_POLICY_VERSION, plural: info.plural });
  const informers = PALISADE_POLICY_KINDS.map((info) => ({
    info,
    informer: makeInformer<Policy>(kubeconfig, `/apis/${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}/${info.plural}`, () =>
      (info.scope === 'Namespaced'
        ? custom.listCustomObjectForAllNamespaces(coordinates(info), timeoutOptions())
        : custom.listClusterCustomObject(coordinates(info), timeoutOptions())) as never,
    ),
  }));
  /** uid -> the validation of the generation judged last. */
  const validations = new Map<string, { generation: number; result: PalisadePolicyValidation }>();
  /** uid -> resourceVersion of the object as it was when we last wrote its status (skip until the cache moves on). */
  const writtenAt = new Map<string, string>();
  let stopped = false;

  const validate = (policy: Policy) => {
    const uid = policy.metadata?.uid ?? '';
    const generation = policy.metadata?.generation ?? 0;
    const known = validations.get(uid);
    if (known && known.generation === generation) return known.result;
    const result = validatePalisadePolicy(policy);
    validations.set(uid, { generation, result });
    return result;
  };

  const writeStatus = async (info: PolicyKindInfo, policy: Policy): Promise<void> => {
    const { uid = '', resourceVersion = '', name = '', namespace } = policy.metadata ?? {};
    if (writtenAt.get(uid) === resourceVersion) return;
    const validation = validate(policy);
    const desired = desiredStatus(policy, validation, now());
    if (!needsWrite(policy, desired)) return;
    if (!isLeading() || stopped) return;
    const body = statusApplyBody({ ...policy, apiVersion: `${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}`, kind: info.kind }, desired);
    const write = { ...coordinates(info), name, body, fieldManager: POLICY_STATUS_FIELD_MANAGER, force: true };
    try {
      if (info.scope === 'Namespaced') await custom.patchNamespacedCustomObjectStatus({ ...write, namespace: namespace ?? '' }, applyOptions());
      else await custom.patchClusterCustomObjectStatus(write, applyOptions());
    } catch (error) {
      if (isHttpStatus(error, 404)) return; // deleted meanwhile
      throw error;
    }
    writtenAt.set(uid, resourceVersion);
    const valid = desired.conditions.find((c) => c.type === VALID)!;
    const where = namespace ? `${namespace}/${name}` : name;
    log(`${info.kind} ${where} generation ${desired.observedGeneration}: Valid=${valid.status}${valid.status === 'False' ? ` (${valid.message})` : ''}`);
    const before = policy.status?.conditions?.find((c) => c.type === VALID);
    if (valid.status === 'False' && (before?.status !== 'False' || before.message !== valid.message)) {
      await postWarningEvent(core, {
        involved: { apiVersion: `${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}`, kind: info.kind, namespace: namespace ?? '', name, uid, resourceVersion },
        reason: 'InvalidPalisadePolicy',
        message: valid.message,
        component: 'palisade-operator',
      }).catch((error: unknown) => log(`could not record event for ${info.kind} ${where}: ${(error as Error).message}`));
    }
  };

  const sync = new CoalescingTask(
    async () => {
      if (!isLeading() || stopped) return;
      const failures: string[] = [];
      for (const { info, informer } of informers) {
        for (const policy of informer.list()) {
          try {
            await writeStatus(info, policy);
          } catch (error) {
            failures.push(`${info.kind} ${policy.metadata?.namespace ?? ''}/${policy.metadata?.name}: ${(error as Error).message}`);
          }
        }
      }
      if (failures.length > 0) throw new Error(`status not written for ${failures.join('; ')}`);
    },
    { onError: (error) => log(`policy status: ${(error as Error).message}; retrying`) },
  );

  const watches = informers.map(({ info, informer }) => {
    informer.on('delete', (policy) => {
      validations.delete(policy.metadata?.uid ?? '');
      writtenAt.delete(policy.metadata?.uid ?? '');
    });
    return watchInformer(informer, () => sync.request(), (error) => log(`${info.plural}: watch failed, restarting: ${String(error)}`));
  });
  await Promise.all(watches.map((w) => w.start()));
  sync.request();
  return {
    async stop() {
      stopped = true;
      await Promise.all(watches.map((w) => w.stop()));
      await sync.idle();
    },
  };
}
