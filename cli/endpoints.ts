// Pure: `kubectl palisade endpoints`: every pod with an address, its
// security identity, node, and the policies that select it in each
// direction (none: that direction is not isolated, everything passes), as
// the agents' compiler sees them.
import { compile } from '../policy/compile.ts';
import type { NamespaceInput, NetworkPolicyInput, PodInput } from '../policy/types.ts';
import { alignTable } from './format.ts';

export interface EndpointsInput {
  pods: PodInput[];
  namespaces: NamespaceInput[];
  policies: NetworkPolicyInput[];
  /** Identity key -> number; undefined when SecurityIdentities could not be read. */
  identities: ReadonlyMap<string, number> | undefined;
}

export interface EndpointRow {
  namespace: string;
  name: string;
  /** null: no number allocated yet (fail closed); undefined: not known (not readable). */
  identity: number | null | undefined;
  ip: string;
  node: string | undefined;
  /** Names of the policies (in the pod's namespace) that select it; null: not isolated. */
  ingress: string[] | null;
  egress: string[] | null;
}

export function endpointRows(input: EndpointsInput): { rows: EndpointRow[]; withoutAddress: number } {
  const compiled = compile({ ...input, identities: input.identities ?? new Map() });
  const rows = [...compiled.endpoints.values()].map((e): EndpointRow => {
    const [namespace, name] = e.endpoint.split('/') as [string, string];
    return {
      namespace,
      name,
      identity: input.identities ? (e.identity ?? null) : undefined,
      ip: e.ip,
      node: e.node,
      ingress: e.ingress ? e.ingress.isolatedBy.map((p) => p.name) : null,
      egress: e.egress ? e.egress.isolatedBy.map((p) => p.name) : null,
    };
  });
  return { rows, withoutAddress: input.pods.length - rows.length };
}

const policies = (names: string[] | null) => (names === null ? '(not isolated)' : names.join(', '));
const identity = (n: EndpointRow['identity']) => (n === undefined ? '?' : n === null ? '(none yet)' : String(n));

export function endpointsTable(rows: readonly EndpointRow[]): string {
  if (rows.length === 0) return '';
  return alignTable([
    ['ENDPOINT', 'IDENTITY', 'ADDRESS', 'NODE', 'INGRESS POLICIES', 'EGRESS POLICIES'],
    ...rows.map((r) => [`${r.namespace}/${r.name}`, identity(r.identity), r.ip, r.node ?? '-', policies(r.ingress), policies(r.egress)]),
  ]);
}

/** What the table leaves out or could not know, for stderr. */
export function endpointNotes(o: { rows: readonly EndpointRow[]; withoutAddress: number; identitiesKnown: boolean; namespacesAssumed: readonly string[] }): string[] {
  const notes: string[] = [];
  if (o.withoutAddress > 0) notes.push(`${o.withoutAddress} pod(s) without an address (pending, finished or host-network) are not endpoints`);
  if (!o.identitiesKnown) notes.push('SecurityIdentities could not be read (RBAC): identities shown as ?');
  if (o.rows.some((r) => r.identity === null)) notes.push('(none yet): the operator has not allocated the pod\'s identity; selectors do not match it until it does (fail closed)');
  for (const ns of o.namespacesAssumed) notes.push(`namespace ${ns} could not be read (RBAC): identities are computed with its name label only`);
  return notes;
}
