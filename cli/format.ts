// Pure: how flows look on the terminal. The table aligns its columns; the
// compact form is one short line per flow; json is the documented Flow
// record (docs/flows.md), one per line, as the API sent it.
import type { Flow, FlowPeer } from '../lib/flow.ts';
import { policyText } from '../lib/flow.ts';

export type FlowOutput = 'table' | 'json' | 'compact';
export const FLOW_OUTPUTS: readonly FlowOutput[] = ['table', 'json', 'compact'];

const GAP = '  ';

/** Rows (the first one the header) with every column as wide as its widest cell; no trailing blanks. */
export function alignTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => padRow(row, widths)).join('\n') + (rows.length > 0 ? '\n' : '');
}

function padRow(row: readonly string[], widths: readonly number[]): string {
  return row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join(GAP).trimEnd();
}

/**
 * A table printed row by row (--follow), before the widest cell is known:
 * columns start at `minWidths` and widen for good when a cell needs it.
 */
export class StreamingTable {
  readonly #header: readonly string[];
  readonly #widths: number[];

  constructor(header: readonly string[], minWidths: readonly number[]) {
    this.#header = header;
    this.#widths = header.map((h, i) => Math.max(h.length, minWidths[i] ?? 0));
  }

  headerLine(): string {
    return this.row(this.#header);
  }

  row(cells: readonly string[]): string {
    cells.forEach((cell, i) => (this.#widths[i] = Math.max(this.#widths[i] ?? 0, cell.length)));
    return `${padRow(cells, this.#widths)}\n`;
  }
}

export const FLOW_HEADER = ['TIME', 'NODE', 'VERDICT', 'DIR', 'SOURCE', 'DESTINATION', 'PROTO', 'REASON', 'POLICIES'] as const;
/** Typical widths, so that a followed table rarely has to widen. */
export const FLOW_MIN_WIDTHS = [12, 8, 9, 7, 24, 24, 5, 14];

/** Time of day in UTC with milliseconds: `03:38:40.123` (the json output has the full time). */
export function timeOfDay(time: string): string {
  const m = /T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(time);
  return m ? `${m[1]}${(m[2] ?? '.').padEnd(4, '0')}` : time;
}

/** A pod as ns/name, else the address; `:port` when there is one. */
export function peerText(p: FlowPeer): string {
  const who = p.pod ? `${p.pod.namespace}/${p.pod.name}` : p.ip;
  return p.port ? `${who}:${p.port}` : who;
}

/** The verdict, with what kind of event it was when that is not the connection's first packet. */
export function verdictText(f: Flow): string {
  switch (f.type) {
    case 'end':
      return `${f.verdict} (end)`;
    case 'update':
      return `${f.verdict} (update)`;
    case 'drop-summary':
      return `${f.verdict} x${f.packets}`;
    default:
      return f.verdict;
  }
}

export function policiesText(f: Flow): string {
  const names = f.policies.map(policyText).join(', ') || '-';
  return f.defaultDeny ? `${names} (default deny)` : names;
}

export function flowCells(f: Flow): string[] {
  return [timeOfDay(f.time), f.node, verdictText(f), f.direction, peerText(f.source), peerText(f.destination), f.protocol, f.reason, policiesText(f)];
}

export function flowTable(flows: readonly Flow[]): string {
  return alignTable([[...FLOW_HEADER], ...flows.map(flowCells)]);
}

/** `03:38:40.123 node-1 new forwarded ingress shop/web:40312 -> db/pg:80 TCP ALLOW_POLICY [NetworkPolicy db/allow-shop]` */
export function compactLine(f: Flow): string {
  const service = f.service ? ` via ${f.service.ip}:${f.service.port}` : '';
  const count = f.type === 'drop-summary' ? ` x${f.packets}` : '';
  const policies = `[${f.policies.map(policyText).join(', ')}]${f.defaultDeny ? ' default-deny' : ''}`;
  return `${timeOfDay(f.time)} ${f.node} ${f.type} ${f.verdict}${count} ${f.direction} ${peerText(f.source)} -> ${peerText(f.destination)}${service} ${f.protocol} ${f.reason} ${policies}\n`;
}

export function jsonLine(f: Flow): string {
  return `${JSON.stringify(f)}\n`;
}

/** Every flow of a finished query in the chosen form. */
export function formatFlows(flows: readonly Flow[], output: FlowOutput): string {
  if (output === 'table') return flows.length > 0 ? flowTable(flows) : '';
  return flows.map(output === 'json' ? jsonLine : compactLine).join('');
}

/** Formats flows one at a time (--follow). */
export function flowPrinter(output: FlowOutput): { header(): string; flow(f: Flow): string } {
  if (output !== 'table') return { header: () => '', flow: output === 'json' ? jsonLine : compactLine };
  const table = new StreamingTable(FLOW_HEADER, FLOW_MIN_WIDTHS);
  return { header: () => table.headerLine(), flow: (f) => table.row(flowCells(f)) };
}
