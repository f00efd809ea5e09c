// Pure: which of this node's pod traffic is masqueraded (SNAT to the node's
// address; ADR 0011); datapath/masquerade.ts writes it as iptables rules. A pod's connection
// to anything outside the cluster's pod and node networks leaves with the
// node's address, as Cilium's default masquerading does; connections among
// pods and to nodes keep the pod's address, since every node and the
// underlay route pod CIDRs. Only a connection's first packet meets these
// rules (the nat table); its other packets, and replies, follow conntrack.
// Connections opened towards a pod are never masqueraded: their packets back
// are replies.
import type { MasqueradePlan } from '../datapath/masquerade.ts';
import type { NodeFacts } from './node-routes.ts';
import { formatIpv4, parseIpv4, parseIpv4Cidr } from './ipam/ipv4.ts';

const canonicalCidr = (text: string) => {
  const { network, prefix } = parseIpv4Cidr(text);
  return `${formatIpv4(network)}/${prefix}`;
};

/**
 * The cluster's pod and node networks as the Node objects tell them; `skipped`
 * what is no IPv4 (reported, never written into a rule).
 */
export function masqueradePlan(nodes: readonly NodeFacts[], podCidr: string): MasqueradePlan & { skipped: string[] } {
  const cluster = new Set<string>();
  const skipped: string[] = [];
  const own = canonicalCidr(podCidr);
  cluster.add(own);
  for (const node of nodes) {
    if (node.podCidr) {
      try {
        cluster.add(canonicalCidr(node.podCidr));
      } catch {
        skipped.push(`${node.name} pod CIDR ${node.podCidr}`);
      }
    }
    if (node.internalIp) {
      try {
        cluster.add(`${formatIpv4(parseIpv4(node.internalIp))}/32`);
      } catch {
        skipped.push(`${node.name} address ${node.internalIp}`);
      }
    }
  }
  return { podCidr: own, cluster: [...cluster].sort(compareCidrs), skipped };
}

function compareCidrs(a: string, b: string): number {
  const [x, y] = [parseIpv4Cidr(a), parseIpv4Cidr(b)];
  return x.network - y.network || x.prefix - y.prefix;
}
