import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dropAggKey } from '../../datapath/abi.ts';
import { DropTotals } from './drop-totals.ts';

const key = (peer: string) => dropAggKey.encode({ ifindex: 4, peer, dport: 80, protocol: 6, reason: 128, direction: 0 });

test('each drop event stands for the drops since the last total seen; late or stale ones for none', () => {
  const totals = new DropTotals();
  assert.equal(totals.event(key('10.0.0.1'), 1n), 1n);
  assert.equal(totals.event(key('10.0.0.1'), 40n), 39n);
  assert.equal(totals.event(key('10.0.0.1'), 40n), 0n);
  assert.equal(totals.event(key('10.0.0.1'), 12n), 0n);
  assert.equal(totals.event(key('10.0.0.2'), 5n), 5n, 'keys count apart');
});

test('a tail is reported once its total has held still for a whole read, then not again', () => {
  const totals = new DropTotals();
  assert.equal(totals.event(key('10.0.0.1'), 1n), 1n);
  assert.deepEqual(totals.read([{ key: key('10.0.0.1'), total: 30n }]), [], 'still growing, maybe an event on its way');
  const [tail] = totals.read([{ key: key('10.0.0.1'), total: 30n }]);
  assert.deepEqual([tail!.key.peer, tail!.drops], ['10.0.0.1', 29n]);
  assert.deepEqual(totals.read([{ key: key('10.0.0.1'), total: 30n }]), []);
  assert.equal(totals.event(key('10.0.0.1'), 30n), 0n, 'an event late after its tail was reported counts nothing more');
  assert.equal(totals.event(key('10.0.0.1'), 31n), 1n);
});
