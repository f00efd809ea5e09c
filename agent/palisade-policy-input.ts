// A stored PalisadeNetworkPolicy or PalisadeClusterNetworkPolicy as the
// compiler's input. Pure. The CRD's schema refuses nearly every invalid
// policy at admission; what still arrives invalid (stored before a stricter
// CRD, or written past admission) is enforced FAIL CLOSED for the pods it
// selects: isolated in both directions, nothing allowed, never half-applied.
// When even its endpointSelector is unusable, it selects nothing and the
// agent says so (the operator's Valid condition names the fields).
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { PalisadePolicyInput, PalisadePolicyKind } from '../policy/types.ts';
import type { RuleCounts } from './flows/enrich.ts';

export interface StoredPalisadePolicy {
  metadata?: { name?: string; namespace?: string };
  spec?: unknown;
}

export interface PalisadePolicyRead {
  input: PalisadePolicyInput;
  /** The rule counts flows name rules by (all zero when enforced fail closed). */
  rules: RuleCounts;
  /** Why the policy is enforced fail closed (undefined: as written). */
  problem: string | undefined;
}

const NOTHING = { matchExpressions: [{ key: 'io.palisade.selects-nothing', operator: 'Exists' as const }, { key: 'io.palisade.selects-nothing', operator: 'DoesNotExist' as const }] };

export function readPalisadePolicy(kind: PalisadePolicyKind, obj: StoredPalisadePolicy): PalisadePolicyRead {
  const namespace = kind === 'PalisadeClusterNetworkPolicy' ? '' : (obj.metadata?.namespace ?? '');
  const name = obj.metadata?.name ?? '';
  const v = validatePalisadePolicy({ kind, spec: obj.spec });
  if (v.ok) {
    const s = v.spec;
    return {
      input: { kind, namespace, name, spec: s },
      rules: { ingress: s.ingress.length, egress: s.egress.length, ingressDeny: s.ingressDeny.length, egressDeny: s.egressDeny.length },
      problem: undefined,
    };
  }
  // Which pods it selects, if the selector alone is valid.
  const selector = (obj.spec as { endpointSelector?: unknown } | undefined)?.endpointSelector;
  const alone = validatePalisadePolicy({ kind, spec: { endpointSelector: selector } });
  const empty = { ingress: [], ingressDeny: [], egress: [], egressDeny: [], enableDefaultDeny: { ingress: true, egress: true } };
  const endpointSelector = alone.ok ? alone.spec.endpointSelector : NOTHING;
  const why = v.errors.slice(0, 3).join('; ') + (v.errors.length > 3 ? `; and ${v.errors.length - 3} more` : '');
  return {
    input: { kind, namespace, name, spec: { ...empty, endpointSelector } },
    rules: { ingress: 0, egress: 0, ingressDeny: 0, egressDeny: 0 },
    problem: alone.ok
      ? `invalid (${why}): its pods are isolated in both directions with nothing allowed (fail closed)`
      : `invalid (${why}), its endpointSelector too: it selects no pod`,
  };
}
