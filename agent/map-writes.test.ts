import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { endpointInfo, lb4Backend, lb4BackendKey, lb4Key, lb4Service, policyKey, policyValue, u32Key } from '../datapath/abi.ts';
import { diffMaps, PLANNED_MAPS, type MapContents, type PlannedMap } from './datapath-plan.ts';
import { orderWrites, peakFill, type Capacity, type WriteStep } from './map-writes.ts';

const hex = (b: Buffer) => b.toString('hex');
const policyEntry = (endpointId: number, dport: number, ruleId = 1): [string, string] => [
  hex(policyKey.encode({ endpointId, identity: 400, direction: 0, protocol: 6, dport })),
  hex(policyValue.encode({ ruleId, flags: 0 })),
];
const endpointEntry = (ifindex: number, endpointId: number, flags = 1): [string, string] => [
  hex(u32Key.encode(ifindex)),
  hex(endpointInfo.encode({ endpointId, identity: 300, flags, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4: '10.0.1.5' })),
];
const contents = (parts: Partial<Record<PlannedMap, Array<[string, string]>>>): MapContents =>
  new Map(PLANNED_MAPS.map((m) => [m, new Map(parts[m] ?? [])]));
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/**
 * Applies the steps one by one and checks, after each: every map within its
 * capacity, and every open endpoint (endpoint id not 0) sees only entries of
 * its old or its new policy. Returns the final contents.
 */
function simulate(applied: MapContents, desired: MapContents, steps: WriteStep[], capacity: Capacity): MapContents {
  const state: MapContents = new Map([...applied].map(([m, c]) => [m, new Map(c)]));
  const allowed = (map: PlannedMap, key: string, value: string) => applied.get(map)?.get(key) === value || desired.get(map)?.get(key) === value;
  for (const [i, step] of steps.entries()) {
    const map = state.get(step.map)!;
    for (const { key, value } of step.entries) step.op === 'update' ? map.set(key, value) : map.delete(key);
    for (const m of PLANNED_MAPS) assert.ok(state.get(m)!.size <= (capacity[m] ?? Infinity), `step ${i}: ${m} holds ${state.get(m)!.size} > ${capacity[m]}`);
    for (const value of state.get('pal_endpoints')!.values()) {
      const id = endpointInfo.decode(Buffer.from(value, 'hex')).endpointId;
      if (id === 0) continue;
      for (const [key, v] of state.get('pal_policy')!) {
        if (Buffer.from(key, 'hex').readUInt32LE(0) === id) assert.ok(allowed('pal_policy', key, v), `step ${i}: open endpoint ${id} sees an entry of neither policy`);
      }
    }
  }
  return state;
}

test('with room for both, new entries are written before stale ones are deleted, endpoint flags last', () => {
  const applied = contents({ pal_policy: range(1, 3).map((p) => policyEntry(7, p)), pal_endpoints: [endpointEntry(10, 7)] });
  const desired = contents({ pal_policy: range(2, 3).map((p) => policyEntry(7, p)), pal_endpoints: [endpointEntry(10, 7, 3)] });
  const steps = orderWrites(diffMaps(desired, applied), applied, { pal_policy: 100 });
  assert.deepEqual(steps.map((s) => `${s.op} ${s.map} ${s.entries.length}`), ['update pal_policy 1', 'update pal_endpoints 1', 'delete pal_policy 1']);
  assert.deepEqual(simulate(applied, desired, steps, { pal_policy: 100 }), desired);
});

test('replacing most of a full map swaps the endpoint alone, closed, and never needs more than the map holds', () => {
  // The case, scaled down 1000 times: 777 entries replaced by 777 others in a map of 1048.
  const capacity = { pal_policy: 1048 };
  const applied = contents({ pal_policy: range(1, 777).map((p) => policyEntry(7, p)), pal_endpoints: [endpointEntry(10, 7), endpointEntry(11, 8)] });
  const desired = contents({ pal_policy: range(1001, 777).map((p) => policyEntry(7, p)), pal_endpoints: [endpointEntry(10, 7), endpointEntry(11, 8)] });
  const steps = orderWrites(diffMaps(desired, applied), applied, capacity);
  assert.equal(peakFill(applied, steps, 'pal_policy'), 777);
  assert.deepEqual(simulate(applied, desired, steps, capacity), desired);
  const order = steps.map((s) => `${s.op} ${s.map}`);
  assert.deepEqual(order, ['update pal_endpoints', 'delete pal_policy', 'update pal_policy', 'update pal_endpoints']);
  assert.equal(endpointInfo.decode(Buffer.from(steps[0]!.entries[0]!.value, 'hex')).endpointId, 0, 'closed first');
  assert.equal(steps[0]!.entries.length, 1, 'only the changing endpoint is closed');
});

test('shrinking endpoints are swapped before growing ones, so the fill never passes the larger total', () => {
  const capacity = { pal_policy: 10 };
  const applied = contents({ pal_policy: [...range(1, 8).map((p) => policyEntry(7, p)), ...range(1, 2).map((p) => policyEntry(8, p))], pal_endpoints: [endpointEntry(10, 7), endpointEntry(11, 8)] });
  const desired = contents({ pal_policy: [...range(1, 2).map((p) => policyEntry(7, p + 50)), ...range(1, 8).map((p) => policyEntry(8, p + 50))], pal_endpoints: [endpointEntry(10, 7), endpointEntry(11, 8)] });
  const steps = orderWrites(diffMaps(desired, applied), applied, capacity);
  assert.deepEqual(simulate(applied, desired, steps, capacity), desired);
});

test('property: any change between two states that fit is written without overflow or a mixed open endpoint', () => {
  const state = fc.record({
    entries: fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 3 })), { maxLength: 30 }),
    endpoints: fc.array(fc.tuple(fc.integer({ min: 10, max: 14 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 })), { maxLength: 5 }),
  });
  const build = (s: { entries: Array<[number, number, number]>; endpoints: Array<[number, number, number]> }) =>
    contents({ pal_policy: s.entries.map(([id, port, rule]) => policyEntry(id, port, rule)), pal_endpoints: s.endpoints.map(([i, id, f]) => endpointEntry(i, id, f)) });
  fc.assert(
    fc.property(state, state, fc.integer({ min: 0, max: 3 }), (a, b, slack) => {
      const applied = build(a);
      const desired = build(b);
      const capacity: Capacity = Object.fromEntries(
        PLANNED_MAPS.map((m) => [m, Math.max(applied.get(m)!.size, desired.get(m)!.size) + slack]),
      );
      assert.deepEqual(simulate(applied, desired, orderWrites(diffMaps(desired, applied), applied, capacity), capacity), desired);
    }),
    { numRuns: 500 },
  );
});

test('Service maps: a frontend\'s new slots are written before its count rises, and stale slots deleted after it falls', () => {
  const frontend = { addr: '10.96.0.1', port: 80, protocol: 6 };
  const slot = (i: number, ip: string): [string, string] => [hex(lb4BackendKey.encode({ ...frontend, slot: i })), hex(lb4Backend.encode({ addr: ip, port: 8080 }))];
  const count = (n: number): [string, string] => [hex(lb4Key.encode(frontend)), hex(lb4Service.encode({ count: n, flags: 0 }))];
  for (const [from, to] of [[1, 3], [3, 1]] as const) {
    const applied = contents({ pal_lb4: [count(from)], pal_lb4_backends: range(0, from).map((i) => slot(i, `10.200.1.${i + 1}`)) });
    const desired = contents({ pal_lb4: [count(to)], pal_lb4_backends: range(0, to).map((i) => slot(i, `10.200.2.${i + 1}`)) });
    for (const capacity of [{}, { pal_lb4_backends: 3 }] as Capacity[]) {
      const steps = orderWrites(diffMaps(desired, applied), applied, capacity);
      // After every step, each slot below the frontend's count exists.
      const state: MapContents = new Map([...applied].map(([m, c]) => [m, new Map(c)]));
      for (const step of steps) {
        const map = state.get(step.map)!;
        for (const { key, value } of step.entries) step.op === 'update' ? map.set(key, value) : map.delete(key);
        const n = lb4Service.decode(Buffer.from(state.get('pal_lb4')!.get(count(0)[0])!, 'hex')).count;
        for (const i of range(0, n)) assert.ok(state.get('pal_lb4_backends')!.has(slot(i, '0.0.0.0')[0]), `${from} -> ${to}, capacity ${JSON.stringify(capacity)}: slot ${i} missing under count ${n}`);
        assert.ok(state.get('pal_lb4_backends')!.size <= (capacity.pal_lb4_backends ?? Infinity));
      }
      assert.deepEqual(state.get('pal_lb4'), desired.get('pal_lb4'));
      assert.deepEqual(state.get('pal_lb4_backends'), desired.get('pal_lb4_backends'));
    }
  }
});
