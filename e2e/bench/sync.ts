// Benchmark `sync`: what a watch event costs the agent on a node whose maps
// hold about a million policy entries (issue 7, item 8: a no-op event and a
// one-policy change each under 20 ms; a new pod's policy written well under
// the 1 s a CNI ADD may take).
//
// The node: 100 local pods, one per namespace, each selected by its
// namespace's policy that admits every pod of the cluster (100 identities) on
// 100 TCP ports: 100 x 100 x 101 = 1,010,000 pal_policy entries, written to
// the real kernel maps of build/bpf/endpoint.bpf.o (a bpffs mounted for the
// run) through the loader, as the agent does.
//
// Each case runs the agent's sync path: the incremental Compiler, the
// DatapathPlanner (incremental), orderWrites, the writes. Baseline in the
// same run: the whole-node path every event took before (planDatapath of
// every endpoint, then diffMaps of every entry against what the maps hold).
// Median of 20 runs each; the one-policy change alternates between two
// versions of one namespace's policy (one port differs).
import type { Loader } from '../../datapath/loader-client.ts';
import { scratchDatapath } from '../../datapath/scratch-datapath.ts';
import { DatapathPlanner, diffMaps, PLANNED_MAPS, planDatapath, type LocalEndpoint, type MapContents, type PlannedMap } from '../../agent/datapath-plan.ts';
import { writeSteps } from '../../agent/map-writer.ts';
import { orderWrites, type Capacity } from '../../agent/map-writes.ts';
import { Compiler } from '../../policy/compile.ts';
import { identityKey, NAMESPACE_NAME_LABEL } from '../../policy/ids.ts';
import type { NetworkPolicyInput, PodInput } from '../../policy/types.ts';
import { revision } from './revision.ts';
import { heapUsed } from './heap.ts';
import { median } from './stats.ts';

const NODE = 'n1';
const NAMESPACES = 100;
const PORTS = 100;
const RUNS = 20;

function namespaceName(i: number): string {
  return `ns${String(i).padStart(3, '0')}`;
}

function pod(i: number, node = NODE): PodInput {
  return { namespace: namespaceName(i), name: 'app', labels: { app: `a${i}` }, ip: `10.200.${Math.floor(i / 250)}.${(i % 250) + 1}`, node, containerPorts: [] };
}

/** Admits every pod of the cluster on PORTS TCP ports; `variant` moves one port. */
function policy(i: number, variant = 0): NetworkPolicyInput {
  const ports = Array.from({ length: PORTS }, (_, p) => ({ protocol: 'TCP' as const, port: 1000 + p * 7 + (p === 0 ? variant : 0) }));
  return { namespace: namespaceName(i), name: 'allow', spec: { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }], ports }] } };
}

interface Node {
  compiler: Compiler;
  planner: DatapathPlanner;
  endpoints: LocalEndpoint[];
  applied: MapContents;
  capacity: Capacity;
  generation: number;
  loader: Loader;
}

interface SyncCost {
  written: number;
  /** ms per stage: compile (changed endpoints' results), plan, order, write. */
  stages: [number, number, number, number];
}

/** The agent's sync: changed endpoints from the compiler, incremental plan, ordered writes. */
async function sync(node: Node): Promise<SyncCost> {
  const t0 = performance.now();
  const since = node.compiler.endpointsChangedSince(node.generation);
  node.generation = since.generation;
  const compiled = new Map(node.endpoints.flatMap((e) => {
    const r = node.compiler.result(e.key);
    return r ? [[e.key, r] as const] : [];
  }));
  const t1 = performance.now();
  const plan = node.planner.plan(
    { endpoints: node.endpoints, compiled, podIdentities: node.compiler.ipcache(), nodeAddresses: { self: ['172.30.0.11'], others: [] }, capacity: node.capacity },
    since.full ? 'all' : new Set(since.changed),
  );
  const changes = plan.changes;
  const endpoints = diffMaps(new Map([['pal_endpoints', plan.endpoints]]), new Map([['pal_endpoints', node.applied.get('pal_endpoints')!]]));
  for (const [m, list] of endpoints.updates) changes.updates.set(m, list);
  for (const [m, list] of endpoints.deletes) changes.deletes.set(m, list);
  const t2 = performance.now();
  const steps = orderWrites(changes, node.applied, node.capacity);
  const t3 = performance.now();
  await writeSteps(node.loader, steps, (step) => {
    const map = node.applied.get(step.map)!;
    for (const e of step.entries) step.op === 'update' ? map.set(e.key, e.value) : map.delete(e.key);
  });
  return { written: steps.reduce((n, s) => n + s.entries.length, 0), stages: [t1 - t0, t2 - t1, t3 - t2, performance.now() - t3] };
}

/** The path every event took before: plan the whole node, diff every entry. */
function wholeNodePlan(node: Node): number {
  const compiled = new Map(node.endpoints.flatMap((e) => {
    const r = node.compiler.result(e.key);
    return r ? [[e.key, r] as const] : [];
  }));
  const plan = planDatapath({ endpoints: node.endpoints, compiled, podIdentities: node.compiler.ipcache(), nodeAddresses: { self: ['172.30.0.11'], others: [] }, capacity: node.capacity });
  return diffMaps(plan.maps, node.applied).count;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

export async function benchSync(): Promise<void> {
  const datapath = await scratchDatapath('bench-sync');
  const { loader } = datapath;
  try {
    const capacity = Object.fromEntries(PLANNED_MAPS.map((m) => [m, datapath.capacity(m)])) as Record<PlannedMap, number>;
    const compiler = new Compiler({ node: NODE });
    const identities = new Map<string, number>();
    for (let i = 0; i < NAMESPACES; i++) {
      const labels = { [NAMESPACE_NAME_LABEL]: namespaceName(i) };
      compiler.setNamespace({ name: namespaceName(i), labels });
      compiler.setPod(pod(i));
      compiler.setPolicy(policy(i));
      identities.set(identityKey(labels, pod(i).labels), 1000 + i);
    }
    compiler.setIdentities(identities);
    const node: Node = {
      compiler,
      planner: new DatapathPlanner(),
      endpoints: Array.from({ length: NAMESPACES }, (_, i) => ({ key: `${namespaceName(i)}/app`, ifindex: 100 + i, ip: pod(i).ip! })),
      applied: new Map(PLANNED_MAPS.map((m) => [m, new Map<string, string>()])),
      capacity,
      generation: 0,
      loader,
    };
    const initial = await timed(() => sync(node));
    const entries = node.applied.get('pal_policy')!.size;

    /** Runs `event` then a sync, RUNS times; `undo` (untimed) after each. */
    const measure = async (event: (r: number) => void, undo: (r: number) => Promise<void> = async () => undefined) => {
      const runs: Array<{ ms: number } & SyncCost> = [];
      for (let r = 0; r < RUNS; r++) {
        const t = await timed(async () => (event(r), sync(node)));
        runs.push({ ms: t.ms, ...t.value });
        await undo(r);
      }
      return runs;
    };
    const noop = await measure((r) => compiler.setPod(pod(r % NAMESPACES))); // a resync of an unchanged pod
    const change = await measure((r) => compiler.setPolicy(policy(7, (r % 2) + 1)));
    // A new local pod (CNI ADD's agent side): the pod appears, its endpoint is planned and written; then it leaves again.
    const fresh = (r: number): PodInput => ({ ...pod(NAMESPACES + r), namespace: namespaceName(r % NAMESPACES), name: `new${r}`, labels: { app: `a${r % NAMESPACES}` } });
    const added = await measure(
      (r) => {
        compiler.setPod(fresh(r));
        node.endpoints.push({ key: `${fresh(r).namespace}/${fresh(r).name}`, ifindex: 10_000 + r, ip: fresh(r).ip! });
      },
      async (r) => {
        compiler.deletePod(fresh(r).namespace, fresh(r).name);
        node.endpoints.pop();
        await sync(node);
      },
    );
    // What the agent holds for such a node: the compiler, the planner's per-endpoint plans, the maps' contents as written.
    const heap = heapUsed();
    const baseline: number[] = [];
    for (let r = 0; r < 5; r++) baseline.push((await timed(() => wholeNodePlan(node))).ms);

    console.log(`sync: the agent's sync path (compiler -> planner -> ordered writes to the kernel maps) on a node with ${entries.toLocaleString('en')} pal_policy entries (${NAMESPACES} local endpoints x ${NAMESPACES} identities x ${PORTS} ports)`);
    console.log(`code: ${await revision()}`);
    console.log(`initial sync (every entry written): ${(initial.ms / 1000).toFixed(1)} s, ${initial.value.written.toLocaleString('en')} entries; heap in use (compiler, planner and the maps' contents as written) ${(heap / 2 ** 20).toFixed(0)} MiB`);
    console.log(`median of ${RUNS}, ms (min-max) | median per stage: compile / plan / order / write | entries written`);
    const row = (name: string, runs: Array<{ ms: number } & SyncCost>, target: string) => {
      const ms = runs.map((r) => r.ms);
      const stages = [0, 1, 2, 3].map((i) => median(runs.map((r) => r.stages[i]!)).toFixed(1)).join(' / ');
      console.log(`  ${name.padEnd(42)} ${median(ms).toFixed(1).padStart(7)} (${Math.min(...ms).toFixed(1)}-${Math.max(...ms).toFixed(1)}) | ${stages} | ${median(runs.map((r) => r.written))}   ${target}`);
    };
    row('no-op event (a pod set again unchanged)', noop, 'target < 20 ms');
    row('one policy changed (one port moved)', change, 'target < 20 ms');
    row('new local pod planned and written', added, 'CNI ADD target < 1 s');
    console.log(`  ${'baseline: whole-node plan + diff, per event'.padEnd(42)} ${median(baseline).toFixed(1).padStart(7)} (median of 5: what every event cost before; ${(median(baseline) / median(change.map((r) => r.ms))).toFixed(0)}x the one-policy change)`);
  } finally {
    await datapath.dispose();
  }
}

