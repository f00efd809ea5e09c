import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cellAt, compareMatrix, gridOf, matrixOf, parseMatrix, renderMatrix, renderSideBySide, type Matrix, type ObservedCell } from './matrix.ts';

const PODS = ['x/a', 'x/b', 'y/a'];

// parseMatrix on good and bad texts over three pods.
const parses: { what: string; text: string; expected: Matrix | string }[] = [
  // blank lines, extra spaces and any corner token are fine
  {
    what: 'loose spacing',
    text: '\n  #  x/a  x/b y/a\nx/a . X .\n\n x/b .\t. X  \ny/a . . .\n',
    expected: { rows: PODS, cols: PODS, cells: [['.', 'X', '.'], ['.', '.', 'X'], ['.', '.', '.']] },
  },
  // the header order wins over the rows' order
  {
    what: 'reordered',
    text: '- y/a x/a x/b\nx/b X . .\ny/a . X .\nx/a . . X',
    expected: { rows: ['y/a', 'x/a', 'x/b'], cols: ['y/a', 'x/a', 'x/b'], cells: [['.', 'X', '.'], ['.', '.', 'X'], ['X', '.', '.']] },
  },
  // nothing at all
  { what: 'empty', text: '\n \n', expected: 'the expectation matrix is empty' },
  // a header pod given twice
  { what: 'header duplicate', text: '- x/a x/a y/a', expected: 'header: "x/a" appears twice' },
  // a header without one pod
  { what: 'header missing', text: '- x/a y/a', expected: 'header: missing column for "x/b"' },
  // a row for a pod outside the cluster
  { what: 'unknown row', text: '- x/a x/b y/a\nz/a . . .', expected: 'row "z/a" is not a pod of the cluster' },
  // the same row twice
  { what: 'duplicate row', text: '- x/a x/b y/a\nx/a . . .\nx/a . . .', expected: 'row "x/a" appears twice' },
  // a row too long
  { what: 'long row', text: '- x/a x/b y/a\nx/a . . . .', expected: 'row "x/a" has 4 cells, expected 3' },
  // a lowercase x is not a cell
  { what: 'lowercase x', text: '- x/a x/b y/a\nx/a . x .', expected: 'row "x/a", column "x/b": cell "x" must be . or X' },
  // rows missing
  { what: 'missing rows', text: '- x/a x/b y/a\nx/a . . .', expected: 'rows: missing row for "x/b", "y/a"' },
];

for (const row of parses) {
  test(`parseMatrix: ${row.what}`, () => {
    if (typeof row.expected === 'string') assert.throws(() => parseMatrix(row.text, PODS), { message: row.expected });
    else assert.deepEqual(parseMatrix(row.text, PODS), row.expected);
  });
}

const expected = parseMatrix('- x/a x/b y/a\nx/a . X .\nx/b . . .\ny/a . . .', PODS);
const observe = (cells: Record<string, ObservedCell>) => matrixOf(PODS, (from, to) => cells[`${from} ${to}`] ?? '.');

// compareMatrix(expected, observed) for each kind of difference.
const compares: { what: string; observed: Matrix<ObservedCell>; diffs: string[] }[] = [
  // the same matrix
  { what: 'equal', observed: observe({ 'x/a x/b': 'X' }), diffs: [] },
  // the diagonal is never judged
  { what: 'diagonal ignored', observed: observe({ 'x/a x/b': 'X', 'x/a x/a': 'X', 'y/a y/a': '?' }), diffs: [] },
  // allowed but blocked, and blocked but allowed
  { what: 'both ways', observed: observe({ 'y/a x/a': 'X' }), diffs: ['x/a x/b X .', 'y/a x/a . X'] },
  // a skipped cell is a difference
  { what: 'skipped', observed: observe({ 'x/a x/b': 'X', 'x/b y/a': '?' }), diffs: ['x/b y/a . ?'] },
  // an observed matrix in another order is read by pod name
  {
    what: 'other order',
    observed: matrixOf([...PODS].reverse(), (from, to) => (from === 'x/a' && to === 'x/b' ? 'X' : '.')),
    diffs: [],
  },
  // a pod missing from the observation counts as not probed
  { what: 'missing pod', observed: matrixOf(['x/a', 'x/b'], (f, t) => (f === 'x/a' && t === 'x/b' ? 'X' : '.')), diffs: ['x/a y/a . ?', 'x/b y/a . ?', 'y/a x/a . ?', 'y/a x/b . ?'] },
];

for (const row of compares) {
  test(`compareMatrix: ${row.what}`, () => {
    const diffs = compareMatrix(expected, row.observed).map((d) => `${d.from} ${d.to} ${d.expected} ${d.observed}`);
    assert.deepEqual(diffs, row.diffs);
  });
}

test('renderSideBySide: aligned matrices in the header order, then the differing cells', () => {
  const observed = observe({ 'y/a x/a': 'X', 'x/b y/a': '?' });
  const text = renderSideBySide(expected, observed, compareMatrix(expected, observed));
  assert.equal(
    text,
    [
      'expected          observed',
      '-   x/a x/b y/a   -   x/a x/b y/a',
      'x/a .   X   .     x/a .   .   .',
      'x/b .   .   .     x/b .   .   ?',
      'y/a .   .   .     y/a X   .   .',
      '',
      'x/a -> x/b: expected X (blocked), observed . (allowed)',
      'x/b -> y/a: expected . (allowed), observed ? (not probed)',
      'y/a -> x/a: expected . (allowed), observed X (blocked)',
    ].join('\n'),
  );
});

test('renderSideBySide: no difference list when the matrices agree', () => {
  const text = renderSideBySide(expected, expected, []);
  assert.equal(text.split('\n').length, 5);
});

// A probe's own sources and destinations (FORMAT.md version 2, `from` and `to`).
const FROM = ['x/a', 'world/web'];
const TO = ['world/db', 'x/a', 'x/b'];
const grids: { what: string; text: string; expected: Matrix | string }[] = [
  // rows keep the text's order when they are not the columns
  {
    what: 'rows are not the columns',
    text: '- x/b world/db x/a\nworld/web . X .\nx/a . . .',
    expected: { rows: ['world/web', 'x/a'], cols: ['x/b', 'world/db', 'x/a'], cells: [['.', 'X', '.'], ['.', '.', '.']] },
  },
  // a column that is not among the probe's destinations, naming what may be there
  { what: 'unknown column', text: '- x/b world/db x/a world/web', expected: 'header: column "world/web" is not a pod of the cluster or an external host of the probe' },
  // a row that is not among the probe's sources
  { what: 'unknown row', text: '- x/b world/db x/a\nx/b . . .', expected: 'row "x/b" is not a pod of the cluster or an external host of the probe' },
  // a source left out
  { what: 'missing row', text: '- x/b world/db x/a\nx/a . . .', expected: 'rows: missing row for "world/web"' },
];

for (const row of grids) {
  test(`parseMatrix with from and to: ${row.what}`, () => {
    if (typeof row.expected === 'string') assert.throws(() => parseMatrix(row.text, FROM, TO), { message: row.expected });
    else assert.deepEqual(parseMatrix(row.text, FROM, TO), row.expected);
  });
}

test('compareMatrix: rows and columns of their own; a pod to itself is still not judged', () => {
  const want = parseMatrix('- world/db x/a x/b\nx/a X . .\nworld/web . . X', FROM, TO);
  const got = gridOf<ObservedCell>(FROM, TO, (from, to) => (from === 'x/a' && to === 'x/a' ? 'X' : from === 'world/web' && to === 'x/b' ? '.' : cellAt(want, from, to)));
  assert.deepEqual(compareMatrix(want, got).map((d) => `${d.from} ${d.to} ${d.expected} ${d.observed}`), ['world/web x/b X .']);
});

test('renderMatrix and renderSideBySide: rows and columns of their own', () => {
  const want = parseMatrix('- world/db x/a x/b\nx/a X . .\nworld/web . . X', FROM, TO);
  assert.equal(renderMatrix(want), ['-         world/db  x/a       x/b', 'x/a       X         .         .', 'world/web .         .         X'].join('\n'));
  const got = gridOf<ObservedCell>(FROM, TO, () => '.');
  const text = renderSideBySide(want, got, compareMatrix(want, got));
  assert.equal(
    text,
    [
      'expected                                  observed',
      '-         world/db  x/a       x/b         -         world/db  x/a       x/b',
      'x/a       X         .         .           x/a       .         .         .',
      'world/web .         .         X           world/web .         .         .',
      '',
      'x/a -> world/db: expected X (blocked), observed . (allowed)',
      'world/web -> x/b: expected X (blocked), observed . (allowed)',
    ].join('\n'),
  );
});
