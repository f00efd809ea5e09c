// status: one line per node, the fill of every map, and an exit code a
// health check can use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXIT } from './errors.ts';
import { statusReport, type AgentStatus } from './status.ts';

const healthy = (node: string, o: Partial<NonNullable<AgentStatus['status']>> = {}): AgentStatus => ({
  node,
  reachable: true,
  status: {
    revision: 42,
    ready: true,
    message: 'policy realized',
    endpoints: 7,
    programs: 14,
    maps: { pal_policy: { entries: 300, capacity: 1000 }, pal_ipcache4: { entries: 12, capacity: 65536 }, pal_policy_cidr: { entries: 0, capacity: null } },
    flows: { stored: 1200, capacity: 300000, followers: 1, lost: { kernel: { drop: 3 }, decoder: 1, consumer: 0 } },
    ...o,
  },
});

test('every node on one aligned line, the fullest map named, flows stored and lost', () => {
  const r = statusReport({ items: [healthy('node-2'), healthy('node-1')] });
  const lines = r.text.split('\n');
  assert.match(lines[0]!, /^NODE +REACHABLE +READY +REVISION +ENDPOINTS +PROGRAMS +FULLEST MAP +FLOWS STORED +FLOWS LOST +MESSAGE$/);
  assert.match(lines[1]!, /^node-1 +yes +yes +42 +7 +14 +pal_policy 30% +1,200\/300,000 +4 +policy realized$/);
  assert.match(lines[2]!, /^node-2 /);
  assert.equal(lines[1]!.indexOf('pal_policy'), lines[0]!.indexOf('FULLEST MAP'));
  // the map table: entries / capacity per map; unbounded ones said so
  assert.ok(r.text.includes('\nNODE    MAP              ENTRIES  CAPACITY   FILL\n'), r.text);
  assert.match(r.text, /node-1 +pal_policy +300 +1,000 +30%/);
  assert.match(r.text, /node-1 +pal_policy_cidr +0 +unbounded +-/);
  assert.deepEqual(r.problems, []);
  assert.equal(r.exitCode, EXIT.OK);
});

test('an unreachable agent: its error shown, exit 4 with what to check', () => {
  const r = statusReport({ items: [healthy('node-1'), { node: 'node-2', reachable: false, error: 'connect ECONNREFUSED 172.30.0.12:4244' }] });
  assert.match(r.text, /node-2 +no +- +- +- +- +- +- +- +connect ECONNREFUSED 172\.30\.0\.12:4244/);
  assert.equal(r.exitCode, EXIT.UNAVAILABLE);
  assert.deepEqual(r.problems, ['agent unreachable on node-2: check the palisade agents with kubectl -n palisade-system get pods']);
});

test('an agent whose datapath is not ready: exit 1, its message shown', () => {
  const r = statusReport({ items: [healthy('node-1', { ready: false, message: 'sync failed: pal_policy is full' })] });
  assert.match(r.text, /node-1 +yes +no .* sync failed: pal_policy is full/);
  assert.equal(r.exitCode, EXIT.DENIED);
  assert.match(r.problems[0]!, /^not ready on node-1/);
});

test('no agent at all is Palisade unavailable', () => {
  assert.equal(statusReport({ items: [] }).exitCode, EXIT.UNAVAILABLE);
});
