// A plain CNI for real nodes, from Debian's containernetworking-plugins:
// each node's pods on a Linux bridge (cni0, the gateway) with addresses from
// its spec.podCIDR (host-local), and a route on every node to every other
// node's pod CIDR through that node's underlay address. What a cluster
// looks like before Palisade, and the baseline Palisade is compared with
// (issue 9's benchmarks); tests that only need pods to run use it too.
import type { CoreV1Api } from '@kubernetes/client-node';
import { execa } from 'execa';
import { waitFor } from './processes.ts';
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

/** A Node's spec.podCIDR, once kube-controller-manager has allocated it. */
export async function podCidrOf(core: CoreV1Api, name: string): Promise<string> {
  let cidr: string | undefined;
  await waitFor(`${name}'s pod CIDR`, async () => {
    cidr = (await core.readNode({ name })).spec?.podCIDR;
    if (!cidr) throw new Error('no spec.podCIDR yet');
  }, { timeoutMs: 30_000, intervalMs: 100 });
  return cidr!;
}

/** Installs the bridge CNI on every node, with routes between their pod CIDRs. */
export async function installBridgeCni(core: CoreV1Api, nodes: RealNode[]): Promise<void> {
  const cidrs = await Promise.all(nodes.map((n) => podCidrOf(core, n.name)));
  for (const [i, node] of nodes.entries()) {
    for (const [j, peer] of nodes.entries()) {
      if (i !== j) await execa('ip', ['-n', node.netns, 'route', 'replace', cidrs[j]!, 'via', peer.address]);
    }
    await node.installCni(bridgeCni(cidrs[i]!));
  }
}
