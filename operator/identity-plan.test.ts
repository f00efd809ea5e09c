import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planIdentities, type IdentityWanted } from './identity-plan.ts';

const want = (key: string): IdentityWanted => ({ key, namespace: 'x', namespaceLabels: {}, podLabels: { k: key } });

test('new label sets get the lowest free numbers from 256, in key order', () => {
  const plan = planIdentities([want('b'), want('a'), want('c')], [{ id: 257, key: 'c' }], new Map(), 0, 1000);
  assert.deepEqual(plan.create.map((c) => [c.key, c.id]), [['a', 256], ['b', 258]]);
  assert.deepEqual(plan.delete, []);
});

test('a label set that is in use keeps its number', () => {
  const plan = planIdentities([want('a')], [{ id: 300, key: 'a' }], new Map(), 0, 1000);
  assert.deepEqual(plan.create, []);
});

test('an unused identity is deleted only after the grace period', () => {
  const first = planIdentities([], [{ id: 300, key: 'gone' }], new Map(), 1_000, 5_000);
  assert.deepEqual(first.delete, []);
  assert.equal(first.unusedSince.get('gone'), 1_000);
  const later = planIdentities([], [{ id: 300, key: 'gone' }], first.unusedSince, 6_000, 5_000);
  assert.deepEqual(later.delete, [300]);
});

test('an identity used again within the grace period is kept and forgotten as unused', () => {
  const first = planIdentities([], [{ id: 300, key: 'back' }], new Map(), 0, 5_000);
  const again = planIdentities([want('back')], [{ id: 300, key: 'back' }], first.unusedSince, 4_000, 5_000);
  assert.deepEqual(again.delete, []);
  assert.equal(again.unusedSince.size, 0);
});
