// The client library's NetworkPolicy model names the ingress rule's `from`
// field `_from` (a reserved word in its generator); everything else in
// Palisade speaks the API's own field names. Convert at the edge.
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import type { NetworkPolicySpec } from '../policy/types.ts';

export function networkPolicySpec(policy: V1NetworkPolicy): NetworkPolicySpec {
  const spec = (policy.spec ?? {}) as V1NetworkPolicy['spec'] & Record<string, unknown>;
  const ingress = spec?.ingress?.map(({ _from, ...rule }) => (_from === undefined ? rule : { ...rule, from: _from }));
  return { ...spec, ...(ingress === undefined ? {} : { ingress }) } as NetworkPolicySpec;
}

/** The policy as the API server serves it (field names of networking.k8s.io/v1). */
export function apiNetworkPolicy(policy: V1NetworkPolicy): Record<string, unknown> {
  return { ...policy, spec: networkPolicySpec(policy) };
}
