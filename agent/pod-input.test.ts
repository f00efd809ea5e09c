// The Pod object -> compiler input mapping: which pods claim an address
// (terminal and host-network pods never do), and what decides a conflict.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { podInput } from './pod-input.ts';

const pod = (status: V1Pod['status'], spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod => ({
  metadata: { namespace: 'x', name: 'a', uid: 'u-1', labels: { app: 'a' }, creationTimestamp: new Date('2026-11-30T10:00:00Z') },
  spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }, { containerPort: 53, protocol: 'UDP' }] }], ...spec },
  status,
});

test('the address a pod claims, by phase, host networking and what CNI gave it', () => {
  const rows: Array<[string, V1Pod, string | undefined, string | undefined]> = [
    // [what, pod, address the node's CNI registry gave it, expected ip]
    ['a running pod claims its status.podIP', pod({ phase: 'Running', podIP: '10.0.0.5' }), undefined, '10.0.0.5'],
    ['a pending pod without podIP yet claims the address CNI gave it', pod({ phase: 'Pending' }), '10.0.0.6', '10.0.0.6'],
    ['a pending pod with neither has no address', pod({ phase: 'Pending' }), undefined, undefined],
    ['an evicted pod keeps podIP in its status but claims nothing', pod({ phase: 'Failed', reason: 'Evicted', podIP: '10.0.0.5' }), undefined, undefined],
    ['a failed pod claims nothing, even with a registry address', pod({ phase: 'Failed', podIP: '10.0.0.5' }), '10.0.0.5', undefined],
    ['a succeeded pod claims nothing', pod({ phase: 'Succeeded', podIP: '10.0.0.5' }), undefined, undefined],
    ['a host-network pod’s podIP is its node’s: it claims no pod address', pod({ phase: 'Running', podIP: '172.30.0.11' }, { hostNetwork: true }), undefined, undefined],
    ['a terminating pod (deletionTimestamp) still holds its sandbox and address', { ...pod({ phase: 'Running', podIP: '10.0.0.5' }), metadata: { ...pod({}).metadata, deletionTimestamp: new Date() } }, undefined, '10.0.0.5'],
  ];
  for (const [what, p, local, ip] of rows) assert.equal(podInput(p, local).ip, ip, what);
});

test('identity, placement, ports and what decides an address conflict are carried over', () => {
  assert.deepEqual(podInput(pod({ phase: 'Running', podIP: '10.0.0.5' })), {
    namespace: 'x',
    name: 'a',
    labels: { app: 'a' },
    ip: '10.0.0.5',
    node: 'node-1',
    containerPorts: [
      { name: 'http', containerPort: 80, protocol: 'TCP' },
      { name: undefined, containerPort: 53, protocol: 'UDP' },
    ],
    uid: 'u-1',
    createdAt: Date.parse('2026-11-30T10:00:00Z'),
  });
});

test('a creationTimestamp given as text (a raw object) is read too; an unreadable one counts as absent', () => {
  const raw = pod({ phase: 'Running', podIP: '10.0.0.5' });
  raw.metadata!.creationTimestamp = '2026-11-30T10:00:01Z' as unknown as Date;
  assert.equal(podInput(raw).createdAt, Date.parse('2026-11-30T10:00:01Z'));
  raw.metadata!.creationTimestamp = 'yesterday' as unknown as Date;
  assert.equal(podInput(raw).createdAt, undefined);
  delete raw.metadata!.creationTimestamp;
  assert.equal(podInput(raw).createdAt, undefined);
});
