import assert from 'node:assert/strict';
import { test } from 'node:test';
import { masqueradeRules } from '../datapath/masquerade.ts';
import { masqueradePlan } from './masquerade.ts';

// Each row: the Node objects as the agent sees them, and what stays in the cluster.
const plans: { what: string; nodes: Parameters<typeof masqueradePlan>[0]; cluster: string[]; skipped?: string[] }[] = [
  // every node's pod CIDR and address, this node's included, in address order
  {
    what: 'two nodes',
    nodes: [{ name: 'n2', podCidr: '10.200.2.0/24', internalIp: '172.30.0.12' }, { name: 'n1', podCidr: '10.200.1.0/24', internalIp: '172.30.0.11' }],
    cluster: ['10.200.1.0/24', '10.200.2.0/24', '172.30.0.11/32', '172.30.0.12/32'],
  },
  // a node without a pod CIDR yet still has an address that stays in the cluster
  { what: 'a node without pod CIDR', nodes: [{ name: 'n3', podCidr: undefined, internalIp: '172.30.0.13' }], cluster: ['10.200.1.0/24', '172.30.0.13/32'] },
  // this node's own pod CIDR even before its Node is listed
  { what: 'no Node listed yet', nodes: [], cluster: ['10.200.1.0/24'] },
  // a CIDR with host bits is written as its network; one listed twice once
  { what: 'host bits and duplicates', nodes: [{ name: 'n1', podCidr: '10.200.1.7/24', internalIp: undefined }], cluster: ['10.200.1.0/24'] },
  // IPv6 and junk never reach a rule; they are reported
  {
    what: 'not IPv4',
    nodes: [{ name: 'v6', podCidr: 'fd00::/64', internalIp: 'fd00::1' }, { name: 'bad', podCidr: '10.0.0.0/8 -j ACCEPT', internalIp: '1.2.3.4 x' }],
    cluster: ['10.200.1.0/24'],
    skipped: ['v6 pod CIDR fd00::/64', 'v6 address fd00::1', 'bad pod CIDR 10.0.0.0/8 -j ACCEPT', 'bad address 1.2.3.4 x'],
  },
];

for (const row of plans) {
  test(`masqueradePlan: ${row.what}`, () => {
    const plan = masqueradePlan(row.nodes, '10.200.1.0/24');
    assert.deepEqual(plan, { podCidr: '10.200.1.0/24', cluster: row.cluster, skipped: row.skipped ?? [] });
  });
}

test('masqueradeRules: the chain flushed and rewritten in one transaction; only this node\'s pods, only leaving the cluster', () => {
  assert.equal(
    masqueradeRules({ podCidr: '10.200.1.0/24', cluster: ['10.200.1.0/24', '10.200.2.0/24', '172.30.0.11/32'] }),
    [
      '*nat',
      ':PALISADE-MASQUERADE - [0:0]',
      '-A PALISADE-MASQUERADE ! -s 10.200.1.0/24 -j RETURN',
      '-A PALISADE-MASQUERADE -d 10.200.1.0/24 -j RETURN',
      '-A PALISADE-MASQUERADE -d 10.200.2.0/24 -j RETURN',
      '-A PALISADE-MASQUERADE -d 172.30.0.11/32 -j RETURN',
      '-A PALISADE-MASQUERADE -j MASQUERADE',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('masqueradeRules refuses anything but IPv4 CIDRs', () => {
  assert.throws(() => masqueradeRules({ podCidr: '10.200.1.0/24', cluster: ['10.0.0.0/8\n-A POSTROUTING -j ACCEPT'] }), TypeError);
  assert.throws(() => masqueradeRules({ podCidr: '10.200.1.0', cluster: [] }), TypeError);
});
