// The simulated cluster's physical network. One network namespace holds the
// control plane and the underlay bridge (the "switch"); each node namespace
// is plugged into the bridge with a veth and gets an address on it:
//
//   <run>-cp   br0 172.30.0.1/24 (kube-apiserver, etcd)
//     ├── n1 ── eth0 172.30.0.11/24   <run>-n1 (node-1: agent, pod veths)
//     └── n2 ── eth0 172.30.0.12/24   <run>-n2 (node-2)
//
// Nothing is added to the machine's own (root) namespace.
import { execa } from 'execa';
import { createNetns } from './netns.ts';

export const UNDERLAY_PREFIX = '172.30.0';
export const CONTROL_PLANE_ADDRESS = `${UNDERLAY_PREFIX}.1`;

export interface Underlay {
  controlPlaneNetns: string;
  advertiseAddress: string;
}

export async function createUnderlay(runId: string): Promise<Underlay> {
  const netns = `${runId}-cp`;
  await createNetns(netns);
  await ipIn(netns, ['link', 'add', 'br0', 'type', 'bridge']);
  await ipIn(netns, ['addr', 'add', `${CONTROL_PLANE_ADDRESS}/24`, 'dev', 'br0']);
  await ipIn(netns, ['link', 'set', 'br0', 'up']);
  return { controlPlaneNetns: netns, advertiseAddress: CONTROL_PLANE_ADDRESS };
}

/** Plugs node number `index` (1-based) into the underlay; returns its address. */
export async function attachNode(underlay: Underlay, index: number, nodeNetns: string): Promise<string> {
  const address = `${UNDERLAY_PREFIX}.${10 + index}`;
  const port = `n${index}`;
  await ipIn(underlay.controlPlaneNetns, ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nodeNetns]);
  await ipIn(underlay.controlPlaneNetns, ['link', 'set', port, 'master', 'br0', 'up']);
  await ipIn(nodeNetns, ['addr', 'add', `${address}/24`, 'dev', 'eth0']);
  await ipIn(nodeNetns, ['link', 'set', 'eth0', 'up']);
  return address;
}

async function ipIn(netns: string, args: string[]): Promise<void> {
  await execa('ip', ['-n', netns, ...args]);
}
