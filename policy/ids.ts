// Identities and stable names: security identity keys, CIDR region ids, the
// string forms of policy and rule references.

import type { Labels, PolicyRef, RuleRef } from './types.ts';

/** Identity numbers reserved by ADR 0001. */
export const IDENTITY_ANY = 0;
export const IDENTITY_HOST = 1;
export const IDENTITY_WORLD = 2;
export const IDENTITY_REMOTE_NODE = 6;
export const IDENTITY_POD_MIN = 256;
export const IDENTITY_POD_MAX = 2 ** 24 - 1;
export const REGION_BIT = 2 ** 31;

/** The namespace label the API server sets on every namespace and that cannot be overridden. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

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

export const policyRefString = (p: PolicyRef) => `${p.namespace}/${p.name}`;

/** `ns/name/ingress/2` */
export const ruleRefString = (r: RuleRef) => `${r.namespace}/${r.name}/${r.direction}/${r.index}`;
