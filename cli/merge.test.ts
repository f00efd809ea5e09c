// Flows of several nodes and requests in one time-ordered answer, and the
// account of what is missing from it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { denied, flow } from './fixtures.ts';
import { FollowTally, lossSummary, mergeLists, RecentFlows } from './merge.ts';

const t = (s: string) => `2026-12-01T03:00:${s}Z`;

test('flows of two answers merge in time order across nodes, a flow seen by both requests once', () => {
  const shared = flow({ time: t('02.000000000'), node: 'node-1' });
  const a = { items: [flow({ time: t('01.000000000'), node: 'node-1' }), shared, flow({ time: t('05.000000000'), node: 'node-2' })] };
  const b = { items: [shared, denied({ time: t('03.000000000'), node: 'node-2' }), denied({ time: t('04.000000009'), node: 'node-1' })] };
  const m = mergeLists([a, b]);
  assert.deepEqual(m.items.map((f) => `${f.time.slice(17, 29)} ${f.node}`), [
    '01.000000000 node-1',
    '02.000000000 node-1',
    '03.000000000 node-2',
    '04.000000009 node-1',
    '05.000000000 node-2',
  ]);
});

test('--last applies to the merged answer: the most recent N over all requests', () => {
  const a = { items: [flow({ time: t('01.0') }), flow({ time: t('04.0') })] };
  const b = { items: [flow({ time: t('02.0') }), flow({ time: t('03.0') })] };
  assert.deepEqual(mergeLists([a, b], 2).items.map((f) => f.time), [t('03.0'), t('04.0')]);
  assert.deepEqual(mergeLists([a, b], 0).items, []);
});

test('a node\'s loss counters reported by two answers are not added up', () => {
  const nodes = { 'node-1': { lost: { kernel: { drop: 10 }, decoder: 0, consumer: 2 } } };
  const later = { 'node-1': { lost: { kernel: { drop: 12, new: 1 }, decoder: 0, consumer: 2 } } };
  const m = mergeLists([{ items: [], nodes }, { items: [], nodes: later, unreachable: ['node-3: timed out'] }]);
  assert.deepEqual(m.lost.get('node-1'), { kernel: { drop: 12, new: 1 }, decoder: 0, consumer: 2 });
  assert.deepEqual(m.nodes, ['node-1', 'node-3']);
});

test('the loss summary says how many flows were lost, where and at which stage', () => {
  const m = mergeLists([{
    items: [],
    nodes: {
      'node-1': { lost: { kernel: { drop: 1000, new: 234 }, decoder: 5, consumer: 0 } },
      'node-2': { lost: { kernel: {}, decoder: 0, consumer: 0 } },
    },
    unreachable: ['node-3: connect ECONNREFUSED 172.30.0.13:4244'],
  }]);
  const tally = new FollowTally();
  tally.missedFlows('node-2', 40);
  tally.missedFlows('node-2', 17);
  assert.deepEqual(lossSummary({ lost: m.lost, missed: tally.missed, unreachable: m.unreachable }), [
    'lost: node node-1 lost 1,239 flows since its agent started: 1,234 in the kernel, ring full (drop 1,000, new 234); 5 undecodable',
    'lost: this follow missed 57 flows because it or the API fell behind (node node-2: 57)',
    'unreachable: node-3: connect ECONNREFUSED 172.30.0.13:4244 (its flows are missing)',
  ]);
});

test('nothing lost, nothing said', () => {
  const m = mergeLists([{ items: [flow()], nodes: { 'node-1': { lost: { kernel: {}, decoder: 0, consumer: 0 } } }, unreachable: [] }]);
  assert.deepEqual(lossSummary({ lost: m.lost, missed: new FollowTally().missed, unreachable: m.unreachable }), []);
});

test('a followed flow that two namespace streams both deliver is printed once', () => {
  const recent = new RecentFlows(2);
  const [a, b, c] = [flow({ time: t('01.0') }), flow({ time: t('02.0') }), flow({ time: t('03.0') })];
  assert.deepEqual([recent.first(a!), recent.first(a!), recent.first(b!), recent.first(c!), recent.first(b!)], [true, false, true, true, false]);
  assert.equal(recent.first(a!), true, 'forgotten beyond its capacity: memory stays bounded');
});
