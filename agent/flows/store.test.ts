import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow } from '../../lib/flow.ts';
import { FlowStore } from './store.ts';

const flow = (n: number): Flow => ({
  time: new Date(Date.UTC(2026, 11, 1, 0, 0, n)).toISOString().replace('Z', '000000Z'), node: 'n', type: 'new', verdict: 'forwarded', reason: 'ALLOW_POLICY',
  direction: 'ingress', protocol: 'TCP', packets: 1, bytes: n, isolated: false, policies: [],
  source: { ip: '10.0.0.1', identity: 300 }, destination: { ip: '10.0.0.2', identity: 300 },
});

test('the store keeps the newest flows in order, and queries filter, take the last N and start at a time', () => {
  const store = new FlowStore(5);
  store.add([1, 2, 3, 4, 5, 6, 7].map(flow));
  assert.equal(store.size, 5);
  assert.equal(store.evicted, 2);
  assert.deepEqual(store.query().map((s) => s.flow.bytes), [3, 4, 5, 6, 7]);
  assert.deepEqual(store.query().map((s) => s.seq), [2, 3, 4, 5, 6]);
  assert.deepEqual(store.query({ filter: (f) => f.bytes % 2 === 1, last: 2 }).map((s) => s.flow.bytes), [5, 7]);
  assert.deepEqual(store.query({ sinceMs: Date.UTC(2026, 11, 1, 0, 0, 6) }).map((s) => s.flow.bytes), [6, 7]);
});

test('a follower gets new matching flows in batches; one that falls behind is told what it missed, then cut off, and the store never waits', async () => {
  const store = new FlowStore(100);
  const follower = store.follow((f) => f.bytes !== 0, { queueLimit: 3, cutOffAfterMissed: 10 });
  store.add([flow(1), flow(0), flow(2)]);
  assert.deepEqual((await follower.next())!.flows.map((s) => s.flow.bytes), [1, 2]);
  store.add([3, 4, 5, 6, 7].map(flow)); // nobody reads: 2 dropped
  const behind = (await follower.next())!;
  assert.deepEqual([behind.missed, behind.flows.map((s) => s.flow.bytes)], [2, [5, 6, 7]]);
  store.add(Array.from({ length: 20 }, (_, i) => flow(10 + i)));
  assert.equal(follower.closed, 'cut-off');
  assert.equal(store.followers, 0);
  const rest = await follower.next();
  assert.ok(rest && rest.missed > 0, 'what it missed before the cut is still told');
  assert.equal(await follower.next(), undefined);
});

test('a follower waiting for flows wakes on the next add, and on close', async () => {
  const store = new FlowStore(10);
  const follower = store.follow(undefined);
  const waiting = follower.next();
  store.add([flow(1)]);
  assert.equal((await waiting)!.flows.length, 1);
  const closing = follower.next();
  follower.close();
  assert.equal(await closing, undefined);
});
