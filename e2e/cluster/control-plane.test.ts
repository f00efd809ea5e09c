// Starts a real control plane in a throwaway network namespace and drives it with the
// real kubectl, from the root namespace (through the tunnel) and from inside the
// namespace (at the advertise address, as node agents do).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { startControlPlane, type ControlPlane } from './control-plane.ts';

const ADVERTISE = '172.30.0.1';

describe('control plane', () => {
  const netns = `pal-cp-test-${process.pid}-${randomBytes(3).toString('hex')}`;
  let runDir = '';
  let cp: ControlPlane | undefined;
  const kubectl = (args: string[], input?: string) =>
    execa('kubectl', ['--kubeconfig', cp!.adminKubeconfig, ...args], { input });

  before(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'palisade-cp-test-'));
    await execa('ip', ['netns', 'add', netns]);
    // A port-less bridge stands in for the underlay, so the advertise address exists.
    for (const cmd of [
      'link set lo up',
      'link add br0 type bridge',
      `addr add ${ADVERTISE}/24 dev br0`,
      'link set br0 up',
    ]) {
      await execa('ip', ['-n', netns, ...cmd.split(' ')]);
    }
    cp = await startControlPlane({ runDir, netns, advertiseAddress: ADVERTISE });
  });

  after(async () => {
    await cp?.stop();
    await execa('ip', ['netns', 'delete', netns], { reject: false });
    if (runDir) await rm(runDir, { recursive: true, force: true });
  });

  it('is ready through the root-netns tunnel', async () => {
    assert.equal((await kubectl(['get', '--raw', '/readyz'])).stdout, 'ok');
    const { stdout } = await kubectl(['get', 'namespaces', '-o', 'name']);
    assert.ok(stdout.split('\n').includes('namespace/default'), stdout);
  });

  it('stores a Node and lists it', async () => {
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'test-node-1' } };
    await kubectl(['create', '-f', '-'], JSON.stringify(node));
    const { stdout } = await kubectl(['get', 'nodes', '-o', 'name']);
    assert.ok(stdout.split('\n').includes('node/test-node-1'), stdout);
  });

  it('answers at the advertise address from inside the namespace', async () => {
    const { stdout } = await execa('ip', ['netns', 'exec', netns, 'kubectl', '--kubeconfig', cp!.nodeKubeconfig, 'get', 'nodes', '-o', 'name']);
    assert.ok(stdout.split('\n').includes('node/test-node-1'), stdout);
  });

  it('stops every process it started', async () => {
    await cp!.stop();
    // Everything the control plane ran had runDir in its command line, and all but the
    // root-side tunnel ran in the namespace.
    const inNetns = await execa('ip', ['netns', 'pids', netns]);
    assert.equal(inNetns.stdout, '');
    const byRunDir = await execa('pgrep', ['-af', runDir], { reject: false });
    assert.equal(byRunDir.stdout, '');
  });
});
