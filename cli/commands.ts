// The commands' I/O: read from the API server (api.ts), hand the answers to
// the pure modules, write what they return. Each command resolves to its
// exit code, or throws a CliError (errors.ts).
import type { Flow } from '../lib/flow.ts';
import type { Api } from './api.ts';
import { CliError, EXIT, FLOWS_GROUP, AGENTS_HINT, type ExitCode } from './errors.ts';
import { flowPrinter, formatFlows } from './format.ts';
import { FollowTally, lossSummary, mergeLists, RecentFlows, type FlowList } from './merge.ts';
import { flowsPath, FLOWS_API, planObserve, unknownNodes, type ObserveFlags, type ObservePlan } from './observe.ts';
import { statusReport, type AgentList } from './status.ts';

/** Where output goes and what time it is; injectable for tests. */
export interface Io {
  out(text: string): void;
  /** One line to stderr (no newline needed). */
  err(line: string): void;
  now(): number;
  /** Calls `stop` on Ctrl-C or SIGTERM; returns a function that stops listening. */
  onInterrupt(stop: () => void): () => void;
}

/** The cluster, loaded from the kubeconfig when first needed (after the flags were checked). */
export type Cluster = () => Api;

export async function observe(cluster: Cluster, flags: ObserveFlags, io: Io): Promise<ExitCode> {
  // Malformed flags fail before the kubeconfig is even read; the plan proper needs its namespace.
  planObserve(flags, { namespace: 'default', nowMs: io.now() });
  const api = cluster();
  const plan = planObserve(flags, { namespace: api.namespace, nowMs: io.now() });
  await checkPods(api, plan.pods);
  return plan.follow ? follow(api, plan, io) : list(api, plan, io);
}

/** A filter naming a pod that does not exist is an error, never an empty answer. */
async function checkPods(api: Api, pods: string[]): Promise<void> {
  await Promise.all(pods.map(async (key) => {
    const [namespace, name] = key.split('/') as [string, string];
    try {
      await api.get(`/api/v1/namespaces/${namespace}/pods/${name}`, { verb: 'get', resource: 'pods', group: '', namespace, name });
    } catch (error) {
      // Someone who may read flows but not pods still gets them; the flows API checks namespaces itself.
      if (error instanceof CliError && error.exitCode === EXIT.FORBIDDEN) return;
      throw error;
    }
  }));
}

async function list(api: Api, plan: ObservePlan, io: Io): Promise<ExitCode> {
  const lists = await Promise.all(plan.scopes.map((scope) =>
    api.get<FlowList>(flowsPath(plan, scope), { verb: 'list', resource: 'flows', group: FLOWS_GROUP, ...(scope ? { namespace: scope } : {}) }),
  ));
  const merged = mergeLists(lists, plan.last);
  const unknown = unknownNodes(plan, merged.nodes);
  if (unknown.length > 0) throw new CliError(EXIT.NOT_FOUND, `unknown node ${unknown.join(', ')}: Palisade's agents are on ${merged.nodes.join(', ') || 'no node'}`);
  io.out(formatFlows(merged.items, plan.output));
  if (merged.items.length === 0 && plan.output === 'table') io.err('no flows match');
  for (const line of lossSummary({ lost: merged.lost, unreachable: merged.unreachable })) io.err(line);
  return EXIT.OK;
}

async function follow(api: Api, plan: ObservePlan, io: Io): Promise<ExitCode> {
  const printer = flowPrinter(plan.output);
  const tally = new FollowTally();
  // One stream per namespace: a flow between two of them comes on both.
  const recent = plan.scopes.length > 1 ? new RecentFlows() : undefined;
  let printed = 0;
  const onLine = (line: string) => {
    let event: { flow?: Flow; missed?: number; error?: string; node?: string };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      io.err(`warning: not a JSON line in the flow stream: ${line.slice(0, 200)}`);
      return;
    }
    if (event.flow) {
      // The window holds even if the server sends older stored flows first.
      if (plan.sinceMs !== undefined && Date.parse(event.flow.time) < plan.sinceMs) return;
      if (recent && !recent.first(event.flow)) return;
      if (printed++ === 0) io.out(printer.header());
      io.out(printer.flow(event.flow));
    } else if (typeof event.missed === 'number') {
      tally.missedFlows(event.node, event.missed);
    } else if (event.error !== undefined) {
      io.err(`warning: ${tally.error(event.node, event.error)}`);
    }
  };
  const streams: Array<{ done: Promise<void>; close(): void }> = [];
  let interrupted = false;
  const stopListening = io.onInterrupt(() => {
    interrupted = true;
    for (const s of streams) s.close();
  });
  try {
    for (const scope of plan.scopes) {
      const asked = { verb: 'watch', resource: 'flows', group: FLOWS_GROUP, ...(scope ? { namespace: scope } : {}) } as const;
      streams.push(await api.stream(flowsPath(plan, scope), asked, onLine));
      if (interrupted) streams.at(-1)!.close();
    }
    const ends = await Promise.allSettled(streams.map((s) => s.done));
    for (const line of lossSummary({ missed: tally.missed, errors: tally.errors })) io.err(line);
    const failed = ends.find((e): e is PromiseRejectedResult => e.status === 'rejected');
    if (failed && !interrupted) throw failed.reason;
    if (!interrupted) throw new CliError(EXIT.UNAVAILABLE, `the flow stream ended: the API closed it; ${AGENTS_HINT}`);
    return EXIT.OK;
  } finally {
    for (const s of streams) s.close();
    stopListening();
  }
}

export async function status(cluster: Cluster, flags: { output?: string }, io: Io): Promise<ExitCode> {
  if (flags.output !== undefined && flags.output !== 'table' && flags.output !== 'json') throw new CliError(EXIT.USAGE, `-o ${JSON.stringify(flags.output)}: must be one of table, json`);
  const agents = await cluster().get<AgentList>(`${FLOWS_API}/agents`, { verb: 'list', resource: 'agents', group: FLOWS_GROUP });
  const report = statusReport(agents);
  io.out(flags.output === 'json' ? `${JSON.stringify(agents, null, 2)}\n` : report.text);
  for (const p of report.problems) io.err(p);
  return report.exitCode;
}
