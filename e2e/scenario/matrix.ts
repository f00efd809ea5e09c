// Connectivity matrices: parsing the `expect` text of a probe step, comparing
// it with what was observed, and printing both side by side.

/** `.` = the connection must succeed, `X` = it must be refused or time out. */
export type Cell = '.' | 'X';
/** An observed cell; `?` = that pair was not probed (skipped). */
export type ObservedCell = Cell | '?';

/**
 * `cells[i][j]` is the connection from `rows[i]` to `cols[j]`. Rows and columns
 * are the same pods by default (FORMAT.md version 1); a probe's `from` and `to`
 * (version 2) make them differ, and may name external hosts (`world/NAME`).
 */
export type Matrix<C extends string = Cell> = { rows: string[]; cols: string[]; cells: C[][] };

export type CellDiff = { from: string; to: string; expected: Cell; observed: ObservedCell };

/** Builds a square matrix over `pods` (in that order) from a function of each pair. */
export function matrixOf<C extends string>(pods: readonly string[], cell: (from: string, to: string) => C): Matrix<C> {
  return gridOf(pods, pods, cell);
}

/** Builds a matrix of `rows` (sources) by `cols` (destinations), in those orders, from a function of each pair. */
export function gridOf<C extends string>(rows: readonly string[], cols: readonly string[], cell: (from: string, to: string) => C): Matrix<C> {
  return { rows: [...rows], cols: [...cols], cells: rows.map((from) => cols.map((to) => cell(from, to))) };
}

/**
 * Parses an expectation: a header row (a corner token, then every column once)
 * and one row per source (the source, then one cell per header column). Rows
 * may come in any order; the result's columns follow the header, and so do its
 * rows when they are the same names (a square matrix), else the rows keep the
 * text's order. Columns default to the rows (every pod). Throws
 * an Error whose message says what is wrong, without naming the file (the
 * caller adds that).
 */
export function parseMatrix(text: string, rowNames: readonly string[], colNames: readonly string[] = rowNames): Matrix {
  const knownRows = new Set(rowNames);
  const knownCols = new Set(colNames);
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const [headerLine, ...rowLines] = lines;
  if (headerLine === undefined) throw new Error('the expectation matrix is empty');

  const header = headerLine.split(/\s+/).slice(1);
  checkNameList(header, knownCols, 'header', 'column');

  const rows = new Map<string, Cell[]>();
  for (const line of rowLines) {
    const [from = '', ...cells] = line.split(/\s+/);
    if (!knownRows.has(from)) throw new Error(`row "${from}" is not ${what(knownRows)}`);
    if (rows.has(from)) throw new Error(`row "${from}" appears twice`);
    if (cells.length !== header.length) {
      throw new Error(`row "${from}" has ${cells.length} cells, expected ${header.length}`);
    }
    cells.forEach((cell, j) => {
      if (cell !== '.' && cell !== 'X') {
        throw new Error(`row "${from}", column "${header[j]}": cell "${cell}" must be . or X`);
      }
    });
    rows.set(from, cells as Cell[]);
  }
  checkNameList([...rows.keys()], knownRows, 'rows', 'row');
  const square = rowNames.length === colNames.length && rowNames.every((n) => knownCols.has(n));
  const order = square ? header : [...rows.keys()];
  return { rows: order, cols: header, cells: order.map((from) => rows.get(from) ?? []) };
}

// What the names of a row or column must be, for messages: pods only, or also external hosts.
function what(known: ReadonlySet<string>): string {
  return [...known].some((n) => n.startsWith('world/')) ? 'a pod of the cluster or an external host of the probe' : 'a pod of the cluster';
}

// Every expected name exactly once, and nothing else.
function checkNameList(list: readonly string[], known: ReadonlySet<string>, where: string, kind: string): void {
  const seen = new Set<string>();
  for (const name of list) {
    if (!known.has(name)) throw new Error(`${where}: ${kind} "${name}" is not ${what(known)}`);
    if (seen.has(name)) throw new Error(`${where}: "${name}" appears twice`);
    seen.add(name);
  }
  const missing = [...known].filter((name) => !seen.has(name));
  if (missing.length > 0) throw new Error(`${where}: missing ${kind} for ${missing.map((p) => `"${p}"`).join(', ')}`);
}

/** The cell from `from` to `to`; `?` when the matrix does not hold that pair. */
export function cellAt<C extends string>(m: Matrix<C>, from: string, to: string): C | '?' {
  const i = m.rows.indexOf(from);
  const j = m.cols.indexOf(to);
  return i < 0 || j < 0 ? '?' : (m.cells[i]?.[j] ?? '?');
}

/**
 * The judged cells (every pair but the diagonal) where observation differs from
 * expectation, in the expectation's order. A skipped (`?`) or missing observed
 * cell counts as a difference: a probe that did not run has not passed.
 */
export function compareMatrix(expected: Matrix, observed: Matrix<ObservedCell>): CellDiff[] {
  const diffs: CellDiff[] = [];
  for (const from of expected.rows) {
    for (const to of expected.cols) {
      if (from === to) continue;
      const want = cellAt(expected, from, to);
      const got = cellAt(observed, from, to);
      if (want !== '?' && want !== got) diffs.push({ from, to, expected: want, observed: got });
    }
  }
  return diffs;
}

const MEANING: Record<ObservedCell, string> = { '.': 'allowed', X: 'blocked', '?': 'not probed' };

/** A matrix as text, rows and columns in the given order (default: the matrix's own). */
export function renderMatrix(m: Matrix<ObservedCell>, rows: readonly string[] = m.rows, cols: readonly string[] = m.cols): string {
  return matrixLines(m, rows, cols).map((line) => line.trimEnd()).join('\n');
}

function matrixLines(m: Matrix<ObservedCell>, rows: readonly string[], cols: readonly string[]): string[] {
  const width = Math.max(1, ...[...rows, ...cols].map((p) => p.length)) + 1;
  const line = (first: string, rest: readonly string[]) => [first, ...rest].map((c) => c.padEnd(width)).join('');
  return [line('-', cols), ...rows.map((from) => line(from, cols.map((to) => cellAt(m, from, to))))];
}

/**
 * Both matrices next to each other, in the expectation's order, followed by
 * one line per differing cell.
 */
export function renderSideBySide(expected: Matrix, observed: Matrix<ObservedCell>, diffs: readonly CellDiff[]): string {
  const left = matrixLines(expected, expected.rows, expected.cols);
  const right = matrixLines(observed, expected.rows, expected.cols);
  const leftWidth = Math.max(...left.map((l) => l.length)) + 2;
  const lines = [
    'expected'.padEnd(leftWidth) + 'observed',
    ...left.map((line, i) => line.padEnd(leftWidth) + (right[i] ?? '')),
  ].map((line) => line.trimEnd());
  const details = diffs.map(
    (d) =>
      `${d.from} -> ${d.to}: expected ${d.expected} (${MEANING[d.expected]}), observed ${d.observed} (${MEANING[d.observed]})`,
  );
  return [...lines, ...(details.length > 0 ? ['', ...details] : [])].join('\n');
}
