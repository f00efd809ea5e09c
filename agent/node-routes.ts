// Pure: which routes a node needs to reach the pods of every other node, and
// how to get there from the routes it has. Pod traffic crosses the underlay
// unencapsulated, routed by the destination node's pod CIDR.

import type { NodeRoute } from '../datapath/node-routes.ts';

export interface NodeFacts {
  name: string;
  podCidr: string | undefined;
  internalIp: string | undefined;
}

export function desiredNodeRoutes(nodes: NodeFacts[], selfName: string): NodeRoute[] {
  return nodes
    .filter((n) => n.name !== selfName && n.podCidr && n.internalIp)
    .map((n) => ({ podCidr: n.podCidr!, via: n.internalIp! }))
    .sort((a, b) => a.podCidr.localeCompare(b.podCidr));
}

export function planRouteChanges(
  desired: NodeRoute[],
  actual: NodeRoute[],
): { replace: NodeRoute[]; remove: NodeRoute[] } {
  const have = new Map(actual.map((r) => [r.podCidr, r.via]));
  const want = new Set(desired.map((r) => r.podCidr));
  return {
    replace: desired.filter((r) => have.get(r.podCidr) !== r.via),
    remove: actual.filter((r) => !want.has(r.podCidr)),
  };
}
