// The status controller of Palisade's policy kinds: watches every
// PalisadeNetworkPolicy and PalisadeClusterNetworkPolicy, validates each
// generation with the zod validator (the CRD's schema and CEL rules refuse
// most invalid policies already; this also catches what a CRD cannot check,
// and objects stored before a stricter CRD), and writes `status` by
// server-side apply of the status subresource: observedGeneration, Valid
// (False naming every invalid field), selectedEndpoints and Enforced (from
// the pods, namespaces and the agents' PalisadeNodes:
// policy-enforcement.ts). A policy that turns invalid also gets a Warning
// event naming the fields.
//
// Level-triggered: any change that can alter a status requests one sync over
// every policy (pod and namespace events only when they change what policies
// select; PalisadeNode events only when an agent appears, goes, turns Ready or
// not, or some policy still waits for a node to realize it). A sync writes
// only where the status would change, and not again while the cache still
// shows the version it judged (the cache lags behind our own writes). Every
// write is fenced by isLeading() and bounded by a timeout; a few run at once.
//
// Why @kubernetes/client-node and not kubernetes-fluent-client, which the
// issue suggested for this: docs/adr/0009-palisade-policy-api.md.
import {
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1Namespace,
  type V1Pod,
} from '@kubernetes/client-node';
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
import {
  agentState,
  EndpointIndex,
  endpointFacts,
  enforcementVerdict,
  SelectionCache,
  selectionOf,
  targetVersion,
  type AgentState,
  type PalisadeNodeLike,
  type Selection,
} from './policy-enforcement.ts';
import { desiredStatus, ENFORCED, needsWrite, statusApplyBody, VALID, type DesiredStatus, type PolicyObject } from './policy-status.ts';

/** The field manager of the operator's status writes (it owns observedGeneration, selectedEndpoints, Valid and Enforced). */
export const POLICY_STATUS_FIELD_MANAGER = 'palisade-operator';

/** Status writes in flight at once during a sync. */
const WRITE_CONCURRENCY = 8;

/** A sync whose computation takes longer than this is logged with its figures. */
const SLOW_SYNC_MS = 250;

export interface PolicyStatusControllerOptions {
  log: (line: string) => void;
  /** Whether this replica may write now (the leader elector's fence). */
  isLeading: () => boolean;
  now?: () => Date;
}

type Policy = PolicyObject & KubernetesObject;
type PalisadeNode = PalisadeNodeLike & KubernetesObject;

/** Options of one server-side apply call: its content type, and a signal that aborts it after the call timeout. */
const applyOptions = () => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply, timeoutOptions());

/** Runs `jobs`, at most `limit` at once; the messages of those that failed. */
async function runLimited(jobs: ReadonlyArray<() => Promise<void>>, limit: number): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      await job().catch((error: unknown) => failures.push((error as Error).message));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return failures;
}

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
  const pods = makeInformer<V1Pod>(kubeconfig, '/api/v1/pods', () => core.listPodForAllNamespaces({}, timeoutOptions()));
  const namespaces = makeInformer<V1Namespace>(kubeconfig, '/api/v1/namespaces', () => core.listNamespace({}, timeoutOptions()));
  const nodeCoordinates = { group: PALISADE_POLICY_GROUP, version: PALISADE_POLICY_VERSION, plural: 'palisadenodes' };
  const palisadeNodes = makeInformer<PalisadeNode>(kubeconfig, `/apis/${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}/palisadenodes`, () =>
    custom.listClusterCustomObject(nodeCoordinates, timeoutOptions()) as never,
  );

  /** The endpoints by namespace and label set, kept by the pod and namespace informers' events. */
  const index = new EndpointIndex();
  /** What each policy selects, per namespace and summed (only namespaces changed since the last sync are looked at again). */
  const selections = new SelectionCache(index);
  /** node name -> its agent, as its PalisadeNode says. */
  const agents = new Map<string, AgentState>();
  /** uid -> the judgement of the generation judged last: its validation, and what its endpointSelector selects. */
  const judged = new Map<string, { generation: number; validation: PalisadePolicyValidation; selection: Selection | undefined }>();
  /** uid -> the generation last seen and the resourceVersion it was first seen at: what the nodes must realize. */
  const targets = new Map<string, { generation: number; version: string }>();
  /** uid -> resourceVersion of the object as it was when we last wrote its status (skip until the cache moves on). */
  const writtenAt = new Map<string, string>();
  /** Whether the last sync left some policy waiting for a node to realize it (then agents' new versions matter). */
  let waiting = true;
  /** False until every informer has listed: a sync before would judge from half a cluster (e.g. no agents yet: NoAgent). */
  let listed = false;
  let stopped = false;

  const judge = (info: PolicyKindInfo, policy: Policy) => {
    const uid = policy.metadata?.uid ?? '';
    const generation = policy.metadata?.generation ?? 0;
    const known = judged.get(uid);
    if (known && known.generation === generation) return known;
    const validation = validatePalisadePolicy(policy);
    const result = { generation, validation, selection: selectionOf(info.kind, policy.metadata?.namespace, policy.spec, validation) };
    judged.set(uid, result);
    return result;
  };

  const where = (policy: Policy) => (policy.metadata?.namespace ? `${policy.metadata.namespace}/${policy.metadata.name}` : (policy.metadata?.name ?? ''));

  /** What a policy's status should be (none while the cache still shows the version we wrote over), and whether its verdict is settled. */
  const plan = (info: PolicyKindInfo, policy: Policy): { desired: DesiredStatus | undefined; settled: boolean } => {
    const { uid = '', resourceVersion = '', generation = 0 } = policy.metadata ?? {};
    const { validation, selection } = judge(info, policy);
    const verdict = enforcementVerdict({
      kind: info.kind,
      version: targetVersion(targets, uid, generation, resourceVersion),
      valid: validation.ok,
      selected: selection && selections.select(uid, selection),
      agents,
    });
    if (writtenAt.get(uid) === resourceVersion) return { desired: undefined, settled: verdict.settled };
    return { desired: desiredStatus(policy, validation, verdict, now()), settled: verdict.settled };
  };

  const writeStatus = async (info: PolicyKindInfo, policy: Policy, desired: DesiredStatus): Promise<void> => {
    const { uid = '', resourceVersion = '', name = '', namespace } = policy.metadata ?? {};
    if (!isLeading() || stopped) return;
    const body = statusApplyBody({ ...policy, apiVersion: `${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}`, kind: info.kind }, desired);
    const write = { ...coordinates(info), name, body, fieldManager: POLICY_STATUS_FIELD_MANAGER, force: true };
    try {
      if (info.scope === 'Namespaced') await custom.patchNamespacedCustomObjectStatus({ ...write, namespace: namespace ?? '' }, applyOptions());
      else await custom.patchClusterCustomObjectStatus(write, applyOptions());
    } catch (error) {
      if (isHttpStatus(error, 404)) return; // deleted meanwhile
      throw new Error(`${info.kind} ${where(policy)}: ${(error as Error).message}`);
    }
    writtenAt.set(uid, resourceVersion);
    // Logged when a condition's status or reason changes, or a new generation is judged; not for a count alone.
    const before = new Map((policy.status?.conditions ?? []).map((c) => [c.type, c]));
    const valid = desired.conditions.find((c) => c.type === VALID)!;
    const enforced = desired.conditions.find((c) => c.type === ENFORCED)!;
    const changed = (c: typeof valid) => before.get(c.type)?.status !== c.status || before.get(c.type)?.reason !== c.reason;
    if (policy.status?.observedGeneration !== desired.observedGeneration || changed(valid) || changed(enforced)) {
      log(
        `${info.kind} ${where(policy)} generation ${desired.observedGeneration}: Valid=${valid.status}${valid.status === 'False' ? ` (${valid.message})` : ''}` +
          ` Enforced=${enforced.status} ${enforced.reason}, ${desired.selectedEndpoints} endpoints`,
      );
    }
    const validBefore = before.get(VALID);
    if (valid.status === 'False' && (validBefore?.status !== 'False' || validBefore.message !== valid.message)) {
      await postWarningEvent(core, {
        involved: { apiVersion: `${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}`, kind: info.kind, namespace: namespace ?? '', name, uid, resourceVersion },
        reason: 'InvalidPalisadePolicy',
        message: valid.message,
        component: 'palisade-operator',
      }).catch((error: unknown) => log(`could not record event for ${info.kind} ${where(policy)}: ${(error as Error).message}`));
    }
  };

  const sync = new CoalescingTask(
    async () => {
      if (!listed || !isLeading() || stopped) return;
      const started = performance.now();
      const jobs: Array<() => Promise<void>> = [];
      let policies = 0;
      let unsettled = false;
      for (const { info, informer } of informers) {
        for (const policy of informer.list()) {
          policies++;
          const { desired, settled } = plan(info, policy);
          if (!settled) unsettled = true;
          if (desired && needsWrite(policy, desired)) jobs.push(() => writeStatus(info, policy, desired));
        }
      }
      waiting = unsettled;
      const computedMs = performance.now() - started;
      if (computedMs > SLOW_SYNC_MS) log(`policy status: judged ${policies} policies over ${index.endpoints} endpoints in ${computedMs.toFixed(0)} ms`);
      const failures = await runLimited(jobs, WRITE_CONCURRENCY);
      if (failures.length > 0) throw new Error(`status not written for ${failures.join('; ')}`);
    },
    { onError: (error) => log(`policy status: ${(error as Error).message}; retrying`) },
  );

  // The index and the memories are updated before watchInformer's handlers request a sync.
  const podKey = (pod: V1Pod) => `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
  const onPod = (changed: boolean) => changed && sync.request();
  pods.on('add', (pod) => onPod(index.setPod(podKey(pod), endpointFacts(pod))));
  pods.on('update', (pod) => onPod(index.setPod(podKey(pod), endpointFacts(pod))));
  pods.on('delete', (pod) => onPod(index.deletePod(podKey(pod))));
  const onNamespace = (namespace: V1Namespace, present: boolean) => {
    if (index.setNamespace(namespace.metadata?.name ?? '', present ? (namespace.metadata?.labels ?? {}) : undefined)) sync.request();
  };
  namespaces.on('add', (ns) => onNamespace(ns, true));
  namespaces.on('update', (ns) => onNamespace(ns, true));
  namespaces.on('delete', (ns) => onNamespace(ns, false));
  const onNode = (node: PalisadeNode, present: boolean) => {
    const name = node.metadata?.name ?? '';
    const before = agents.get(name);
    const after = present ? agentState(node) : undefined;
    if (after) agents.set(name, after);
    else agents.delete(name);
    if (before?.ready !== after?.ready || (waiting && JSON.stringify(before?.realized) !== JSON.stringify(after?.realized))) sync.request();
  };
  palisadeNodes.on('add', (node) => onNode(node, true));
  palisadeNodes.on('update', (node) => onNode(node, true));
  palisadeNodes.on('delete', (node) => onNode(node, false));
  for (const { informer } of informers) {
    const seen = (policy: Policy) => targetVersion(targets, policy.metadata?.uid ?? '', policy.metadata?.generation ?? 0, policy.metadata?.resourceVersion ?? '');
    informer.on('add', seen);
    informer.on('update', seen);
    informer.on('delete', (policy) => {
      const uid = policy.metadata?.uid ?? '';
      judged.delete(uid);
      selections.forget(uid);
      targets.delete(uid);
      writtenAt.delete(uid);
    });
  }

  const restarting = (what: string) => (error: unknown) => log(`${what}: watch failed, restarting: ${String(error)}`);
  const watches = [
    ...informers.map(({ info, informer }) => watchInformer(informer, () => sync.request(), restarting(info.plural))),
    // These request a sync themselves, when the change matters (above).
    watchInformer(pods, () => undefined, restarting('pods')),
    watchInformer(namespaces, () => undefined, restarting('namespaces')),
    watchInformer(palisadeNodes, () => undefined, restarting('palisadenodes')),
  ];
  await Promise.all(watches.map((w) => w.start()));
  listed = true;
  sync.request();
  return {
    async stop() {
      stopped = true;
      await Promise.all(watches.map((w) => w.stop()));
      await sync.idle();
    },
  };
}
