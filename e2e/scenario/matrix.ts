// Connectivity matrices: parsing the `expect` text of a probe step, comparing
// it with what was observed, and printing both side by side.

/** `.` = the connection must succeed, `X` = it must be refused or time out. */
export type Cell = '.' | 'X';
/** An observed cell; `?` = that pair was not probed (skipped). */
export type ObservedCell = Cell | '?';

/** A square matrix; `cells[i][j]` is the connection from `pods[i]` to `pods[j]`. */
export type Matrix<C extends string = Cell> = { pods: string[]; cells: C[][] };

export type CellDiff = { from: string; to: string; expected: Cell; observed: ObservedCell };

/** Builds a matrix over `pods` (in that order) from a function of each pair. */
export function matrixOf<C extends string>(pods: readonly string[], cell: (from: string, to: string) => C): Matrix<C> {
  return { pods: [...pods], cells: pods.map((from) => pods.map((to) => cell(from, to))) };
}

/**
 * Parses an expectation: a header row (a corner token, then every pod once) and
 * one row per pod (the source, then one cell per header column). Rows may come
 * in any order; the result follows the header's order. Throws an Error whose
 * message says what is wrong, without naming the file (the caller adds that).
 */
export function parseMatrix(text: string, pods: readonly string[]): Matrix {
  const known = new Set(pods);
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const [headerLine, ...rowLines] = lines;
  if (headerLine === undefined) throw new Error('the expectation matrix is empty');

  const header = headerLine.split(/\s+/).slice(1);
  checkPodList(header, known, 'header', 'column');

  const rows = new Map<string, Cell[]>();
  for (const line of rowLines) {
    const [from = '', ...cells] = line.split(/\s+/);
    if (!known.has(from)) throw new Error(`row "${from}" is not a pod of the cluster`);
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
  checkPodList([...rows.keys()], known, 'rows', 'row');
  return { pods: header, cells: header.map((from) => rows.get(from) ?? []) };
}

// Every pod of the cluster exactly once, and nothing else.
function checkPodList(list: readonly string[], known: ReadonlySet<string>, where: string, what: string): void {
  const seen = new Set<string>();
  for (const pod of list) {
    if (!known.has(pod)) throw new Error(`${where}: ${what} "${pod}" is not a pod of the cluster`);
    if (seen.has(pod)) throw new Error(`${where}: pod "${pod}" appears twice`);
    seen.add(pod);
  }
  const missing = [...known].filter((pod) => !seen.has(pod));
  if (missing.length > 0) throw new Error(`${where}: missing ${what} for ${missing.map((p) => `"${p}"`).join(', ')}`);
}

/** The cell from `from` to `to`; `?` when the matrix does not hold that pair. */
export function cellAt<C extends string>(m: Matrix<C>, from: string, to: string): C | '?' {
  return m.cells[m.pods.indexOf(from)]?.[m.pods.indexOf(to)] ?? '?';
}

/**
 * The judged cells (every pair but the diagonal) where observation differs from
 * expectation, in the expectation's order. A skipped (`?`) or missing observed
 * cell counts as a difference: a probe that did not run has not passed.
 */
export function compareMatrix(expected: Matrix, observed: Matrix<ObservedCell>): CellDiff[] {
  const diffs: CellDiff[] = [];
  for (const from of expected.pods) {
    for (const to of expected.pods) {
      if (from === to) continue;
      const want = cellAt(expected, from, to);
      const got = cellAt(observed, from, to);
      if (want !== '?' && want !== got) diffs.push({ from, to, expected: want, observed: got });
    }
  }
  return diffs;
}

const MEANING: Record<ObservedCell, string> = { '.': 'allowed', X: 'blocked', '?': 'not probed' };

/** A matrix as text, rows and columns in the given pod order. */
export function renderMatrix(m: Matrix<ObservedCell>, pods: readonly string[] = m.pods): string {
  return matrixLines(m, pods).map((line) => line.trimEnd()).join('\n');
}

function matrixLines(m: Matrix<ObservedCell>, pods: readonly string[]): string[] {
  const width = Math.max(1, ...pods.map((p) => p.length)) + 1;
  const row = (first: string, rest: readonly string[]) => [first, ...rest].map((c) => c.padEnd(width)).join('');
  return [row('-', pods), ...pods.map((from) => row(from, pods.map((to) => cellAt(m, from, to))))];
}

/**
 * Both matrices next to each other, in the expectation's pod order, followed by
 * one line per differing cell.
 */
export function renderSideBySide(expected: Matrix, observed: Matrix<ObservedCell>, diffs: readonly CellDiff[]): string {
  const pods = expected.pods;
  const left = matrixLines(expected, pods);
  const right = matrixLines(observed, pods);
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
