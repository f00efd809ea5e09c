// The masquerade chain against the kernel's iptables, in a network namespace
// of this run's own (removed at the end, also on failure).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createNetns, deleteNetns, netnsPath, newRunId } from '../e2e/cluster/netns.ts';
import { applyMasquerade, listMasquerade, removeMasquerade } from './masquerade.ts';

const netns = `${newRunId()}-masq`;
after(() => deleteNetns(netns));

test('the chain is written, rewritten whole with one jump, and removed', async () => {
  await createNetns(netns);
  const where = { kind: 'path', path: netnsPath(netns) } as const;
  assert.equal(await listMasquerade(where), undefined);
  assert.equal(await removeMasquerade(where), false, 'nothing to remove at first');

  assert.equal(await applyMasquerade({ podCidr: '10.200.1.0/24', cluster: ['10.200.1.0/24', '172.30.0.11/32'] }, where), true);
  assert.deepEqual(await listMasquerade(where), {
    chain: [
      '-N PALISADE-MASQUERADE',
      '-A PALISADE-MASQUERADE ! -s 10.200.1.0/24 -j RETURN',
      '-A PALISADE-MASQUERADE -d 10.200.1.0/24 -j RETURN',
      '-A PALISADE-MASQUERADE -d 172.30.0.11/32 -j RETURN',
      '-A PALISADE-MASQUERADE -j MASQUERADE',
    ],
    jumps: 1,
  });

  // Again the same (a restarted agent): nothing is written.
  assert.equal(await applyMasquerade({ podCidr: '10.200.1.0/24', cluster: ['10.200.1.0/24', '172.30.0.11/32'] }, where), false);

  // A node joins: the chain is replaced, not appended to, and the jump stays single.
  await applyMasquerade({ podCidr: '10.200.1.0/24', cluster: ['10.200.1.0/24', '10.200.2.0/24', '172.30.0.11/32', '172.30.0.12/32'] }, where);
  const listed = await listMasquerade(where);
  assert.equal(listed?.jumps, 1);
  assert.deepEqual(listed?.chain.filter((r) => r.includes('-d ')).length, 4);
  assert.equal(listed?.chain.at(-1), '-A PALISADE-MASQUERADE -j MASQUERADE');

  assert.equal(await removeMasquerade(where), true);
  assert.equal(await listMasquerade(where), undefined);
  assert.equal(await removeMasquerade(where), false);
});
