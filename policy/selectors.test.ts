// Label selector matching, row by row.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSelector, selectorMatches } from './selectors.ts';
import type { LabelSelector } from './types.ts';

const labels = { app: 'web', tier: 'front' };

// Each row: a selector, whether it matches {app: web, tier: front}.
const rows: { what: string; sel: LabelSelector | undefined; match: boolean }[] = [
  // empty and absent selectors match everything
  { what: 'absent', sel: undefined, match: true },
  { what: 'empty', sel: {}, match: true },
  { what: 'empty lists', sel: { matchLabels: {}, matchExpressions: [] }, match: true },
  // matchLabels: every pair
  { what: 'matchLabels hit', sel: { matchLabels: { app: 'web' } }, match: true },
  { what: 'matchLabels two pairs', sel: { matchLabels: { app: 'web', tier: 'front' } }, match: true },
  { what: 'matchLabels wrong value', sel: { matchLabels: { app: 'db' } }, match: false },
  { what: 'matchLabels missing key', sel: { matchLabels: { role: 'x' } }, match: false },
  { what: 'matchLabels empty value does not match a missing key', sel: { matchLabels: { role: '' } }, match: false },
  // In / NotIn
  { what: 'In hit', sel: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }, match: true },
  { what: 'In miss', sel: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, match: false },
  { what: 'In on a missing key', sel: { matchExpressions: [{ key: 'role', operator: 'In', values: ['web'] }] }, match: false },
  { what: 'NotIn hit', sel: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, match: false },
  { what: 'NotIn miss', sel: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['db'] }] }, match: true },
  { what: 'NotIn on a missing key matches', sel: { matchExpressions: [{ key: 'role', operator: 'NotIn', values: ['db'] }] }, match: true },
  // Exists / DoesNotExist
  { what: 'Exists', sel: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, match: true },
  { what: 'Exists missing', sel: { matchExpressions: [{ key: 'role', operator: 'Exists' }] }, match: false },
  { what: 'DoesNotExist', sel: { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] }, match: true },
  { what: 'DoesNotExist present', sel: { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, match: false },
  // matchLabels AND matchExpressions
  { what: 'both hold', sel: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, match: true },
  { what: 'one fails', sel: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, match: false },
  // invalid selectors (refused by validation) match nothing
  { what: 'In without values', sel: { matchExpressions: [{ key: 'app', operator: 'In' }] }, match: false },
  { what: 'Exists with values', sel: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['web'] }] }, match: false },
  { what: 'unknown operator', sel: { matchExpressions: [{ key: 'app', operator: 'Gt' as 'In', values: ['1'] }] }, match: false },
  // keys are not looked up on the prototype
  { what: 'prototype keys', sel: { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, match: false },
];

for (const row of rows) {
  test(`selector: ${row.what}`, () => {
    assert.equal(selectorMatches(row.sel, labels), row.match);
  });
}

test('selectors that mean the same have the same key', () => {
  const a = compileSelector({ matchLabels: { b: '2', a: '1' } });
  const b = compileSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }, { key: 'b', operator: 'In', values: ['2'] }] });
  assert.equal(a.key, b.key);
  const c = compileSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['y', 'x', 'x'] }] });
  const d = compileSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 'y'] }] });
  assert.equal(c.key, d.key);
  assert.notEqual(compileSelector({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }).key, compileSelector({ matchLabels: { a: 'x' } }).key);
  assert.equal(compileSelector({}).key, compileSelector(undefined).key);
});
