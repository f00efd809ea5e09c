// Pure: `kubectl palisade status` from the aggregated API's AgentList: per
// node, whether its agent answers, whether its datapath holds the policy
// (ready, revision), what it enforces on (endpoints, programs), how full
// its maps are and what its flow store holds and lost.
import { alignTable } from './format.ts';
import { EXIT, AGENTS_HINT, type ExitCode } from './errors.ts';
import type { NodeLoss } from './merge.ts';

export interface AgentStatus {
  node: string;
  reachable: boolean;
  error?: string;
  status?: {
    revision?: number;
    ready?: boolean;
    message?: string;
    endpoints?: number;
    programs?: number;
    maps?: Record<string, { entries: number; capacity: number | null }>;
    flows?: { stored?: number; capacity?: number; followers?: number; lost?: NodeLoss };
  };
}

export interface AgentList {
  items: AgentStatus[];
}

const n = (x: number | undefined) => (x === undefined ? '-' : x.toLocaleString('en-US'));
const percent = (entries: number, capacity: number) => `${capacity > 0 ? Math.round((entries / capacity) * 100) : 0}%`;

export function lostTotal(l: NodeLoss | undefined): number | undefined {
  if (!l) return undefined;
  return Object.values(l.kernel ?? {}).reduce((s, x) => s + x, 0) + (l.decoder ?? 0) + (l.consumer ?? 0);
}

/** The fullest map with a known size: `pal_policy 12%`. */
function fullest(maps: Record<string, { entries: number; capacity: number | null }> | undefined): string {
  const sized = Object.entries(maps ?? {}).filter(([, m]) => m.capacity !== null && m.capacity > 0) as Array<[string, { entries: number; capacity: number }]>;
  if (sized.length === 0) return '-';
  const [name, m] = sized.reduce((a, b) => (b[1].entries / b[1].capacity > a[1].entries / a[1].capacity ? b : a));
  return `${name} ${percent(m.entries, m.capacity)}`;
}

export function statusReport(list: AgentList): { text: string; problems: string[]; exitCode: ExitCode } {
  const items = [...list.items].sort((a, b) => a.node.localeCompare(b.node));
  const rows = [['NODE', 'REACHABLE', 'READY', 'REVISION', 'ENDPOINTS', 'PROGRAMS', 'FULLEST MAP', 'FLOWS STORED', 'FLOWS LOST', 'MESSAGE']];
  const maps = [['NODE', 'MAP', 'ENTRIES', 'CAPACITY', 'FILL']];
  for (const a of items) {
    const s = a.status;
    if (!a.reachable || !s) {
      rows.push([a.node, 'no', '-', '-', '-', '-', '-', '-', '-', a.error ?? 'no answer']);
      continue;
    }
    const flows = s.flows;
    const stored = flows?.stored === undefined ? '-' : `${n(flows.stored)}/${n(flows.capacity)}`;
    rows.push([a.node, 'yes', s.ready ? 'yes' : 'no', n(s.revision), n(s.endpoints), n(s.programs), fullest(s.maps), stored, n(lostTotal(flows?.lost)), s.message ?? '']);
    for (const [name, m] of Object.entries(s.maps ?? {}).sort(([x], [y]) => x.localeCompare(y))) {
      maps.push([a.node, name, n(m.entries), m.capacity === null ? 'unbounded' : n(m.capacity), m.capacity ? percent(m.entries, m.capacity) : '-']);
    }
  }
  const problems: string[] = [];
  const unreachable = items.filter((a) => !a.reachable);
  const unready = items.filter((a) => a.reachable && a.status?.ready === false);
  if (items.length === 0) problems.push(`no agent known: ${AGENTS_HINT}`);
  if (unreachable.length > 0) problems.push(`agent unreachable on ${unreachable.map((a) => a.node).join(', ')}: ${AGENTS_HINT}`);
  if (unready.length > 0) problems.push(`not ready on ${unready.map((a) => a.node).join(', ')}: its datapath does not hold the current policy (see MESSAGE, and kubectl get palisadenodes)`);
  const exitCode = items.length === 0 || unreachable.length > 0 ? EXIT.UNAVAILABLE : unready.length > 0 ? EXIT.DENIED : EXIT.OK;
  const text = alignTable(rows) + (maps.length > 1 ? `\n${alignTable(maps)}` : '');
  return { text, problems, exitCode };
}
