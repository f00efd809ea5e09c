// A pod's connection to its node: a veth pair, routed at layer 3 (no bridge).
//
//   pod netns                         node netns
//   eth0  10.200.1.5/32  <── veth ──> palXXXXXXXXXXX (no address)
//   default via 169.254.1.1           10.200.1.5/32 dev palXXXXXXXXXXX
//
// The pod's gateway 169.254.1.1 is a link-local address nobody owns: the pod
// holds a permanent neighbour entry mapping it to the host veth's MAC, and
// the node holds one for the pod, so no ARP ever crosses the pair. Every pod
// packet therefore enters the node through the host-side veth, which is
// where the policy programs attach.
import { batchLine, ipBatch, ipJson, IprouteError, PALISADE_ROUTE_PROTO, SELF } from './iproute.ts';

export const POD_GATEWAY = '169.254.1.1';

export interface PodLink {
  /** Host-side veth name, in the node's namespace. */
  hostIfName: string;
  hostMac: string;
  /** Interface name inside the pod (CNI_IFNAME). */
  podIfName: string;
  podMac: string;
  /** The pod's network namespace, as a path (CNI_NETNS). */
  netnsPath: string;
  podIp: string;
}

const MAX_NETNS_PATH = 1024;

/**
 * A network namespace path Palisade will hand to iproute2: absolute, at most
 * 1024 characters, of letters, digits and `/ _ . - : @ + = ,` only. Every
 * runtime's paths fit (/var/run/netns/cni-UUID, /proc/PID/ns/net); anything
 * with whitespace, quotes, `#` or control characters could split or end an
 * `ip -batch` line, so it is refused rather than escaped.
 */
export function validNetnsPath(path: string): boolean {
  return path.length <= MAX_NETNS_PATH && /^\/[A-Za-z0-9/_.:@+=,-]*$/.test(path);
}

export async function createPodLink(link: PodLink): Promise<void> {
  if (!validNetnsPath(link.netnsPath)) throw new Error(`invalid network namespace path ${JSON.stringify(link.netnsPath)}`);
  // The node side is complete before the pod side is configured; a route to
  // a pod that is not listening yet is harmless. Two processes in all.
  // batchLine() refuses any token that could split or end a line.
  const host = link.hostIfName;
  const pod = link.podIfName;
  await ipBatch(SELF, [
    batchLine('link', 'add', 'name', host, 'address', link.hostMac, 'type', 'veth',
      'peer', 'name', pod, 'address', link.podMac, 'netns', link.netnsPath),
    // No IPv6 link-local address on either side: the datapath is IPv4-only
    // and drops IPv6, so neighbour discovery would only be a stream of drops.
    batchLine('link', 'set', host, 'addrgenmode', 'none'),
    batchLine('link', 'set', host, 'up'),
    batchLine('neigh', 'replace', link.podIp, 'lladdr', link.podMac, 'dev', host, 'nud', 'permanent'),
    batchLine('route', 'replace', `${link.podIp}/32`, 'dev', host, 'scope', 'link', 'proto', String(PALISADE_ROUTE_PROTO)),
  ]);
  await ipBatch({ kind: 'path', path: link.netnsPath }, [
    'link set lo up',
    batchLine('addr', 'add', `${link.podIp}/32`, 'dev', pod),
    batchLine('link', 'set', pod, 'addrgenmode', 'none'),
    batchLine('link', 'set', pod, 'up'),
    batchLine('neigh', 'replace', POD_GATEWAY, 'lladdr', link.hostMac, 'dev', pod, 'nud', 'permanent'),
    batchLine('route', 'add', POD_GATEWAY, 'dev', pod, 'scope', 'link'),
    batchLine('route', 'add', 'default', 'via', POD_GATEWAY, 'dev', pod),
  ]);
}

/**
 * Removes the host side of a pod link; the kernel then removes the peer and
 * the routes through it. Returns false when there was nothing to remove, so
 * that DEL stays idempotent.
 */
export async function deletePodLink(hostIfName: string): Promise<boolean> {
  try {
    await ipBatch(SELF, [batchLine('link', 'del', hostIfName)]);
    return true;
  } catch (error) {
    if (error instanceof IprouteError && /Cannot find device/.test(error.stderr)) return false;
    throw error;
  }
}

/** The kernel's index of an interface of the agent's namespace. */
export async function linkIndex(ifName: string): Promise<number> {
  const [link] = await ipJson<{ ifindex: number }>(SELF, ['link', 'show', 'dev', ifName]);
  if (!link) throw new Error(`interface ${ifName} does not exist`);
  return link.ifindex;
}

export interface LinkFacts {
  ifindex: number;
  /** linkinfo kind ("veth", "dummy", ...); undefined for a device without one (lo, physical). */
  kind: string | undefined;
}

/** Every interface of the agent's namespace, by name. */
export async function listLinks(): Promise<Map<string, LinkFacts>> {
  const links = await ipJson<{ ifname: string; ifindex: number; linkinfo?: { info_kind?: string } }>(SELF, ['-details', 'link', 'show']);
  return new Map(links.map((l) => [l.ifname, { ifindex: l.ifindex, kind: l.linkinfo?.info_kind }]));
}

/**
 * The ifindex of the peer of veth `ifName` in the namespace at `netnsPath`
 * (its link_index: the host side's ifindex), or undefined when the
 * namespace or the interface is gone or it is not a veth.
 */
export async function podPeerIndex(netnsPath: string, ifName: string): Promise<number | undefined> {
  if (!validNetnsPath(netnsPath)) return undefined;
  try {
    const [link] = await ipJson<{ link_index?: number }>({ kind: 'path', path: netnsPath }, ['link', 'show', 'dev', ifName]);
    return link?.link_index;
  } catch (error) {
    if (error instanceof IprouteError) return undefined;
    throw error;
  }
}

interface IpAddrJson {
  ifname: string;
  operstate: string;
  address: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number }>;
}

/** Lists what differs from the expected link, for CNI CHECK; empty when all is well. */
export async function inspectPodLink(link: PodLink): Promise<string[]> {
  const problems: string[] = [];
  const host = (await ipJson<IpAddrJson>(SELF, ['addr', 'show'])).find((l) => l.ifname === link.hostIfName);
  if (!host) return [`host interface ${link.hostIfName} does not exist`];
  if (host.operstate === 'DOWN') problems.push(`host interface ${link.hostIfName} is down`);
  const pod = (await ipJson<IpAddrJson>({ kind: 'path', path: link.netnsPath }, ['addr', 'show'])).find(
    (l) => l.ifname === link.podIfName,
  );
  if (!pod) return [...problems, `interface ${link.podIfName} does not exist in ${link.netnsPath}`];
  if (pod.address !== link.podMac) problems.push(`interface ${link.podIfName} has MAC ${pod.address}, expected ${link.podMac}`);
  if (!pod.addr_info.some((a) => a.family === 'inet' && a.local === link.podIp && a.prefixlen === 32)) {
    problems.push(`interface ${link.podIfName} lacks address ${link.podIp}/32`);
  }
  const routes = await ipJson<{ dst: string; dev: string }>(SELF, ['route', 'show', 'proto', String(PALISADE_ROUTE_PROTO)]);
  if (!routes.some((r) => r.dst === link.podIp && r.dev === link.hostIfName)) {
    problems.push(`node has no route to ${link.podIp} via ${link.hostIfName}`);
  }
  return problems;
}
