import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namespaceLabels, podLabels, type Labels } from './labels.ts';

const META = 'kubernetes.io/metadata.name';

// namespaceLabels(ns, overrides) for each case of the replace rule.
const namespaces: { what: string; overrides?: Labels; expected: Labels }[] = [
  // the initial labels
  { what: 'defaults', expected: { [META]: 'y', ns: 'y' } },
  // a step's labels are added to the defaults
  { what: 'added label', overrides: { team: 'blue' }, expected: { [META]: 'y', ns: 'y', team: 'blue' } },
  // the ns default may be overridden
  { what: 'ns overridden', overrides: { ns: 'other' }, expected: { [META]: 'y', ns: 'other' } },
  // metadata.name is silently kept, as an API server does
  { what: 'metadata.name kept', overrides: { [META]: 'x', team: 'red' }, expected: { [META]: 'y', ns: 'y', team: 'red' } },
  // an empty step resets to the defaults
  { what: 'empty step', overrides: {}, expected: { [META]: 'y', ns: 'y' } },
];

for (const row of namespaces) {
  test(`namespaceLabels: ${row.what}`, () => assert.deepEqual(namespaceLabels('y', row.overrides), row.expected));
}

// podLabels(pod, overrides) for each case of the replace rule.
const pods: { what: string; overrides?: Labels; expected: Labels }[] = [
  // the initial label
  { what: 'defaults', expected: { pod: 'b' } },
  // added labels keep pod: P
  { what: 'added label', overrides: { role: 'db' }, expected: { pod: 'b', role: 'db' } },
  // pod may be overridden
  { what: 'pod overridden', overrides: { pod: 'z', role: 'db' }, expected: { pod: 'z', role: 'db' } },
];

for (const row of pods) {
  test(`podLabels: ${row.what}`, () => assert.deepEqual(podLabels('b', row.overrides), row.expected));
}

test('a later label step drops the labels of an earlier one', () => {
  // Example 05 on y/b: role=db, then {pod: b} alone.
  assert.deepEqual(podLabels('b', { pod: 'b', role: 'db' }), { pod: 'b', role: 'db' });
  assert.deepEqual(podLabels('b', { pod: 'b' }), { pod: 'b' });
});
