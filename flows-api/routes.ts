// Pure: the aggregated API's paths (group flows.palisade.io, version
// v1alpha1), the authorization each one needs, and its discovery documents.
// kube-apiserver proxies /apis/flows.palisade.io/... here (docs/adr/0006-flows.md).

export const GROUP = 'flows.palisade.io';
export const VERSION = 'v1alpha1';
export const GROUP_VERSION = `${GROUP}/${VERSION}`;

export type Route =
  | { kind: 'flows'; namespace: string | undefined; follow: boolean; query: URLSearchParams }
  | { kind: 'agents' }
  | { kind: 'verdicts'; namespace: string; query: URLSearchParams }
  | { kind: 'discovery'; document: unknown }
  | { kind: 'health' };

/** What a route asks of RBAC: a SubjectAccessReview's resource attributes. */
export interface Access {
  verb: 'list' | 'watch' | 'get';
  resource: 'flows' | 'agents' | 'verdicts';
  namespace?: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function route(pathAndQuery: string): Route | undefined {
  const url = new URL(pathAndQuery, 'https://api');
  const path = url.pathname.replace(/\/+$/, '');
  const base = `/apis/${GROUP_VERSION}`;
  if (path === '/healthz' || path === '/readyz' || path === '/livez') return { kind: 'health' };
  if (path === '/apis') return { kind: 'discovery', document: groupList() };
  if (path === `/apis/${GROUP}`) return { kind: 'discovery', document: group() };
  if (path === base) return { kind: 'discovery', document: resourceList() };
  const follow = url.searchParams.get('follow') === 'true' || url.searchParams.get('watch') === 'true';
  if (path === `${base}/flows`) return { kind: 'flows', namespace: undefined, follow, query: url.searchParams };
  if (path === `${base}/agents`) return { kind: 'agents' };
  const m = new RegExp(`^${base}/namespaces/([^/]+)/(flows|verdicts)$`).exec(path);
  if (m && NAME.test(m[1]!)) {
    return m[2] === 'flows' ? { kind: 'flows', namespace: m[1]!, follow, query: url.searchParams } : { kind: 'verdicts', namespace: m[1]!, query: url.searchParams };
  }
  return undefined;
}

export function access(r: Route): Access | undefined {
  if (r.kind === 'flows') return { verb: r.follow ? 'watch' : 'list', resource: 'flows', ...(r.namespace ? { namespace: r.namespace } : {}) };
  if (r.kind === 'agents') return { verb: 'list', resource: 'agents' };
  if (r.kind === 'verdicts') return { verb: 'get', resource: 'verdicts', namespace: r.namespace };
  return undefined;
}

/** A Kubernetes Status for an error, as kubectl expects. */
export function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** kube-apiserver's wording for an RBAC denial. */
export function forbiddenMessage(user: string, a: Access): string {
  const where = a.namespace ? ` in the namespace "${a.namespace}"` : ' at the cluster scope';
  return `${a.resource}.${GROUP} is forbidden: User "${user}" cannot ${a.verb} resource "${a.resource}" in API group "${GROUP}"${where}`;
}

function groupList(): unknown {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group()] };
}

function group(): unknown {
  const version = { groupVersion: GROUP_VERSION, version: VERSION };
  return { kind: 'APIGroup', apiVersion: 'v1', name: GROUP, versions: [version], preferredVersion: version };
}

function resourceList(): unknown {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    resources: [
      { name: 'flows', singularName: 'flow', namespaced: true, kind: 'Flow', verbs: ['list', 'watch'] },
      { name: 'agents', singularName: 'agent', namespaced: false, kind: 'Agent', verbs: ['list'] },
      { name: 'verdicts', singularName: 'verdict', namespaced: true, kind: 'Verdict', verbs: ['get'] },
    ],
  };
}
