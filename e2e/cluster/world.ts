// The world outside the cluster (FORMAT.md version 2, `external`): a router
// on the underlay, as a data centre's edge router is, and hosts behind it,
// as hosts on the internet are. Both test clusters (stand-in and real
// nodes) have one:
//
//   <run>-cp   br0 172.30.0.0/24 (the underlay)
//     ├── n1 ── eth0 172.30.0.11    node-1: routes 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 via .254
//     ├── n2 ── eth0 172.30.0.12    node-2: likewise
//     └── w0 ── eth0 172.30.0.254   <run>-w, the world's router (forwarding): every node's
//                │                    pod CIDR via that node (native routing)
//                ├── h1 ── eth0 203.0.113.10/32   <run>-x1, external host "web"
//                └── h2 ── eth0 198.51.100.20/32  <run>-x2, external host "db"
//
// An external host is wired like a pod (a /32 on eth0, a default route via
// 169.254.0.1, which its router port answers for), and serves TCP and UDP on
// 80, 81 and 443 with the pods' echo server. So a pod reaches it only through
// its node and the underlay, and it reaches a pod only through the pod's node:
// there is no other way between them. Addresses must lie in the documentation
// ranges, which nothing else here uses.
//
// Hosts come and go (one set per scenario); the router lives as long as the
// cluster. Everything is named `<run>-...`, so the cluster's last-resort
// sweep of its namespaces removes whatever stop() did not.
import { execa } from 'execa';
import { createNetns, deleteNetns } from './netns.ts';
import { programs } from './paths.ts';
import { startProcess, type ManagedProcess } from './processes.ts';
import { UNDERLAY_PREFIX, type Underlay } from './underlay.ts';
import { EXTERNAL_PORTS, inWorldRanges, WORLD_RANGES } from './world-ranges.ts';

export { EXTERNAL_PORTS, inWorldRanges, WORLD_RANGES } from './world-ranges.ts';

/** The world's router on the underlay: the next hop of every node for the world's addresses. */
export const WORLD_ROUTER_ADDRESS = `${UNDERLAY_PREFIX}.254`;
/** The gateway address every host sees on its link (the router's port answers for it). */
const HOST_GATEWAY = '169.254.0.1';

export interface ExternalHostWanted {
  name: string;
  ip: string;
  /**
   * More addresses the host answers on, whole ranges at once (CIDRs in 198.18.0.0/15,
   * RFC 2544's benchmarking range, which nothing else here uses): an AnyIP route
   * (`local RANGE dev lo`) in its namespace, and a route to it via the host at the
   * router. The nodes do not route them: whoever uses them adds
   * `RANGE via WORLD_ROUTER_ADDRESS` in the nodes' namespaces.
   */
  ranges?: readonly string[];
}

export interface ExternalHost extends ExternalHostWanted {
  /** Its network namespace (a name under /var/run/netns). */
  netns: string;
  server: ManagedProcess;
}

export interface World {
  routerNetns: string;
  routerAddress: string;
  /** Routes the world's ranges from the node to the router, and the node's pod CIDR from the router to the node. */
  routeNode(node: { netns: string; address: string; podCidr: string }): Promise<void>;
  /** Starts hosts (in parallel); on a failure, those that started are removed again and it rejects. */
  addHosts(hosts: ExternalHostWanted[]): Promise<ExternalHost[]>;
  removeHosts(hosts: ExternalHost[]): Promise<void>;
  /** Removes every host and the router. */
  stop(): Promise<void>;
}

const ip = (netns: string, args: string[]) => execa('ip', ['-n', netns, ...args]);

/** Where external hosts' extra ranges (ExternalHostWanted.ranges) may lie: RFC 2544's benchmarking range. */
export const BENCHMARK_RANGE = '198.18.0.0/15';

/** Whether `cidr` is an IPv4 CIDR (its network address) inside BENCHMARK_RANGE. */
function inBenchmarkRange(cidr: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255)) return false;
  const len = Number(m[5]);
  const addr = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - len);
  return len >= 15 && len <= 32 && addr % size === 0 && addr >= 198 * 2 ** 24 + 18 * 2 ** 16 && addr + size <= 198 * 2 ** 24 + 20 * 2 ** 16;
}

export async function createWorld(opts: { runId: string; runDir: string; underlay: Underlay }): Promise<World> {
  const routerNetns = `${opts.runId}-w`;
  const hosts = new Set<ExternalHost>();
  let counter = 0;
  try {
    await createNetns(routerNetns);
    await ip(opts.underlay.controlPlaneNetns, ['link', 'add', 'w0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', routerNetns]);
    await ip(opts.underlay.controlPlaneNetns, ['link', 'set', 'w0', 'master', 'br0', 'up']);
    await ip(routerNetns, ['addr', 'add', `${WORLD_ROUTER_ADDRESS}/24`, 'dev', 'eth0']);
    await ip(routerNetns, ['link', 'set', 'eth0', 'up']);
    await execa('nsenter', [`--net=/var/run/netns/${routerNetns}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  } catch (error) {
    await deleteNetns(routerNetns); // its veth goes with it
    throw error;
  }

  async function addHost(wanted: ExternalHostWanted): Promise<ExternalHost> {
    if (!inWorldRanges(wanted.ip)) throw new Error(`external host ${wanted.name}: ${wanted.ip} is not in ${WORLD_RANGES.join(', ')}`);
    for (const range of wanted.ranges ?? []) {
      if (!inBenchmarkRange(range)) throw new Error(`external host ${wanted.name}: range ${range} is not a CIDR in ${BENCHMARK_RANGE}`);
    }
    const k = ++counter;
    const netns = `${opts.runId}-x${k}`;
    const port = `h${k}`;
    try {
      await createNetns(netns);
      await ip(routerNetns, ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await ip(routerNetns, ['addr', 'add', `${HOST_GATEWAY}/32`, 'dev', port]);
      await ip(routerNetns, ['link', 'set', port, 'up']);
      await ip(netns, ['addr', 'add', `${wanted.ip}/32`, 'dev', 'eth0']);
      await ip(netns, ['link', 'set', 'eth0', 'up']);
      await ip(netns, ['route', 'add', HOST_GATEWAY, 'dev', 'eth0', 'scope', 'link']);
      await ip(netns, ['route', 'add', 'default', 'via', HOST_GATEWAY, 'dev', 'eth0']);
      await ip(routerNetns, ['route', 'add', `${wanted.ip}/32`, 'dev', port]);
      for (const range of wanted.ranges ?? []) {
        await ip(netns, ['route', 'add', 'local', range, 'dev', 'lo']);
        await ip(routerNetns, ['route', 'add', range, 'via', wanted.ip, 'dev', port]);
      }
      const server = await startProcess({
        name: `external host ${wanted.name}`,
        command: programs.podserver,
        args: EXTERNAL_PORTS.map(String),
        netns,
        logFile: `${opts.runDir}/external-${k}-${wanted.name}.log`,
        readyLine: /^ready/,
        readyTimeoutMs: 10_000,
      });
      const host = { ...wanted, netns, server };
      hosts.add(host);
      return host;
    } catch (error) {
      await deleteNetns(netns); // the router's port goes with its peer
      throw error;
    }
  }

  async function removeHosts(list: ExternalHost[]): Promise<void> {
    await Promise.all(list.map(async (host) => {
      await host.server.stop();
      await deleteNetns(host.netns);
      hosts.delete(host);
    }));
  }

  return {
    routerNetns,
    routerAddress: WORLD_ROUTER_ADDRESS,
    async routeNode(node) {
      for (const range of WORLD_RANGES) await ip(node.netns, ['route', 'replace', range, 'via', WORLD_ROUTER_ADDRESS]);
      await ip(routerNetns, ['route', 'replace', node.podCidr, 'via', node.address]);
    },
    async addHosts(wanted) {
      const names = new Set<string>();
      const addresses = new Set<string>();
      for (const w of wanted) {
        if (names.has(w.name)) throw new Error(`external host ${w.name} is given twice`);
        if (addresses.has(w.ip)) throw new Error(`external hosts share the address ${w.ip}`);
        names.add(w.name);
        addresses.add(w.ip);
      }
      const taken = [...hosts].find((h) => addresses.has(h.ip));
      if (taken) throw new Error(`${taken.ip} is already external host ${taken.name}'s`);
      const results = await Promise.allSettled(wanted.map(addHost));
      const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failure = results.find((r) => r.status === 'rejected');
      if (failure) {
        await removeHosts(started);
        throw failure.reason;
      }
      return started;
    },
    removeHosts,
    async stop() {
      await removeHosts([...hosts]);
      await deleteNetns(routerNetns);
    },
  };
}
