// For the prefilter's kernel test and benchmark: a node with one pod and an
// uplink, and a sender on the other end of that uplink, in network
// namespaces of their own (names `pal-<pid>-<random>-…`, removed by
// dispose(), also after a failed start):
//
//   <run>-tx (sender)              <run>-nd (node)                       <run>-pd (pod)
//   tx0 192.168.250.2/24  <veth>  up0 192.168.250.1/24 (the uplink)
//       + 203.0.113.9/32                pfpod ─────────────── <veth> ─── eth0 10.250.0.5/32
//       + 198.51.100.9/32               (tc: pal_from_pod, pal_to_pod)
//
// The node forwards; its datapath is loaded as the agent loads it (the
// endpoint object, then the prefilter's, maps pinned in a bpffs of the run),
// the pod's maps written from the policies given through the real compiler
// and planner, the prefilter's from policy/prefilter.ts through the agent's
// writes. The prefilter is attached to up0 by attachPrefilter().
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createNetns, deleteNetns, netnsPath, newRunId } from '../e2e/cluster/netns.ts';
import { planDatapath } from '../agent/datapath-plan.ts';
import { prefilterContents, prefilterWrites } from '../agent/prefilter.ts';
import { compile } from '../policy/compile.ts';
import { allocateIdentities } from '../policy/fixtures.ts';
import type { PalisadePolicyInput } from '../policy/types.ts';
import { datapathConfig, loadGlobals, reasonName, sumMetrics, u32Key } from './abi.ts';
import { Loader, type XdpMode } from './loader-client.ts';
import { PREFILTER_OBJECT, PREFILTER_PROGRAM } from './prefilter.ts';
import { ENDPOINT_OBJECT } from './scratch-datapath.ts';

export const LAB = {
  uplink: 'up0',
  uplinkAddress: '192.168.250.1',
  senderAddress: '192.168.250.2',
  /** Sender addresses: one the test policies deny, one they do not. */
  denied: '203.0.113.9',
  allowed: '198.51.100.9',
  podVeth: 'pfpod',
  pod: { namespace: 'lab', name: 'pod', ip: '10.250.0.5' },
} as const;

const FLOW_RING_BYTES = 1 << 22;

export interface PrefilterLab {
  /** Namespace names. */
  node: string;
  podNs: string;
  sender: string;
  loader: Loader;
  pinDir: string;
  uplinkIfindex: number;
  podIfindex: number;
  /** The uplink's MAC (the destination of frames the sender crafts). */
  uplinkMac: string;
  /** pal_metrics: packets by reason name. */
  metrics(): Promise<Map<string, bigint>>;
  attachPrefilter(mode?: 'auto' | XdpMode): Promise<XdpMode>;
  detachPrefilter(): Promise<boolean>;
  /** Runs a command in a namespace of the lab. */
  exec(netns: string, file: string, args: string[], options?: { input?: string; timeout?: number }): Promise<string>;
  dispose(): Promise<void>;
}

export async function prefilterLab(policies: readonly PalisadePolicyInput[]): Promise<PrefilterLab> {
  const run = newRunId();
  const [node, podNs, sender] = [`${run}-nd`, `${run}-pd`, `${run}-tx`];
  const bpffs = await mkdtemp(join(tmpdir(), `${run}-bpf-`));
  let mounted = false;
  let loader: Loader | undefined;
  const dispose = async () => {
    await loader?.close();
    // Deleting the namespaces takes their devices, and with them the programs attached there.
    for (const ns of [sender, podNs, node]) await deleteNetns(ns);
    if (mounted) await execa('umount', [bpffs], { reject: false });
    await rm(bpffs, { recursive: true, force: true });
  };
  const ip = (ns: string, ...args: string[]) => execa('ip', ['-n', ns, ...args]);
  const exec = async (ns: string, file: string, args: string[], options: { input?: string; timeout?: number } = {}) =>
    String((await execa('ip', ['netns', 'exec', ns, file, ...args], { input: options.input, timeout: options.timeout })).stdout);
  try {
    for (const ns of [node, podNs, sender]) await createNetns(ns);
    for (const ns of [node, podNs, sender]) await exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await exec(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    // The uplink.
    await ip(sender, 'link', 'add', 'tx0', 'type', 'veth', 'peer', 'name', LAB.uplink, 'netns', netnsPath(node));
    await ip(sender, 'addr', 'add', `${LAB.senderAddress}/24`, 'dev', 'tx0');
    await ip(sender, 'addr', 'add', `${LAB.denied}/32`, 'dev', 'tx0');
    await ip(sender, 'addr', 'add', `${LAB.allowed}/32`, 'dev', 'tx0');
    await ip(sender, 'link', 'set', 'tx0', 'up');
    await ip(sender, 'route', 'add', `${LAB.pod.ip}/32`, 'via', LAB.uplinkAddress);
    await ip(node, 'addr', 'add', `${LAB.uplinkAddress}/24`, 'dev', LAB.uplink);
    await ip(node, 'link', 'set', LAB.uplink, 'up');
    await ip(node, 'route', 'add', 'default', 'via', LAB.senderAddress);
    // The pod, wired as pod-link.ts wires pods.
    await ip(node, 'link', 'add', LAB.podVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netnsPath(podNs));
    await ip(node, 'link', 'set', LAB.podVeth, 'up');
    await ip(podNs, 'addr', 'add', `${LAB.pod.ip}/32`, 'dev', 'eth0');
    await ip(podNs, 'link', 'set', 'eth0', 'up');
    const mac = async (ns: string, dev: string) => (JSON.parse(String((await ip(ns, '-j', 'link', 'show', 'dev', dev)).stdout)) as Array<{ address: string; ifindex: number }>)[0]!;
    const [hostSide, podSide, uplink] = [await mac(node, LAB.podVeth), await mac(podNs, 'eth0'), await mac(node, LAB.uplink)];
    await ip(node, 'neigh', 'replace', LAB.pod.ip, 'lladdr', podSide.address, 'dev', LAB.podVeth, 'nud', 'permanent');
    await ip(node, 'route', 'replace', `${LAB.pod.ip}/32`, 'dev', LAB.podVeth, 'scope', 'link');
    await ip(podNs, 'neigh', 'replace', '169.254.1.1', 'lladdr', hostSide.address, 'dev', 'eth0', 'nud', 'permanent');
    await ip(podNs, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    await ip(podNs, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');

    // The datapath, as the agent loads it.
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    mounted = true;
    const pinDir = join(bpffs, 'node');
    loader = await Loader.start({ netns: netnsPath(node), onLog: () => undefined });
    const mapSizes = { pal_flows: FLOW_RING_BYTES };
    await loader.load(ENDPOINT_OBJECT, pinDir, { globals: loadGlobals({ hostReachesPods: true }), mapSizes });
    await loader.load(PREFILTER_OBJECT, pinDir, { mapSizes });
    const pod = { ...LAB.pod, labels: { app: 'lab' }, node: 'lab-node', containerPorts: [] };
    const world = { namespaces: [{ name: LAB.pod.namespace, labels: {} }], pods: [pod], policies: [] };
    const compiled = compile({ ...world, palisadePolicies: policies, identities: allocateIdentities(world), node: 'lab-node' });
    const endpoint = { key: `${LAB.pod.namespace}/${LAB.pod.name}`, ifindex: hostSide.ifindex, ip: LAB.pod.ip };
    const plan = planDatapath({ endpoints: [endpoint], compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [LAB.uplinkAddress], others: [] } });
    if (plan.problems.length > 0) throw new Error(`lab plan: ${plan.problems.map((p) => p.message).join('; ')}`);
    for (const [map, entries] of plan.maps) {
      if (entries.size > 0) await loader.update(map, [...entries].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: Buffer.from(v, 'hex') })));
    }
    await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: 1, flags: 0 }) }]);
    await loader.attach(hostSide.ifindex, 'pal_from_pod', 'ingress');
    await loader.attach(hostSide.ifindex, 'pal_to_pod', 'egress');
    const { narrow, widen } = prefilterWrites(new Map(), prefilterContents(policies, [endpoint]).contents);
    for (const w of [...narrow, ...widen]) {
      const entries = w.entries.map((e) => ({ key: Buffer.from(e.key, 'hex'), value: Buffer.from(e.value, 'hex') }));
      if (w.op === 'delete') await loader.delete(w.map, entries.map((e) => e.key));
      else await loader.update(w.map, entries);
    }
    const l = loader;
    return {
      node, podNs, sender, loader: l, pinDir,
      uplinkIfindex: uplink.ifindex,
      podIfindex: hostSide.ifindex,
      uplinkMac: uplink.address,
      async metrics() {
        const out = new Map<string, bigint>();
        for (const e of await l.dump('pal_metrics')) {
          const packets = sumMetrics(e.value).packets;
          if (packets > 0n) out.set(reasonName(e.key.readUInt32LE(0)) ?? String(e.key.readUInt32LE(0)), packets);
        }
        return out;
      },
      attachPrefilter: async (mode = 'auto') => (await l.xdpAttach(uplink.ifindex, PREFILTER_PROGRAM, mode)).mode,
      detachPrefilter: () => l.xdpDetach(uplink.ifindex, PREFILTER_PROGRAM),
      exec,
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
