// Reads and writes the routes to other nodes' pod CIDRs. They carry
// Palisade's route protocol number, so the agent recognizes its own routes
// after a restart and never touches anyone else's.
import { ipBatch, ipJson, PALISADE_ROUTE_PROTO, SELF } from './iproute.ts';

export interface NodeRoute {
  podCidr: string;
  /** The other node's underlay address. */
  via: string;
}

export async function listNodeRoutes(): Promise<NodeRoute[]> {
  const routes = await ipJson<{ dst: string; gateway?: string }>(SELF, ['route', 'show', 'proto', String(PALISADE_ROUTE_PROTO)]);
  return routes.filter((r) => r.gateway).map((r) => ({ podCidr: r.dst, via: r.gateway! }));
}

export async function applyNodeRoutes(change: { replace: NodeRoute[]; remove: NodeRoute[] }): Promise<void> {
  await ipBatch(SELF, [
    ...change.replace.map((r) => `route replace ${r.podCidr} via ${r.via} proto ${PALISADE_ROUTE_PROTO}`),
    ...change.remove.map((r) => `route del ${r.podCidr} via ${r.via} proto ${PALISADE_ROUTE_PROTO}`),
  ]);
}
