// How an agent starts: it waits for an API server it cannot reach (with
// backoff, its CNI STATUS answering not-ready meanwhile) instead of exiting,
// and it never trusts a saved endpoint whose interface is gone or is not its
// pod's any more (after a reboot an old ifindex may name any device).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { callCni, CniFailure, type CniTarget } from '../cluster/kubelet.ts';
import { createNetns, deleteNetns } from '../cluster/netns.ts';
import type { SimNode } from '../cluster/node.ts';

let cluster: Cluster;
let node: SimNode;
const namespaces: string[] = [];
let counter = 0;

before(async () => {
  cluster = await startCluster({ nodes: 1 });
  node = cluster.nodes[0]!;
});

after(async () => {
  for (const ns of namespaces) await deleteNetns(ns);
  await cluster?.stop();
});

async function newTarget(): Promise<CniTarget> {
  const n = ++counter;
  const netns = `${cluster.runId}-s${n}`;
  await createNetns(netns);
  namespaces.push(netns);
  return { containerId: `s${n}x${cluster.runId.replaceAll('-', '')}`, netns, namespace: 'default', name: `start${n}` };
}

async function cniCode(promise: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await promise;
    return { code: 0, message: '' };
  } catch (error) {
    assert.ok(error instanceof CniFailure, String(error));
    return { code: error.code, message: error.message };
  }
}

const ip = (...args: string[]) => execa('ip', ['-n', node.netns, ...args]);
const stateDir = () => `${cluster.runDir}/${node.name}`;
const agentLog = () => readFile(`${stateDir()}/agent.log`, 'utf8');

type AddResult = { ips: Array<{ address: string }>; interfaces: Array<{ name: string }> };

async function ifindex(name: string): Promise<number> {
  const [link] = JSON.parse(String((await ip('-json', 'link', 'show', 'dev', name)).stdout)) as Array<{ ifindex: number }>;
  return link!.ifindex;
}

/** Kills the node's agent unless an earlier failure left it dead already. */
async function killAgent(): Promise<void> {
  const exited = await Promise.race([node.agent.exited.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
  if (!exited) await node.killAgent();
}

/** Deletes a pod's namespace and waits until the kernel has removed its veth pair (it does so asynchronously). */
async function deletePodNetns(netns: string, hostIf: string): Promise<void> {
  await deleteNetns(netns);
  for (let i = 0; i < 100; i++) {
    if ((await ip('link', 'show', 'dev', hostIf).catch(() => undefined)) === undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${hostIf} still exists 10 s after its peer's namespace was deleted`);
}

/** The tc programs on a device of the node, ingress and egress. */
async function programsOn(dev: string): Promise<string> {
  const out = await Promise.all(['ingress', 'egress'].map((dir) => ip('netns', 'exec', node.netns, 'tc', 'filter', 'show', 'dev', dev, dir).catch(() => ({ stdout: '' }))));
  return out.map((o) => String(o.stdout)).join('');
}

test('after a "reboot", saved endpoints whose interface is gone or not their pod veth are pruned and their addresses freed', async () => {
  // Three pods; then the agent dies and two of them lose their veths, as a reboot would.
  const targets = [await newTarget(), await newTarget(), await newTarget()];
  const added = [];
  for (const t of targets) {
    const result = (await callCni(node, 'ADD', t)) as AddResult;
    const hostIf = result.interfaces[0]!.name;
    added.push({ hostIf, ip: result.ips[0]!.address.split('/')[0]!, ifindex: await ifindex(hostIf) });
  }
  const [gone, taken, kept] = [added[0]!, added[1]!, added[2]!];
  assert.match(await programsOn(kept.hostIf), /pal_from_pod/, 'a wired pod has its programs');
  await killAgent();

  // gone: its veth vanished and a non-pod device (a veth pair of the node's
  // own) now holds its old ifindex.
  await deletePodNetns(targets[0]!.netns, gone.hostIf);
  const squatter = `sq${cluster.runId.slice(-6)}`;
  await ip('link', 'add', 'name', squatter, 'index', String(gone.ifindex), 'type', 'veth', 'peer', 'name', `${squatter}p`);
  await ip('link', 'set', squatter, 'up');
  // taken: its veth vanished and a non-pod device now has its name.
  await deletePodNetns(targets[1]!.netns, taken.hostIf);
  await ip('link', 'add', 'name', taken.hostIf, 'type', 'veth', 'peer', 'name', `${squatter}q`);

  await node.startAgent();

  assert.equal(await programsOn(squatter), '', 'no programs on the device that took an old ifindex');
  assert.equal(await programsOn(taken.hostIf), '', 'no programs on the device that took an old name');
  assert.match(await programsOn(kept.hostIf), /pal_from_pod/, 'the surviving pod keeps its programs');
  const endpointFiles = await readdir(`${stateDir()}/endpoints`);
  assert.deepEqual(endpointFiles.sort(), [`${kept.hostIf}.json`]);
  const addresses = (await readdir(`${stateDir()}/ipam`)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  assert.deepEqual(addresses, [kept.ip], 'the pruned endpoints\' addresses are free again');
  const log = await agentLog();
  assert.match(log, new RegExp(`pruned endpoint ${gone.hostIf} .*${gone.ip}.*interface .*does not exist`));
  assert.match(log, new RegExp(`pruned endpoint ${taken.hostIf} .*${taken.ip}`));

  await callCni(node, 'DEL', targets[2]!);
  await ip('link', 'del', squatter);
  await ip('link', 'del', taken.hostIf);
});

test('an agent started while the API server is unreachable waits with backoff, reports not-ready, and becomes ready once it is back', async () => {
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(cluster.controlPlane.nodeKubeconfig);
  const server = new URL(kubeconfig.getCurrentCluster()!.server).hostname;
  await killAgent();
  const logBefore = (await agentLog()).length;
  await ip('route', 'add', 'blackhole', `${server}/32`);
  let routed = false;
  try {
    const starting = node.startAgent().then(
      () => undefined,
      (error: unknown) => error,
    );
    // The CNI socket comes up first; STATUS says not-ready (50) and ADD try-again-later (11).
    let status = await cniCode(callCni(node, 'STATUS', undefined));
    for (let i = 0; i < 300 && status.code === 11; i++) { // the socket is not up until the process has loaded
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await cniCode(callCni(node, 'STATUS', undefined));
    }
    assert.equal(status.code, 50, status.message);
    assert.match(status.message, /not ready/);
    const target = await newTarget();
    const add = await cniCode(callCni(node, 'ADD', target));
    assert.equal(add.code, 11, add.message);

    // It keeps trying, each attempt logged once, further apart each time.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const waits = [...(await agentLog()).slice(logBefore).matchAll(/cannot read Node .* retrying in (\d+) ms/g)].map((m) => Number(m[1]));
    assert.ok(waits.length >= 2 && waits.length <= 7, `retries: ${waits.join(', ')}`);
    assert.ok(waits.at(-1)! > waits[0]!, `delays grow: ${waits.join(', ')}`);

    await ip('route', 'del', 'blackhole', `${server}/32`);
    routed = true;
    assert.equal(await starting, undefined, 'the agent became ready');
    await callCni(node, 'STATUS', undefined);
    await callCni(node, 'ADD', target);
    await callCni(node, 'DEL', target);
  } finally {
    if (!routed) await ip('route', 'del', 'blackhole', `${server}/32`).catch(() => undefined);
  }
});
