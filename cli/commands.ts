// The commands' I/O: read from the API server (api.ts), hand the answers to
// the pure modules, write what they return. Each command resolves to its
// exit code, or throws a CliError (errors.ts).
import type { Flow } from '../lib/flow.ts';
import type { NamespaceInput, NetworkPolicyInput, PodInput } from '../policy/types.ts';
import type { Api } from './api.ts';
import { listIdentities, listNamespaces, listPalisadePolicies, listPods, listPolicies, podsWithIp, readNamespace, readPod } from './cluster.ts';
import { endpointNotes, endpointRows, endpointsTable } from './endpoints.ts';
import { AGENTS_HINT, CliError, describe, EXIT, FLOWS_GROUP, type ExitCode } from './errors.ts';
import { flowPrinter, formatFlows } from './format.ts';
import { FollowTally, lossSummary, mergeLists, RecentFlows, type FlowList } from './merge.ts';
import { flowsPath, FLOWS_API, planObserve, unknownNodes, type ObserveFlags, type ObservePlan } from './observe.ts';
import { statusReport, type AgentList } from './status.ts';
import { kernelDisagreements, kernelQuestions, parseSide, renderTrace, trace, type KernelAnswer, type Side, type TraceResult } from './trace.ts';

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

export interface TraceFlags {
  from: string;
  to: string;
  port: string;
  protocol?: string;
  output?: string;
  kernelCheck?: boolean;
}

/** At most this many questions to the kernel maps (one per piece of a CIDR). */
const KERNEL_QUESTIONS = 16;

export async function policyTrace(cluster: Cluster, flags: TraceFlags, io: Io): Promise<ExitCode> {
  const protocol = (flags.protocol ?? 'TCP').toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') throw new CliError(EXIT.USAGE, `--protocol ${JSON.stringify(flags.protocol)}: policy trace judges TCP, UDP or SCTP`);
  const port = Number(flags.port);
  if (!/^\d+$/.test(flags.port) || port < 1 || port > 65535) throw new CliError(EXIT.USAGE, `--port ${JSON.stringify(flags.port)}: must be a whole number from 1 to 65535`);
  if (flags.output !== undefined && flags.output !== 'text' && flags.output !== 'json') throw new CliError(EXIT.USAGE, `-o ${JSON.stringify(flags.output)}: must be one of text, json`);
  parseSide('--from', flags.from, 'default');
  parseSide('--to', flags.to, 'default');
  const api = cluster();
  const from = parseSide('--from', flags.from, api.namespace);
  const to = parseSide('--to', flags.to, api.namespace);

  const notes: string[] = [];
  const sidePods = async (side: Side): Promise<PodInput[]> => {
    if (side.kind === 'pod') return [await readPod(api, side.namespace, side.name)];
    if (side.first !== side.last) return [];
    const owners = await podsWithIp(api, side.text);
    if (!owners) notes.push(`RBAC forbids listing pods across the cluster: ${side.text} was taken to be outside the cluster`);
    return owners ?? [];
  };
  const [pods, identities] = await Promise.all([Promise.all([sidePods(from), sidePods(to)]).then((p) => p.flat()), listIdentities(api)]);
  const namespaceNames = [...new Set(pods.map((p) => p.namespace))];
  const [namespaces, policies, palisade] = await Promise.all([
    Promise.all(namespaceNames.map(async (name) => {
      const ns = await readNamespace(api, name);
      if (!ns) notes.push(`namespace ${name} could not be read (RBAC): judged with its name label only, namespaceSelectors on other labels may differ`);
      return ns ?? { name, labels: { 'kubernetes.io/metadata.name': name } };
    })),
    Promise.all(namespaceNames.map((ns) => listPolicies(api, ns))).then((l) => l.flat()),
    listPalisadePolicies(api, namespaceNames),
  ]);
  notes.push(...palisade.notes);
  const fqdnRules = palisade.policies.some((p) => [...p.spec.egress, ...p.spec.egressDeny].some((r) => (r.toFQDNs ?? []).length > 0));
  if (fqdnRules && (from.kind === 'address' || to.kind === 'address')) {
    notes.push('addresses learned from DNS answers live on the nodes: an address outside the cluster is judged here without them (toFQDNs rules match none)');
  }
  const result = trace({ from, to, protocol, port }, { pods, namespaces, policies, palisadePolicies: palisade.policies, identities });
  result.notes.push(...notes);

  const warnings = flags.kernelCheck === false ? [] : await kernelCheck(api, result);
  io.out(flags.output === 'json' ? `${JSON.stringify({ ...result, kernelWarnings: warnings }, null, 2)}\n` : renderTrace(result));
  for (const w of warnings) io.err(`warning: ${w}`);
  return result.allowed ? EXIT.OK : EXIT.DENIED;
}

/** Asks the agents (through the verdicts API) what their maps say; a failure to ask is a warning, not an error. */
async function kernelCheck(api: Api, result: TraceResult): Promise<string[]> {
  const questions = kernelQuestions(result).slice(0, KERNEL_QUESTIONS);
  try {
    const answers = await Promise.all(questions.map((q) => {
      const query = new URLSearchParams({ pod: q.pod, direction: q.direction, peer: q.peer, protocol: q.protocol, port: String(q.port) });
      return api.get<KernelAnswer>(`${FLOWS_API}/namespaces/${q.namespace}/verdicts?${query}`, { verb: 'get', resource: 'verdicts', group: FLOWS_GROUP, namespace: q.namespace });
    }));
    return kernelDisagreements(questions, answers);
  } catch (error) {
    const { message } = describe(error);
    return [`could not compare with the kernel maps of the nodes: ${message.split('\n')[0]} (--no-kernel-check skips this)`];
  }
}

export async function endpoints(cluster: Cluster, flags: { namespace?: string[]; allNamespaces?: boolean; output?: string }, io: Io): Promise<ExitCode> {
  if (flags.output !== undefined && flags.output !== 'table' && flags.output !== 'json') throw new CliError(EXIT.USAGE, `-o ${JSON.stringify(flags.output)}: must be one of table, json`);
  for (const ns of flags.namespace ?? []) if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) throw new CliError(EXIT.USAGE, `-n ${JSON.stringify(ns)}: not a namespace name`);
  const api = cluster();
  const scopes = flags.allNamespaces ? undefined : flags.namespace && flags.namespace.length > 0 ? [...new Set(flags.namespace)] : [api.namespace];
  const assumed: string[] = [];
  const assume = (name: string) => (assumed.push(name), { name, labels: { 'kubernetes.io/metadata.name': name } });
  let read: [PodInput[], NetworkPolicyInput[], NamespaceInput[]];
  if (scopes === undefined) {
    read = await Promise.all([listPods(api, undefined), listPolicies(api, undefined), listNamespaces(api)]);
  } else {
    // The namespace first: an unknown one is an error, not an empty table.
    const namespaces = await Promise.all(scopes.map(async (name) => (await readNamespace(api, name)) ?? assume(name)));
    const [pods, policies] = await Promise.all([
      Promise.all(scopes.map((ns) => listPods(api, ns))).then((l) => l.flat()),
      Promise.all(scopes.map((ns) => listPolicies(api, ns))).then((l) => l.flat()),
    ]);
    read = [pods, policies, namespaces];
  }
  const [pods, policies, namespaces] = read;
  const identities = await listIdentities(api);
  const { rows, withoutAddress } = endpointRows({ pods, policies, namespaces, identities });
  io.out(flags.output === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : endpointsTable(rows));
  if (rows.length === 0) io.err(`no endpoints ${scopes ? `in namespace ${scopes.join(', ')}` : 'in the cluster'}`);
  for (const n of endpointNotes({ rows, withoutAddress, identitiesKnown: identities !== undefined, namespacesAssumed: assumed })) io.err(n);
  return EXIT.OK;
}
