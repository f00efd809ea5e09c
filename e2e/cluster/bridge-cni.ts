// A plain CNI for real nodes, from Debian's containernetworking-plugins:
// each node's pods on a Linux bridge (cni0, the gateway) with addresses from
// its spec.podCIDR (host-local), and a route on every node to every other
// node's pod CIDR through that node's underlay address. What a cluster
// looks like before Palisade, and the baseline Palisade is compared with
// (issue 9's benchmarks); tests that only need pods to run use it too.
import { execa } from 'execa';
import type { CniInstall, RealNode } from './real-node.ts';

/** Where Debian's containernetworking-plugins puts the reference plugins. */
export const REFERENCE_PLUGINS_DIR = '/usr/lib/cni';

export function bridgeCni(podCidr: string): CniInstall {
  return {
    config: {
      file: '10-bridge.conflist',
      content: {
        cniVersion: '1.0.0',
        name: 'bridge',
        plugins: [{
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: podCidr }]], routes: [{ dst: '0.0.0.0/0' }] },
        }],
      },
    },
    binaries: ['bridge', 'host-local'].map((name) => ({ name, source: `${REFERENCE_PLUGINS_DIR}/${name}` })),
  };
}

/** Installs the bridge CNI on every node, with routes between their pod CIDRs. */
export async function installBridgeCni(nodes: RealNode[]): Promise<void> {
  for (const node of nodes) {
    for (const peer of nodes) {
      if (peer !== node) await execa('ip', ['-n', node.netns, 'route', 'replace', peer.podCidr, 'via', peer.address]);
    }
    await node.installCni(bridgeCni(node.podCidr));
  }
}
