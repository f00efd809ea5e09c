// Reads the cluster objects the policy compiler needs (pods, namespaces,
// NetworkPolicies, SecurityIdentities) with the user's own rights, as the
// compiler's inputs. What the user may not read is reported as `undefined`
// where the commands can do without it, so that they say what they assumed
// instead of failing.
import type { V1Namespace, V1NetworkPolicy, V1Pod } from '@kubernetes/client-node';
import { podInput } from '../agent/pod-input.ts';
import { networkPolicySpec } from '../lib/network-policy.ts';
import { readPalisadePolicy, type StoredPalisadePolicy } from '../agent/palisade-policy-input.ts';
import type { NamespaceInput, NetworkPolicyInput, PalisadePolicyInput, PalisadePolicyKind, PodInput } from '../policy/types.ts';
import type { Api } from './api.ts';
import { CliError, EXIT } from './errors.ts';

interface List<T> {
  items: T[];
}

interface SecurityIdentity {
  metadata?: { name?: string };
  spec?: { key?: string };
}

const core = (resource: string, namespace?: string, name?: string) => ({ verb: name ? 'get' : 'list', resource, group: '', ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) }) as const;

/** Undefined when RBAC forbids it (the caller says what it assumed instead). */
async function unlessForbidden<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.FORBIDDEN) return undefined;
    throw error;
  }
}

export async function readPod(api: Api, namespace: string, name: string): Promise<PodInput> {
  return podInput(await api.get<V1Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`, core('pods', namespace, name)));
}

/** The pods that claim an address (undefined: RBAC forbids listing pods across the cluster). */
export async function podsWithIp(api: Api, ip: string): Promise<PodInput[] | undefined> {
  const list = await unlessForbidden(api.get<List<V1Pod>>(`/api/v1/pods?fieldSelector=${encodeURIComponent(`status.podIP=${ip}`)}`, core('pods')));
  return list?.items.map((p) => podInput(p)).filter((p) => p.ip === ip);
}

export async function listPods(api: Api, namespace: string | undefined): Promise<PodInput[]> {
  const path = namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods';
  return (await api.get<List<V1Pod>>(path, core('pods', namespace))).items.map((p) => podInput(p));
}

export async function listPolicies(api: Api, namespace: string | undefined): Promise<NetworkPolicyInput[]> {
  const path = namespace ? `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies` : '/apis/networking.k8s.io/v1/networkpolicies';
  const list = await api.get<List<V1NetworkPolicy>>(path, { verb: 'list', resource: 'networkpolicies', group: 'networking.k8s.io', ...(namespace ? { namespace } : {}) });
  // The raw API object already says `from`; networkPolicySpec also accepts it.
  return list.items.map((p) => ({ namespace: p.metadata!.namespace!, name: p.metadata!.name!, spec: networkPolicySpec(p) }));
}

/**
 * The PalisadeNetworkPolicies of these namespaces and every
 * PalisadeClusterNetworkPolicy, read as the agents read them (an invalid one
 * fail closed), and notes on what could not be read (RBAC, CRDs absent).
 */
export async function listPalisadePolicies(api: Api, namespaces: readonly string[]): Promise<{ policies: PalisadePolicyInput[]; notes: string[] }> {
  const forbidden: string[] = [];
  const read = async (kind: PalisadePolicyKind, plural: string, namespace: string | undefined) => {
    const path = namespace ? `/apis/palisade.io/v1alpha1/namespaces/${namespace}/${plural}` : `/apis/palisade.io/v1alpha1/${plural}`;
    let list: List<StoredPalisadePolicy> | undefined;
    try {
      list = await unlessForbidden(api.get<List<StoredPalisadePolicy>>(path, { verb: 'list', resource: plural, group: 'palisade.io', ...(namespace ? { namespace } : {}) }));
      if (!list) forbidden.push(`RBAC forbids listing ${namespace ? `${kind} in ${namespace}` : kind}: judged without them, they may deny or isolate more`);
    } catch (error) {
      // Not served: the kind's CRD is not installed, so no such policy exists.
      if (!(error instanceof CliError && error.exitCode === EXIT.UNAVAILABLE)) throw error;
      if (!namespace) forbidden.push(`${kind} is not served by this cluster (its CRD is not installed): judged without Palisade's policy kinds`);
    }
    return (list?.items ?? []).map((p) => readPalisadePolicy(kind, p).input);
  };
  const lists = await Promise.all([
    ...namespaces.map((ns) => read('PalisadeNetworkPolicy', 'palisadenetworkpolicies', ns)),
    read('PalisadeClusterNetworkPolicy', 'palisadeclusternetworkpolicies', undefined),
  ]);
  return { policies: lists.flat(), notes: forbidden };
}

const namespaceInput = (ns: V1Namespace): NamespaceInput => ({ name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} });

/** A namespace's labels; undefined when RBAC forbids reading it. An unknown namespace is an error. */
export async function readNamespace(api: Api, name: string): Promise<NamespaceInput | undefined> {
  const ns = await unlessForbidden(api.get<V1Namespace>(`/api/v1/namespaces/${name}`, core('namespaces', undefined, name)));
  return ns && namespaceInput(ns);
}

export async function listNamespaces(api: Api): Promise<NamespaceInput[]> {
  return (await api.get<List<V1Namespace>>('/api/v1/namespaces', core('namespaces'))).items.map(namespaceInput);
}

/**
 * Identity key -> number, from the operator's SecurityIdentity objects (the
 * object's name is the number, spec.key the key; see agent/policy-sync.ts).
 * Undefined when RBAC forbids listing them.
 */
export async function listIdentities(api: Api): Promise<Map<string, number> | undefined> {
  const list = await unlessForbidden(api.get<List<SecurityIdentity>>('/apis/palisade.io/v1alpha1/securityidentities', { verb: 'list', resource: 'securityidentities', group: 'palisade.io' }));
  if (!list) return undefined;
  const m = new Map<string, number>();
  for (const i of list.items) {
    const n = Number(i.metadata?.name);
    if (i.spec?.key && Number.isInteger(n)) m.set(i.spec.key, n);
  }
  return m;
}
