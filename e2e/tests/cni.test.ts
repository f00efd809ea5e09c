// The CNI plugin, called exactly as a container runtime calls it (the
// binary, CNI_* environment, config on stdin), against a real agent on a
// simulated node of a real control plane.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { callCni, CniFailure, networkConfig, type CniTarget } from '../cluster/kubelet.ts';
import { createNetns, deleteNetns } from '../cluster/netns.ts';
import type { SimNode } from '../cluster/node.ts';

let cluster: Cluster;
let node: SimNode;
/** node-2 has a /29: six assignable addresses, to exhaust. */
let smallNode: SimNode;
const namespaces: string[] = [];
let counter = 0;

before(async () => {
  cluster = await startCluster({ nodes: 2, podCidr: (i) => (i === 1 ? '10.200.1.0/24' : '10.200.2.0/29') });
  node = cluster.nodes[0]!;
  smallNode = cluster.nodes[1]!;
});

after(async () => {
  for (const ns of namespaces) await deleteNetns(ns);
  await cluster?.stop();
});

async function newTarget(): Promise<CniTarget> {
  const n = ++counter;
  const netns = `${cluster.runId}-t${n}`;
  await createNetns(netns);
  namespaces.push(netns);
  return { containerId: `c${n}x${cluster.runId.replaceAll('-', '')}`, netns, namespace: 'default', name: `pod${n}` };
}

async function cniError(promise: Promise<unknown>): Promise<CniFailure> {
  const error = await promise.then(
    () => assert.fail('expected the CNI call to fail'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CniFailure, `expected a CNI error, got ${String(error)}`);
  return error;
}

async function hostLinks(n: SimNode): Promise<string[]> {
  const out = await execa('ip', ['-n', n.netns, '-json', 'link', 'show']);
  return (JSON.parse(String(out.stdout)) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => n.startsWith('pal'));
}

async function allocations(n: SimNode): Promise<string[]> {
  return (await readdir(`${cluster.runDir}/${n.name}/ipam`)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}

type AddResult = { cniVersion: string; ips: Array<{ address: string; gateway: string }>; interfaces: Array<{ name: string; sandbox?: string }> };

describe('CNI plugin', () => {
  test('VERSION lists the supported spec versions', async () => {
    const result = (await callCni(node, 'VERSION', undefined, { cniVersion: '1.1.0', agentSocket: node.cniSocket })) as { supportedVersions: string[] };
    assert.deepEqual(result.supportedVersions, ['1.0.0', '1.1.0']);
  });

  test('ADD wires the pod, CHECK confirms it, DEL removes it and is idempotent', async () => {
    const target = await newTarget();
    const result = (await callCni(node, 'ADD', target)) as AddResult;
    assert.equal(result.cniVersion, '1.1.0');
    const address = result.ips[0]!.address;
    assert.match(address, /^10\.200\.1\.\d+\/32$/);
    assert.equal(result.interfaces[1]!.sandbox, `/var/run/netns/${target.netns}`);
    const podAddr = await execa('ip', ['-n', target.netns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    assert.match(String(podAddr.stdout), new RegExp(`inet ${address.replace('/', '\\/')}`));
    const podRoute = await execa('ip', ['-n', target.netns, 'route', 'show', 'default']);
    assert.match(String(podRoute.stdout), /default via 169\.254\.1\.1 dev eth0/);
    assert.ok((await hostLinks(node)).includes(result.interfaces[0]!.name));

    await callCni(node, 'CHECK', target);

    await callCni(node, 'DEL', target);
    assert.ok(!(await hostLinks(node)).includes(result.interfaces[0]!.name));
    assert.ok(!(await allocations(node)).includes(address.split('/')[0]!));
    await callCni(node, 'DEL', target); // again: nothing left to remove, still success
    await callCni(node, 'DEL', { ...target, netns: `${target.netns}-gone` }); // namespace already gone
  });

  test('CHECK reports a pod interface that went missing', async () => {
    const target = await newTarget();
    await callCni(node, 'ADD', target);
    await execa('ip', ['-n', target.netns, 'link', 'del', 'eth0']); // takes the host side with it
    const error = await cniError(callCni(node, 'CHECK', target));
    assert.equal(error.code, 101);
    assert.match(error.message, /does not exist/);
    await callCni(node, 'DEL', target);
  });

  // Each row: what the runtime got wrong, and the code and words that must name it.
  const badInputs: Array<{ why: string; env?: Partial<CniTarget>; config?: Record<string, unknown>; code: number; message: RegExp }> = [
    { why: 'network namespace does not exist', env: { netns: 'no-such-netns' }, code: 3, message: /network namespace .*no-such-netns does not exist/ },
    { why: 'config lacks the network name', config: { cniVersion: '1.1.0', type: 'palisade-cni' }, code: 7, message: /field "name"/ },
    { why: 'unsupported spec version', config: { cniVersion: '0.2.0', name: 'p', type: 'palisade-cni' }, code: 1, message: /cniVersion 0\.2\.0 is not supported/ },
    { why: 'invalid container ID', env: { containerId: '-bad id' }, code: 4, message: /CNI_CONTAINERID/ },
    { why: 'interface name too long', env: { ifName: 'a-very-long-ifname' }, code: 4, message: /CNI_IFNAME/ },
    // Limits on every field: nothing overlong or out of its alphabet is wired.
    { why: 'a 100,000-character container ID', env: { containerId: 'a'.repeat(100_000) }, code: 4, message: /CNI_CONTAINERID.*longer than 256/ },
    { why: 'interface name with "#" (a comment in ip -batch)', env: { ifName: 'eth#0' }, code: 4, message: /CNI_IFNAME/ },
    { why: 'netns path with a newline (a second ip -batch command)', env: { netns: 'x\nlink set lo down' }, code: 4, message: /CNI_NETNS/ },
    { why: 'pod namespace that is not a Kubernetes name', env: { namespace: 'Not_A_Name' }, code: 4, message: /K8S_POD_NAMESPACE/ },
  ];
  for (const row of badInputs) {
    test(`ADD rejects bad input: ${row.why}`, async () => {
      const target = { ...(await newTarget()), ...row.env };
      const config = row.config ? { ...row.config, agentSocket: node.cniSocket } : networkConfig(node);
      const error = await cniError(callCni(node, 'ADD', target, config));
      assert.equal(error.code, row.code, error.message);
      assert.match(error.message, row.message);
      assert.deepEqual(await hostLinks(node), [], 'a rejected ADD leaves no interface behind');
    });
  }

  test('a config that is not JSON is a decode error', async () => {
    const result = await execa('ip', ['netns', 'exec', node.netns, 'build/bin/palisade-cni'], {
      input: `{"agentSocket": "${node.cniSocket}", oops`,
      env: { CNI_COMMAND: 'VERSION' },
      extendEnv: false,
      reject: false,
    });
    assert.equal(result.exitCode, 1);
    assert.equal((JSON.parse(String(result.stdout)) as { code: number }).code, 6);
  });

  // Runs the binary with exactly this environment and stdin (undefined: stdin left open, never closed).
  async function runPlugin(env: Record<string, string>, input: string | undefined): Promise<{ exitCode: number | undefined; code: number; message: string; ms: number }> {
    const started = Date.now();
    const child = execa('ip', ['netns', 'exec', node.netns, 'build/bin/palisade-cni'], {
      env,
      extendEnv: false,
      reject: false,
      timeout: 30_000, // a hang fails the assertion below, and never outlives the test
      ...(input === undefined ? { stdin: 'pipe' as const } : { input }),
    });
    const result = await child;
    const parsed = JSON.parse(String(result.stdout)) as { code: number; msg: string; details?: string };
    return { exitCode: result.exitCode, code: parsed.code, message: `${parsed.msg} (${parsed.details ?? ''})`, ms: Date.now() - started };
  }

  // Each row: stdin the runtime got wrong. No agent socket is named, so the
  // plugin itself must decide: a decode error (6), never try-again-later (11).
  const badStdin: Array<{ why: string; input: string; code: number; message: RegExp }> = [
    { why: 'empty stdin', input: '', code: 6, message: /stdin.*empty/ },
    { why: 'stdin that is not JSON', input: 'hello', code: 6, message: /not valid JSON/ },
    { why: 'JSON cut short', input: '{"cniVersion": "1.1.0", "name": "p"', code: 6, message: /not valid JSON/ },
    { why: 'JSON that is not an object', input: '["cniVersion"]', code: 7, message: /must be a JSON object/ },
  ];
  for (const row of badStdin) {
    test(`the plugin rejects ${row.why} itself`, async () => {
      const result = await runPlugin({ CNI_COMMAND: 'VERSION' }, row.input);
      assert.equal(result.exitCode, 1);
      assert.equal(result.code, row.code, result.message);
      assert.match(result.message, row.message);
    });
  }

  test('a stdin that is never closed ends within the read deadline with an I/O error', async () => {
    const result = await runPlugin({ CNI_COMMAND: 'VERSION' }, undefined);
    assert.equal(result.exitCode, 1);
    assert.equal(result.code, 5, result.message);
    assert.match(result.message, /stdin.*5 s/);
    assert.ok(result.ms < 10_000, `took ${result.ms} ms`);
  });

  test('bad fields are rejected by the plugin even when the agent is unreachable', async () => {
    const config = JSON.stringify({ cniVersion: '1.1.0', name: 'p', type: 'palisade-cni', agentSocket: '/nonexistent/cni.sock' });
    const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0' };
    for (const [env, field] of [
      [{ CNI_CONTAINERID: 'a'.repeat(100_000) }, /CNI_CONTAINERID/],
      [{ CNI_IFNAME: 'eth0\n' }, /CNI_IFNAME/],
      [{ CNI_NETNS: '/var/run/netns/x\ny' }, /CNI_NETNS/],
      [{ CNI_COMMAND: 'PING' }, /CNI_COMMAND/],
    ] as const) {
      const result = await runPlugin({ ...base, ...env }, config);
      assert.equal(result.code, 4, result.message);
      assert.match(result.message, field);
    }
  });

  test('an unreachable agent is reported as try-again-later', async () => {
    const error = await cniError(callCni(node, 'VERSION', undefined, { cniVersion: '1.1.0', name: 'p', type: 'palisade-cni', agentSocket: '/nonexistent/cni.sock' }));
    assert.equal(error.code, 11);
    assert.match(error.message, /not reachable/);
  });

  test('an exhausted pod CIDR is an error naming the range, and frees nothing it should not', async () => {
    const targets = [];
    for (let i = 0; i < 6; i++) {
      const target = await newTarget();
      await callCni(smallNode, 'ADD', target);
      targets.push(target);
    }
    const error = await cniError(callCni(smallNode, 'ADD', await newTarget()));
    assert.equal(error.code, 100);
    assert.match(error.message, /no free address left in pod CIDR 10\.200\.2\.0\/29/);
    assert.equal((await allocations(smallNode)).length, 6);
    for (const target of targets) await callCni(smallNode, 'DEL', target);
    assert.deepEqual(await allocations(smallNode), []);
  });

  test('concurrent ADDs never hand out the same address', async () => {
    const targets = await Promise.all(Array.from({ length: 40 }, () => newTarget()));
    const results = (await Promise.all(targets.map((t) => callCni(node, 'ADD', t)))) as AddResult[];
    const ips = results.map((r) => r.ips[0]!.address);
    assert.equal(new Set(ips).size, ips.length, `duplicate addresses: ${ips.join(' ')}`);
    assert.equal((await hostLinks(node)).length, 40);
    await Promise.all(targets.map((t) => callCni(node, 'DEL', t)));
    assert.deepEqual(await hostLinks(node), []);
    assert.deepEqual(await allocations(node), []);
  });

  test('STATUS succeeds and GC releases attachments the runtime no longer lists', async () => {
    await callCni(node, 'STATUS', undefined);
    const keep = await newTarget();
    const drop = await newTarget();
    await callCni(node, 'ADD', keep);
    await callCni(node, 'ADD', drop);
    await callCni(node, 'GC', undefined, networkConfig(node, { 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }] }));
    assert.equal((await hostLinks(node)).length, 1);
    assert.equal((await allocations(node)).length, 1);
    await callCni(node, 'DEL', keep);
  });

  test('1000 ADD/DEL cycles leak no address, interface or file', async () => {
    const target = await newTarget();
    const stateFiles = async () => (await readdir(`${cluster.runDir}/${node.name}`, { recursive: true })).sort();
    const fds = async () => (await readdir(`/proc/${node.agent.pid}/fd`)).length;
    const cycle = async () => {
      const result = (await callCni(node, 'ADD', target)) as AddResult;
      await callCni(node, 'DEL', target);
      return result.ips[0]!.address;
    };
    const seen = new Set([await cycle()]); // the first cycle may create the allocator's bookkeeping file
    const [filesBefore, fdsBefore] = [await stateFiles(), await fds()];
    for (let i = 1; i < 1000; i++) seen.add(await cycle());
    assert.deepEqual(await hostLinks(node), []);
    assert.deepEqual(await allocations(node), []);
    assert.deepEqual(await stateFiles(), filesBefore);
    assert.ok((await fds()) <= fdsBefore + 2, `agent file descriptors grew from ${fdsBefore} to ${await fds()}`);
    const routes = await execa('ip', ['-n', node.netns, 'route', 'show', 'proto', '231']);
    assert.ok(!/dev pal/.test(String(routes.stdout)), `pod routes left: ${routes.stdout}`);
    // Round-robin allocation: a released address is not handed out again at once.
    assert.ok(seen.size > 200, `only ${seen.size} distinct addresses over 1000 cycles`);
  });
});
