// A pod address outlives its pod (README, "Enforcement semantics"): an
// evicted pod keeps its podIP in its status, and CNI hands a freed address to
// the next pod wired on that node. Neither the old pod's identity nor its
// connections may pass to the address's next owner.
//
// node-2's pod CIDR is a single address (/32), so every pod started there
// gets the same one, through a real CNI DEL then ADD: no address is chosen by
// the test. node-1 holds the pods whose ingress is enforced.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkingV1Api, type V1NetworkPolicySpec } from '@kubernetes/client-node';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import type { SimNode } from '../cluster/node.ts';
import { netnsPath } from '../cluster/netns.ts';
import { NODE_BIN } from '../cluster/paths.ts';
import { probeAll } from '../cluster/probe.ts';
import { startProcess, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

const NAMESPACE = 'reuse';
const NODE2_ADDRESS = '10.200.2.10';

// Run in A's network namespace: `node -e DRIVER IP PORT`. One connected UDP
// socket; prints `ready LOCALPORT`, sends five datagrams to IP:PORT, then
// only listens, printing `rx MESSAGE` for every datagram from IP:PORT.
const DRIVER = String.raw`
const [ip, port] = process.argv.slice(1);
const out = (line) => process.stdout.write(line + '\n');
const socket = require('node:dgram').createSocket('udp4');
socket.on('message', (m) => out('rx ' + m));
socket.on('error', (e) => out('error ' + e.message));
socket.connect(Number(port), ip, () => {
  out('ready ' + socket.address().port);
  let n = 0;
  const timer = setInterval(() => { socket.send('ping ' + ++n); if (n === 5) clearInterval(timer); }, 20);
});
`;

// Sent from a pod's network namespace: one UDP datagram from its address and
// SPORT to DST:DPORT (a raw socket: it needs no bind, so it can use the port
// of the pod's echo server). Checksum 0: none, allowed for IPv4.
const INJECT = String.raw`
import socket, struct, sys
dst, sport, dport, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.sendto(struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data, (dst, 0))
`;

let cluster: Cluster;
let node1: SimNode;
let node2: SimNode;
let networking: NetworkingV1Api;
const tracker = new EnforcementTracker();
const drivers: ManagedProcess[] = [];

before(async () => {
  cluster = await startCluster({ nodes: 2, podCidr: (i) => (i === 2 ? `${NODE2_ADDRESS}/32` : `10.200.${i}.0/24`) });
  [node1, node2] = cluster.nodes as [SimNode, SimNode];
  networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  tracker.note('Namespace', await createNamespace(cluster, NAMESPACE, {}));
});

after(async () => {
  for (const d of drivers) await d.stop().catch(() => undefined);
  await cluster?.stop();
});

async function enforced(): Promise<void> {
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 20_000);
}

/** Starts a pod on `node`, recorded for Cluster.stop. */
async function startPod(name: string, labels: Record<string, string>, node: SimNode): Promise<SimPod> {
  const pod = await cluster.kubelet.startPod({ namespace: NAMESPACE, name, labels, node });
  cluster.pods.set(`${NAMESPACE}/${name}`, pod);
  tracker.note('Pod', pod.resourceVersion);
  return pod;
}

/** Stops a pod and deletes its object; its address is free again. */
async function deletePod(pod: SimPod): Promise<void> {
  cluster.pods.delete(`${NAMESPACE}/${pod.name}`);
  await cluster.kubelet.stopPod(pod);
}

async function applyPolicy(name: string, spec: V1NetworkPolicySpec): Promise<void> {
  const policy = await networking.createNamespacedNetworkPolicy({ namespace: NAMESPACE, body: { metadata: { name }, spec } });
  tracker.note('NetworkPolicy', policy.metadata?.resourceVersion);
}

async function probe(from: SimPod, to: SimPod): Promise<string> {
  const [outcome] = await probeAll([{ from, to, port: 80, protocol: 'TCP' }], 1000);
  return outcome!.verdict;
}

test('an evicted pod’s address reused by a pod of another identity is judged with the new identity on the other node', async () => {
  const x = await startPod('x', { pod: 'x' }, node1);
  const y = await startPod('y', { pod: 'y' }, node1); // no policy: reachable by anyone
  // The evicted pod's name sorts after the new pod's: a conflict decided by name would keep its identity.
  const evicted = await startPod('z-evicted', { app: 'old' }, node2);
  assert.equal(evicted.ip, NODE2_ADDRESS);
  await applyPolicy('x-from-old', { podSelector: { matchLabels: { pod: 'x' } }, policyTypes: ['Ingress'], ingress: [{ _from: [{ podSelector: { matchLabels: { app: 'old' } } }] }] });
  await enforced();
  assert.equal(await probe(evicted, x), 'ok', 'the old identity is allowed to x');

  // Evicted: Failed, reason Evicted, podIP kept in the status; CNI DEL frees the address; the object stays.
  cluster.pods.delete(`${NAMESPACE}/${evicted.name}`);
  tracker.note('Pod', await cluster.kubelet.evictPod(evicted));
  const status = (await cluster.core.readNamespacedPod({ namespace: NAMESPACE, name: evicted.name })).status;
  assert.deepEqual([status?.phase, status?.reason, status?.podIP], ['Failed', 'Evicted', NODE2_ADDRESS]);

  const reused = await startPod('a-new', { app: 'new' }, node2);
  try {
    assert.equal(reused.ip, NODE2_ADDRESS, 'CNI gave the new pod the evicted pod’s address');
    await enforced();
    assert.equal(await probe(reused, y), 'ok', 'the new pod reaches node-1 (so a failure below is the policy)');
    assert.equal(await probe(reused, x), 'fail', 'the new pod passed as the evicted pod’s identity');
  } finally {
    await deletePod(reused);
    await cluster.core.deleteNamespacedPod({ namespace: NAMESPACE, name: evicted.name, gracePeriodSeconds: 0 }).catch(() => undefined);
  }
});

test('a deleted pod’s connection is not inherited by the next owner of its address', async () => {
  const a = await startPod('a', { pod: 'a' }, node1);
  const y = cluster.pods.get(`${NAMESPACE}/y`)!;
  await applyPolicy('a-deny-ingress', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'] });
  const p = await startPod('p', { app: 'p' }, node2);
  assert.equal(p.ip, NODE2_ADDRESS);
  await enforced();

  // A opens a UDP flow to P's echo server on 81: the echoes are replies, through A's ingress deny-all.
  const logFile = `${cluster.runDir}/address-reuse-driver.log`;
  const driver = await startProcess({ name: 'udp flow a -> p', command: NODE_BIN, args: ['-e', DRIVER, p.ip, '81'], netns: a.netns, logFile, readyLine: /^ready (\d+)$/, readyTimeoutMs: 10_000 });
  drivers.push(driver);
  const localPort = Number(driver.readyMatch![1]);
  const received = async () => (await readFile(logFile, 'utf8')).split('\n').filter((l) => l.startsWith('rx '));
  const inject = (from: SimPod, data: string) =>
    execa('nsenter', [`--net=${netnsPath(from.netns)}`, 'python3', '-c', INJECT, a.ip, '81', String(localPort), data]);
  await waitUntil(async () => (await received()).some((l) => l.startsWith('rx ping')), 5_000, 'P echoes A’s datagrams');
  // The reply side of the flow passes the deny-all: the same datagram from Q below means something.
  await inject(p, 'from-p');
  await waitUntil(async () => (await received()).includes('rx from-p'), 2_000, 'a datagram from P on the flow’s tuple reaches A');

  // P is deleted (CNI DEL frees its address); Q, another identity, gets the address through CNI ADD.
  await deletePod(p);
  const q = await startPod('q', { app: 'q' }, node2);
  try {
    assert.equal(q.ip, NODE2_ADDRESS, 'CNI gave Q the deleted pod’s address');
    await enforced();
    assert.equal(await probe(q, y), 'ok', 'Q reaches node-1 (so a drop below is the policy)');
    await inject(q, 'from-q');
    await sleep(1_500);
    assert.deepEqual((await received()).filter((l) => l === 'rx from-q'), [], 'Q passed A’s ingress deny-all as the reply side of P’s connection');
  } finally {
    await driver.stop();
    await deletePod(q);
  }
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}
