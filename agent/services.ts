// Services and EndpointSlices -> the load-balancing table the agent writes
// into the datapath (pure: no I/O).
//
// Palisade translates a pod's packet to a Service address into one of the
// Service's backends itself, on the pod's veth, before kube-proxy would in
// the host; so the pod's egress policy is judged against the pod it really
// reaches, not the Service address. A pod must reach the same backends as
// kube-proxy would send it to, so this follows kube-proxy (pkg/proxy:
// serviceToServiceMap, EndpointSliceCache, CategorizeEndpoints):
// - a Service without an IPv4 cluster IP (headless, ExternalName, IPv6 only)
//   is not proxied at all, not even on its external IPs;
// - load-balancer IPs in "Proxy" ipMode are not captured: traffic to them
//   goes to the load balancer;
// - internalTrafficPolicy Local restricts the cluster IPs only: pod traffic
//   to external and load-balancer IPs is short-circuited to all endpoints,
//   whatever externalTrafficPolicy says (service-proxy.md in kubernetes);
// - ready endpoints are used, or if there are none, serving terminating ones.
// Not followed: topology hints, loadBalancerSourceRanges (kube-proxy drops
// pod traffic to a load-balancer IP from outside the ranges; Palisade
// translates it).
import { isIPv4 } from 'node:net';
import type { V1EndpointSlice, V1EndpointConditions, V1Service } from '@kubernetes/client-node';
import { parseIpv4 } from './ipam/ipv4.ts';

export interface ServiceBackend {
  ip: string;
  port: number;
}

export interface ServiceFrontend {
  /** `namespace/name` of the Service, and the Service port's name ('' if none): for messages. */
  service: string;
  portName: string;
  /** An IPv4 frontend address: a cluster IP, an external IP or a load-balancer IP. */
  ip: string;
  /** The Service port. */
  port: number;
  protocol: 'TCP' | 'UDP';
  /** sessionAffinity ClientIP: the backend depends on the client address only. */
  clientAffinity: boolean;
  /** Sorted by ip then port, no duplicates. Empty: the Service has no usable endpoint (traffic to it is dropped). */
  backends: ServiceBackend[];
}

export interface ServiceProblem {
  service: string;
  message: string;
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** An endpoint of one Service port, as one slice gives it. */
interface Candidate extends ServiceBackend {
  conditions: V1EndpointConditions;
  nodeName: string | undefined;
}

/**
 * The frontends of `services` with their backends, as seen from the node
 * `node` (for internalTrafficPolicy Local), sorted by ip, port and protocol.
 * One (ip, port, protocol) has one frontend: when Services collide, the one
 * whose `namespace/name` sorts first keeps it and the others get a problem.
 */
export function serviceFrontends(
  services: Iterable<V1Service>,
  slices: Iterable<V1EndpointSlice>,
  node: string,
): { frontends: ServiceFrontend[]; problems: ServiceProblem[] } {
  const problems: ServiceProblem[] = [];
  const slicesOf = slicesByService(slices);
  const named = [...services].flatMap((svc) => {
    const { namespace, name } = svc.metadata ?? {};
    return namespace && name ? [{ key: `${namespace}/${name}`, svc }] : [];
  });
  named.sort((a, b) => compare(a.key, b.key));
  const claims = named.flatMap(({ key, svc }) => frontendsOf(key, svc, slicesOf.get(key) ?? [], node, problems));

  // A stable sort keeps the Services' order within one (ip, port, protocol): the first claim wins.
  claims.sort((a, b) => parseIpv4(a.ip) - parseIpv4(b.ip) || a.port - b.port || compare(a.protocol, b.protocol));
  const frontends: ServiceFrontend[] = [];
  for (const f of claims) {
    const kept = frontends.at(-1);
    if (kept && kept.ip === f.ip && kept.port === f.port && kept.protocol === f.protocol) {
      problems.push({ service: f.service, message: `${f.ip}:${f.port}/${f.protocol} is also claimed by Service ${kept.service}, which keeps it` });
    } else {
      frontends.push(f);
    }
  }
  return { frontends, problems };
}

/**
 * The API server's addresses: every IPv4 address of the `default/kubernetes`
 * Service's EndpointSlices (which the API servers themselves keep, one
 * address per live API server), sorted. Ready or not: an address is the API
 * server's while it is listed, and gets its identity (ADR 0010).
 */
export function apiServerAddresses(slices: Iterable<V1EndpointSlice>): string[] {
  const found = new Set<string>();
  for (const slice of slices) {
    if (slice.metadata?.namespace !== 'default' || slice.metadata.labels?.[SERVICE_NAME_LABEL] !== 'kubernetes' || slice.addressType !== 'IPv4') continue;
    for (const ep of slice.endpoints ?? []) for (const ip of ep.addresses ?? []) if (isIPv4(ip)) found.add(ip);
  }
  return [...found].sort((a, b) => parseIpv4(a) - parseIpv4(b));
}

/** The IPv4 EndpointSlices of each Service, by `namespace/name`. */
function slicesByService(slices: Iterable<V1EndpointSlice>): Map<string, V1EndpointSlice[]> {
  const byService = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const namespace = slice.metadata?.namespace;
    const service = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!namespace || !service || slice.addressType !== 'IPv4') continue;
    const key = `${namespace}/${service}`;
    byService.set(key, [...(byService.get(key) ?? []), slice]);
  }
  return byService;
}

function frontendsOf(key: string, svc: V1Service, slices: V1EndpointSlice[], node: string, problems: ServiceProblem[]): ServiceFrontend[] {
  const spec = svc.spec;
  if (!spec || spec.type === 'ExternalName') return [];
  const clusterIps = unique((spec.clusterIPs ?? [spec.clusterIP ?? '']).filter((ip) => isIPv4(ip)));
  if (clusterIps.length === 0) return [];
  const lbIps = (svc.status?.loadBalancer?.ingress ?? []).filter((ing) => ing.ipMode !== 'Proxy').map((ing) => ing.ip ?? '');
  // An address both cluster IP and external keeps the cluster IP's meaning.
  const externalIps = unique([...(spec.externalIPs ?? []), ...lbIps].filter((ip) => isIPv4(ip) && !clusterIps.includes(ip)));
  const localOnly = spec.internalTrafficPolicy === 'Local';

  return (spec.ports ?? []).flatMap((svcPort) => {
    const portName = svcPort.name ?? '';
    const protocol = svcPort.protocol ?? 'TCP';
    if (typeof svcPort.port !== 'number') return [];
    if (protocol !== 'TCP' && protocol !== 'UDP') {
      problems.push({
        service: key,
        message: `port ${portName || svcPort.port}/${protocol} of Service ${key} is not translated by Palisade (TCP and UDP only): kube-proxy handles it, and egress policy sees the Service address, not the backend`,
      });
      return [];
    }
    const candidates = candidatesOf(slices, portName, protocol);
    const all = usable(candidates);
    const internal = localOnly ? usable(candidates.filter((c) => c.nodeName === node)) : all;
    const frontend = (ip: string, backends: ServiceBackend[]): ServiceFrontend => ({
      service: key,
      portName,
      ip,
      port: svcPort.port,
      protocol,
      clientAffinity: spec.sessionAffinity === 'ClientIP',
      backends,
    });
    return [...clusterIps.map((ip) => frontend(ip, internal)), ...externalIps.map((ip) => frontend(ip, all))];
  });
}

/** The endpoints of the Service port `name`/`protocol` in `slices`: the slice port of that name and protocol gives the number. */
function candidatesOf(slices: V1EndpointSlice[], name: string, protocol: string): Candidate[] {
  return slices.flatMap((slice) => {
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === name && (p.protocol ?? 'TCP') === protocol)?.port;
    if (!port) return []; // no number (or 0): kube-proxy ignores the port too
    return (slice.endpoints ?? []).flatMap((ep) => {
      const ip = ep.addresses?.[0];
      return ip && isIPv4(ip) ? [{ ip, port, conditions: ep.conditions ?? {}, nodeName: ep.nodeName ?? undefined }] : [];
    });
  });
}

/**
 * The backends kube-proxy would use among `candidates`: the ready ones (an
 * unknown readiness counts as ready), or, when there are none, those still
 * serving while terminating, so that a rolling restart does not drop
 * connections to a Service whose every pod is shutting down.
 */
function usable(candidates: Candidate[]): ServiceBackend[] {
  const ready = candidates.filter((c) => c.conditions.ready !== false);
  const chosen = ready.length > 0 ? ready : candidates.filter((c) => c.conditions.serving !== false && c.conditions.terminating === true);
  const byKey = new Map(chosen.map(({ ip, port }) => [`${ip}:${port}`, { ip, port }]));
  return [...byKey.values()].sort((a, b) => parseIpv4(a.ip) - parseIpv4(b.ip) || a.port - b.port);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** Code-unit order, independent of the locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
