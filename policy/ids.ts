// Identities and stable names: security identity keys, CIDR region ids, the
// string forms of policy and rule references.

import type { Labels, PolicyRef, RuleRef } from './types.ts';

/** Identity numbers reserved by ADR 0001 (and ADR 0010 for entities). */
export const IDENTITY_ANY = 0;
export const IDENTITY_HOST = 1;
export const IDENTITY_WORLD = 2;
/** A policy class only, never a peer's identity: every peer that is in the cluster (isClusterIdentity). */
export const IDENTITY_CLUSTER = 3;
/** A pod address whose pod has no identity number yet: matched by `all`, `cluster` and CIDRs only. */
export const IDENTITY_INIT = 5;
export const IDENTITY_REMOTE_NODE = 6;
/** An address of the API server that is not a node's. */
export const IDENTITY_KUBE_APISERVER = 7;
/** The API server on this node's address / on another node's address. */
export const IDENTITY_HOST_KUBE_APISERVER = 8;
export const IDENTITY_REMOTE_NODE_KUBE_APISERVER = 9;
export const IDENTITY_POD_MIN = 256;
export const IDENTITY_POD_MAX = 2 ** 24 - 1;
export const REGION_BIT = 2 ** 31;
/** Identities of addresses learned from DNS answers: `2^30 | h`, one per set of FQDN selectors matching the address's names. */
export const FQDN_BIT = 2 ** 30;

/** The preferred identity of a set of FQDN selectors (by its key); the compiler probes onwards on a collision. */
export function fqdnIdentity(setKey: string): number {
  return FQDN_BIT + (fnv1a32(setKey) % FQDN_BIT);
}

/** The next identity to try after a collision. */
export const nextFqdnIdentity = (id: number) => FQDN_BIT + ((id - FQDN_BIT + 1) % FQDN_BIT);

/** Whether a peer with this identity is in the cluster (matched by the CLUSTER class, the `cluster` entity). */
export function isClusterIdentity(id: number): boolean {
  return id === IDENTITY_HOST || (id >= IDENTITY_INIT && id <= IDENTITY_REMOTE_NODE_KUBE_APISERVER) || (id >= IDENTITY_POD_MIN && id <= IDENTITY_POD_MAX);
}

/** The identity classes an entity of Palisade's policies matches (`all` is the ANY class). */
export const ENTITY_CLASSES: Readonly<Record<'all' | 'world' | 'cluster' | 'host' | 'remote-node' | 'kube-apiserver', readonly number[]>> = {
  all: [IDENTITY_ANY],
  world: [IDENTITY_WORLD],
  cluster: [IDENTITY_CLUSTER],
  host: [IDENTITY_HOST, IDENTITY_HOST_KUBE_APISERVER],
  'remote-node': [IDENTITY_REMOTE_NODE, IDENTITY_REMOTE_NODE_KUBE_APISERVER],
  'kube-apiserver': [IDENTITY_KUBE_APISERVER, IDENTITY_HOST_KUBE_APISERVER, IDENTITY_REMOTE_NODE_KUBE_APISERVER],
};

/** The ipcache identity of an API server address: combined with a node's when it is one. */
export function apiServerIdentity(nodeIdentity: number | undefined): number {
  if (nodeIdentity === IDENTITY_HOST) return IDENTITY_HOST_KUBE_APISERVER;
  if (nodeIdentity === IDENTITY_REMOTE_NODE) return IDENTITY_REMOTE_NODE_KUBE_APISERVER;
  return IDENTITY_KUBE_APISERVER;
}

/** The namespace label the API server sets on every namespace and that cannot be overridden. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * Pseudo-labels of Palisade's selectors (Cilium's keys): every pod is
 * matched as if it carried `io.kubernetes.pod.namespace: <its namespace>`
 * and `io.cilium.k8s.namespace.labels.K: V` for each label of its namespace.
 * They win over pod labels with the same keys.
 */
export const POD_NAMESPACE_PSEUDO_LABEL = 'io.kubernetes.pod.namespace';
export const NAMESPACE_LABELS_PSEUDO_PREFIX = 'io.cilium.k8s.namespace.labels.';

const sortedEntries = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]!]);

/**
 * The key of a security label set: (namespace labels, pod labels), independent
 * of the order of the labels. Every pod with the same key shares one identity
 * number, allocated elsewhere. The namespace labels include
 * `kubernetes.io/metadata.name`, so pods of different namespaces never share
 * a key (the compiler adds that label when the input lacks it).
 */
export function identityKey(nsLabels: Labels, podLabels: Labels): string {
  return `k8s:${JSON.stringify([sortedEntries(nsLabels), sortedEntries(podLabels)])}`;
}

/** FNV-1a, 32 bits, over the string's UTF-16 code units (prefix texts are ASCII, so its bytes). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The pseudo identity of a CIDR region: `2^31 | (FNV-1a(prefix) & 0x7fffffff)`. */
export function regionId(prefixText: string): number {
  return (REGION_BIT | (fnv1a32(prefixText) & 0x7fffffff)) >>> 0;
}

/** `ns/name` (NetworkPolicy), `pnp:ns/name`, `pcnp:name` */
export const policyRefString = (p: PolicyRef) =>
  p.kind === undefined ? `${p.namespace}/${p.name}` : p.kind === 'PalisadeClusterNetworkPolicy' ? `pcnp:${p.name}` : `pnp:${p.namespace}/${p.name}`;

/** `ns/name/ingress/2` (NetworkPolicy), `pnp:ns/name/egressDeny/0`, `pcnp:name/ingress/1` */
export const ruleRefString = (r: RuleRef) => `${policyRefString(r)}/${r.direction}${r.deny ? 'Deny' : ''}/${r.index}${r.implicitDns ? '/dns' : ''}`;
