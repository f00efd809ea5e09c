// Benchmark `compile`: the pure policy compiler (policy/compile.ts and the
// incremental Compiler of policy/compiler.ts) on a generated cluster of
// 10,000 NetworkPolicies over 5,000 pods in 500 namespaces. Targets (issue
// 3): a full compile under 2 s; an incremental change under 20 ms.
//
// The cluster is generated deterministically (seeded PRNG): namespaces of 50
// teams and three environments, 10 pods each from a few apps, named container
// ports by tier, and 20 policies per namespace drawn from a realistic mix:
// default denies, podSelector and namespaceSelector peers (matchLabels and
// matchExpressions), numeric, named and ranged ports, ipBlocks with excepts.
//
// Figures, beside baselines measured in the same run (building the input
// objects; one trivial pass over them, JSON.stringify):
// - full: one-shot compile() of every endpoint (no node filter), then reading
//   every endpoint's entries (entryCount): the compiler defers concatenating
//   them until read, so both are shown. Median of 3. Also per node (100 pods).
// - incremental, on a warmed Compiler: one pod's labels changed, one policy
//   changed, one policy added; each timed from the change to having the
//   result (and entries) of every endpoint endpointsChangedSince reports.
//   Median of 20 each.
// - memory: heapUsed retained by the compiled result / the warmed Compiler.
import { revision } from './revision.ts';
import { heapUsed } from './heap.ts';
import { compile, Compiler } from '../../policy/compile.ts';
import { identityKey, NAMESPACE_NAME_LABEL } from '../../policy/ids.ts';
import type {
  CompiledPolicy,
  CompileInput,
  ContainerPort,
  EndpointPolicy,
  LabelSelector,
  NamespaceInput,
  NetworkPolicyInput,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  NetworkPolicySpec,
  PodInput,
  PolicyEntry,
} from '../../policy/types.ts';
import { Prng } from './prng.ts';
import { median, percentile } from './stats.ts';

const NAMESPACES = 500;
const PODS_PER_NAMESPACE = 10;
const POLICIES_PER_NAMESPACE = 20;
const NODES = 50;
const SEED = 0xc0ffee;

// ---- the generated cluster

const TIERS = {
  web: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' }],
  api: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'grpc', containerPort: 50051, protocol: 'TCP' }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' }],
  db: [{ name: 'db', containerPort: 5432, protocol: 'TCP' }, { name: 'metrics', containerPort: 9187, protocol: 'TCP' }],
  cache: [{ name: 'redis', containerPort: 6379, protocol: 'TCP' }],
  dns: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }],
} as const satisfies Record<string, readonly ContainerPort[]>;
type Tier = keyof typeof TIERS;
const APPS: Array<{ app: string; tier: Tier }> = [
  ...['frontend', 'web', 'portal', 'admin', 'docs'].map((app) => ({ app, tier: 'web' as const })),
  ...['api', 'orders', 'payments', 'users', 'search', 'catalog', 'billing', 'auth'].map((app) => ({ app, tier: 'api' as const })),
  ...['postgres', 'mysql'].map((app) => ({ app, tier: 'db' as const })),
  ...['redis', 'memcached'].map((app) => ({ app, tier: 'cache' as const })),
];
const ENVS = ['prod', 'staging', 'dev'];
const TEAMS = 50;

export interface Cluster {
  namespaces: NamespaceInput[];
  pods: PodInput[];
  policies: NetworkPolicyInput[];
  identities: Map<string, number>;
  /** The apps of each namespace, for selectors that select something. */
  apps: Map<string, Array<{ app: string; tier: Tier }>>;
}

export function generateCluster(seed = SEED): Cluster {
  const rng = new Prng(seed);
  const namespaces: NamespaceInput[] = [];
  const pods: PodInput[] = [];
  const apps = new Map<string, Array<{ app: string; tier: Tier }>>();
  for (let n = 0; n < NAMESPACES; n++) {
    const name = n === 0 ? 'kube-system' : `ns-${String(n).padStart(3, '0')}`;
    const labels: Record<string, string> = { [NAMESPACE_NAME_LABEL]: name, team: `team-${n % TEAMS}`, env: ENVS[n % ENVS.length]! };
    if (rng.chance(0.1)) labels['compliance'] = 'pci';
    namespaces.push({ name, labels });
    const mine = n === 0 ? [{ app: 'coredns', tier: 'dns' as const }] : rng.shuffle(APPS).slice(0, 3 + rng.int(3));
    apps.set(name, mine);
    for (let p = 0; p < PODS_PER_NAMESPACE; p++) {
      const i = n * PODS_PER_NAMESPACE + p;
      const { app, tier } = mine[p % mine.length]!;
      const podLabels: Record<string, string> = { app, tier, version: rng.chance(0.8) ? 'v1' : 'v2' };
      if (rng.chance(0.1)) podLabels['canary'] = 'true';
      pods.push({
        namespace: name,
        name: `${app}-${p}`,
        labels: podLabels,
        ip: `10.100.${i >> 8}.${i & 255}`,
        node: `node-${i % NODES}`,
        containerPorts: TIERS[tier].map((c) => ({ ...c })),
      });
    }
  }
  const cluster = { namespaces, pods, policies: [] as NetworkPolicyInput[], identities: allocateIdentities(namespaces, pods), apps };
  for (const ns of namespaces) {
    for (let k = 0; k < POLICIES_PER_NAMESPACE; k++) cluster.policies.push(generatePolicy(rng, cluster, ns.name, `pol-${k}`));
  }
  return cluster;
}

function allocateIdentities(namespaces: NamespaceInput[], pods: PodInput[]): Map<string, number> {
  const nsLabels = new Map(namespaces.map((n) => [n.name, n.labels]));
  const keys = new Set(pods.map((p) => identityKey(nsLabels.get(p.namespace)!, p.labels)));
  return new Map([...keys].sort().map((k, i) => [k, 256 + i]));
}

const appSelector = (app: string): LabelSelector => ({ matchLabels: { app } });

function ports(rng: Prng, tier: Tier): NetworkPolicyPort[] {
  const served = TIERS[tier];
  const r = rng.next();
  if (r < 0.4) return [{ protocol: 'TCP', port: served[0]!.containerPort }];
  if (r < 0.7) return [{ port: served[0]!.name }]; // named (TCP by default)
  if (r < 0.8) return served.map((c) => ({ protocol: c.protocol, port: c.name }));
  if (r < 0.9) return [{ protocol: 'TCP', port: 8000, endPort: 8000 + 10 + rng.int(90) }];
  return [{ protocol: 'TCP', port: served[0]!.containerPort }, { protocol: 'UDP', port: 5000 + rng.int(1000) }];
}

/** One policy of the mix, in namespace `ns`. */
export function generatePolicy(rng: Prng, c: Cluster, ns: string, name: string): NetworkPolicyInput {
  const mine = c.apps.get(ns)!;
  const target = rng.pick(mine);
  const other = rng.pick(mine);
  const r = rng.next();
  let spec: NetworkPolicySpec;
  if (r < 0.08) {
    spec = { podSelector: {}, policyTypes: ['Ingress'] }; // default deny ingress
  } else if (r < 0.12) {
    spec = { podSelector: {}, policyTypes: ['Egress'] }; // default deny egress
  } else if (r < 0.37) {
    // from an app of the same namespace
    spec = { podSelector: appSelector(target.app), ingress: [{ from: [{ podSelector: appSelector(other.app) }], ports: ports(rng, target.tier) }] };
  } else if (r < 0.5) {
    // from the namespaces of a team
    spec = { podSelector: appSelector(target.app), ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `team-${rng.int(TEAMS)}` } } }], ports: ports(rng, target.tier) }] };
  } else if (r < 0.6) {
    // from an app in every prod namespace, and from monitoring
    const peers: NetworkPolicyPeer[] = [
      { namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: appSelector(rng.pick(APPS).app) },
      { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: `ns-${String(1 + rng.int(NAMESPACES - 1)).padStart(3, '0')}` } } },
    ];
    spec = { podSelector: appSelector(target.app), policyTypes: ['Ingress'], ingress: [{ from: peers, ports: ports(rng, target.tier) }, { from: [{ podSelector: { matchLabels: { tier: 'web' } } }] }] };
  } else if (r < 0.7) {
    // egress to DNS, plus the namespace itself
    spec = {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } }, podSelector: appSelector('coredns') }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 'dns-tcp' }] },
        { to: [{ podSelector: {} }] },
      ],
    };
  } else if (r < 0.8) {
    // egress to the internet but not private ranges; or to a pod range by named port
    const block = rng.int(20);
    spec = rng.chance(0.7)
      ? { podSelector: appSelector(target.app), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] } }], ports: [{ protocol: 'TCP', port: 443 }] }] }
      : { podSelector: appSelector(target.app), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: `10.100.${block}.0/24`, except: [`10.100.${block}.${rng.int(16) * 16}/28`] } }], ports: [{ port: 'http' }, { protocol: 'TCP', port: 5432 }] }] };
  } else if (r < 0.88) {
    // ingress from outside ranges
    const b = 16 + rng.int(16);
    spec = { podSelector: appSelector(target.app), ingress: [{ from: [{ ipBlock: { cidr: `192.168.${rng.int(256)}.0/24` } }, { ipBlock: { cidr: `172.${b}.0.0/16`, except: [`172.${b}.${rng.int(256)}.0/24`] } }], ports: ports(rng, target.tier) }] };
  } else {
    // matchExpressions on both sides, named ports
    spec = {
      podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }] },
      ingress: [
        {
          from: [
            { podSelector: { matchExpressions: [{ key: 'canary', operator: 'DoesNotExist' }, { key: 'version', operator: 'NotIn', values: ['v0'] }] } },
            { namespaceSelector: { matchExpressions: [{ key: 'compliance', operator: 'Exists' }] } },
          ],
          ports: [{ port: 'metrics' }, { port: 'http' }],
        },
      ],
    };
  }
  return { namespace: ns, name, spec };
}

// ---- measuring

/** CPU time of the process (all threads, so the GC's helpers too), in ms: less sensitive than wall time to other processes. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function time<T>(work: () => T): { ms: number; value: T } {
  const start = performance.now();
  const value = work();
  return { ms: performance.now() - start, value };
}

/** Reads every endpoint's entries (the compiler concatenates them when first read). */
function materialize(endpoints: Iterable<EndpointPolicy | undefined>): { policy: number; cidr: number } {
  let policy = 0;
  let cidr = 0;
  for (const e of endpoints) {
    for (const d of [e?.ingress, e?.egress]) {
      policy += d?.entryCount.policy ?? 0;
      cidr += d?.entryCount.cidr ?? 0;
    }
  }
  return { policy, cidr };
}

function warmCompiler(cluster: Cluster, node?: string): Compiler {
  const c = new Compiler(node === undefined ? {} : { node });
  for (const ns of cluster.namespaces) c.setNamespace(ns);
  c.setIdentities(cluster.identities);
  for (const pod of cluster.pods) c.setPod(pod);
  for (const p of cluster.policies) c.setPolicy(p);
  const all = c.endpointsChangedSince(0);
  materialize(all.changed.map((k) => c.result(k)));
  return c;
}

/** Applies a change and reads what it changed, as the agent does; returns the time and the endpoints changed. */
function incremental(c: Compiler, since: number, change: () => void): { ms: number; cpu: number; changed: number; generation: number } {
  const cpu = cpuMs();
  const start = performance.now();
  change();
  const ch = c.endpointsChangedSince(since);
  materialize(ch.changed.map((k) => c.result(k)));
  const ms = performance.now() - start;
  return { ms, cpu: cpuMs() - cpu, changed: ch.changed.length, generation: ch.generation };
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

export async function benchCompile(options: { fullRuns?: number; incrementalRuns?: number } = {}): Promise<void> {
  const fullRuns = options.fullRuns ?? 3;
  const incrementalRuns = options.incrementalRuns ?? 20;

  // Baselines: building the inputs, and one trivial pass over them.
  const buildMs: number[] = [];
  const passMs: number[] = [];
  let cluster = generateCluster();
  for (let i = 0; i < fullRuns; i++) {
    buildMs.push(time(() => generateCluster()).ms);
    passMs.push(time(() => JSON.stringify(cluster).length).ms);
  }
  cluster = generateCluster();
  const input: CompileInput = { policies: cluster.policies, pods: cluster.pods, namespaces: cluster.namespaces, identities: cluster.identities };

  // Full, one-shot: compile(), then reading every endpoint's entries.
  const compileMs: number[] = [];
  const withEntriesMs: number[] = [];
  const withEntriesCpu: number[] = [];
  let compiled: CompiledPolicy | undefined;
  let retained = 0;
  for (let i = 0; i < fullRuns; i++) {
    compiled = undefined;
    const before = heapUsed();
    const cpu = cpuMs();
    const start = performance.now();
    compiled = compile(input);
    compileMs.push(performance.now() - start);
    materialize(compiled.endpoints.values());
    withEntriesMs.push(performance.now() - start);
    withEntriesCpu.push(cpuMs() - cpu);
    retained = heapUsed() - before;
  }
  // The same work through the Compiler API, phase by phase (interleaved runs).
  const phases = { ingest: [] as number[], flush: [] as number[], entries: [] as number[] };
  for (let i = 0; i < fullRuns; i++) {
    let t = performance.now();
    const c = new Compiler();
    for (const ns of input.namespaces) c.setNamespace(ns);
    c.setIdentities(input.identities);
    for (const pod of input.pods) c.setPod(pod);
    for (const p of input.policies) c.setPolicy(p);
    phases.ingest.push(performance.now() - t);
    t = performance.now();
    const snap = c.snapshot();
    phases.flush.push(performance.now() - t);
    t = performance.now();
    materialize(snap.endpoints.values());
    phases.entries.push(performance.now() - t);
  }
  const entryCount = compiled!.entryCount;
  const summary = {
    endpoints: compiled!.endpoints.size,
    ipcache: compiled!.ipcache.size,
    problems: compiled!.problems.length,
    isolatedIngress: [...compiled!.endpoints.values()].filter((e) => e.ingress).length,
    isolatedEgress: [...compiled!.endpoints.values()].filter((e) => e.egress).length,
  };
  compiled = undefined;

  // Per node, as each agent compiles (node-0: 100 of the 5,000 pods are endpoints).
  const nodeMs: number[] = [];
  let nodeCount = { policy: 0, cidr: 0 };
  for (let i = 0; i < fullRuns; i++) {
    const start = performance.now();
    const mine = compile({ ...input, node: 'node-0' });
    nodeCount = materialize(mine.endpoints.values());
    nodeMs.push(performance.now() - start);
  }

  // Incremental, on a warmed Compiler: every endpoint of the cluster, then one node's (as an agent has it).
  const all = runIncremental(incrementalRuns);
  const node = runIncremental(incrementalRuns, 'node-0');

  // ---- report
  const row = (label: string, samples: number[], extra = '') =>
    console.log(`  ${label.padEnd(44)} median ${fmt(median(samples)).padStart(7)} ms  (min ${fmt(Math.min(...samples))}, max ${fmt(Math.max(...samples))})${extra}`);
  const compileMedian = median(withEntriesMs);
  console.log(`code: ${await revision()}`);
  console.log(`compile: ${cluster.namespaces.length} namespaces, ${cluster.pods.length} pods (${cluster.identities.size} identities, ${NODES} nodes), ${cluster.policies.length} NetworkPolicies; seed ${SEED}; node ${process.version}`);
  console.log('baselines:');
  row('build the input objects', buildMs);
  row('trivial pass over them (JSON.stringify)', passMs);
  console.log(`full compile (median of ${fullRuns}):`);
  row('compile() (entries not yet concatenated)', compileMs);
  row('compile() + read every endpoint\'s entries', withEntriesMs, `  = ${(compileMedian / median(buildMs)).toFixed(1)}x building the inputs; process CPU ${fmt(median(withEntriesCpu))} ms`);
  row('  phase: set* (namespaces, identities, pods, policies)', phases.ingest);
  row('  phase: snapshot() (compiles every endpoint)', phases.flush);
  row('  phase: read every endpoint\'s entries', phases.entries);
  row('per node: compile({node}) + entries, 100 endpoints', nodeMs);
  console.log(`  result: ${summary.endpoints} endpoints (${summary.isolatedIngress} isolated for ingress, ${summary.isolatedEgress} for egress), ipcache ${summary.ipcache}, problems ${summary.problems}`);
  console.log(`  entryCount: pal_policy ${entryCount.policy.toLocaleString('en-US')}, pal_policy_cidr ${entryCount.cidr.toLocaleString('en-US')} (per node-0: ${nodeCount.policy.toLocaleString('en-US')} / ${nodeCount.cidr.toLocaleString('en-US')})`);
  console.log(`  heapUsed retained by the compiled result: ${mb(retained)}`);
  for (const [scope, r] of [['every endpoint', all], ['node-0 only (100 endpoints, as its agent)', node]] as const) {
    console.log(`incremental, warmed Compiler of ${scope} (warm-up ${fmt(r.warmMs)} ms, heapUsed retained ${mb(r.heap)}); change -> endpointsChangedSince -> result + entries of each changed endpoint, ${incrementalRuns} each, interleaved:`);
    const inc = (label: string, x: Samples) =>
      row(label, x.ms, `  p90 ${fmt(percentile(x.ms, 90))} ms, CPU median ${fmt(median(x.cpu))} ms; endpoints changed: median ${median(x.changed)}, max ${Math.max(...x.changed)} (${fmt(x.ms[x.changed.indexOf(Math.max(...x.changed))]!)} ms)`);
    inc("one pod's labels changed", r.pod);
    inc('one policy changed', r.change);
    inc('one policy added', r.add);
    const ok = r.mismatches.length === 0;
    console.log(`  ${ok ? 'correct' : 'WRONG'}: after the ${incrementalRuns * 3} changes, the Compiler's results ${ok ? 'equal' : 'differ from'} a one-shot compile of the same cluster${ok ? '' : ` for ${r.mismatches.length} of ${r.endpoints} endpoints, e.g. ${r.mismatches[0]}`}`);
  }
  console.log('targets:');
  console.log(`  ${verdict(compileMedian < 2000)}  full compile under 2 s: ${fmt(compileMedian)} ms (compile() alone ${fmt(median(compileMs))} ms)`);
  for (const [label, r, n] of [["pod's labels changed", all.pod, node.pod], ['policy changed', all.change, node.change], ['policy added', all.add, node.add]] as const) {
    console.log(`  ${verdict(median(r.ms) < 20)}  incremental (${label}) under 20 ms: median ${fmt(median(r.ms))} ms, max ${fmt(Math.max(...r.ms))} ms (node-0 only: median ${fmt(median(n.ms))} ms, max ${fmt(Math.max(...n.ms))} ms)`);
  }
  if (all.mismatches.length || node.mismatches.length) console.log('  (the incremental figures are of a Compiler whose results are WRONG: see above)');
}

interface Samples {
  ms: number[];
  cpu: number[];
  changed: number[];
}

/**
 * Warms a Compiler on a fresh copy of the cluster, then applies the same
 * seeded sequence of changes (a pod relabel, a policy change, a policy add;
 * `runs` times, interleaved) and times each.
 */
function runIncremental(
  runs: number,
  node?: string,
): { warmMs: number; heap: number; pod: Samples; change: Samples; add: Samples; endpoints: number; mismatches: string[] } {
  const cluster = generateCluster();
  const heapBefore = heapUsed();
  const warm = time(() => warmCompiler(cluster, node));
  const c = warm.value;
  const heap = heapUsed() - heapBefore;
  let gen = c.endpointsChangedSince(0).generation;
  const rng = new Prng(SEED + 1);
  const none = (): Samples => ({ ms: [], cpu: [], changed: [] });
  const out = { pod: none(), change: none(), add: none() };
  const byNs = new Map<string, PodInput[]>();
  for (const p of cluster.pods) byNs.set(p.namespace, [...(byNs.get(p.namespace) ?? []), p]);
  const current = new Map(cluster.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const record = (x: Samples, r: { ms: number; cpu: number; changed: number; generation: number }) => {
    x.ms.push(r.ms);
    x.cpu.push(r.cpu);
    x.changed.push(r.changed);
    gen = r.generation;
  };
  for (let i = 0; i < runs; i++) {
    // One pod takes the labels of another pod of its namespace (a relabel to an existing identity).
    const ns = cluster.namespaces[1 + rng.int(NAMESPACES - 1)]!.name;
    const pods = byNs.get(ns)!;
    const pod = rng.pick(pods);
    const donor = pods.find((p) => JSON.stringify(p.labels) !== JSON.stringify(pod.labels)) ?? pod;
    const relabeled = { ...pod, labels: { ...donor.labels } };
    byNs.set(ns, pods.map((p) => (p === pod ? relabeled : p)));
    current.set(`${pod.namespace}/${pod.name}`, relabeled);
    record(out.pod, incremental(c, gen, () => c.setPod(relabeled)));

    // One existing policy changes its ports (or its peers when it has none).
    const k = rng.int(cluster.policies.length);
    const changed: NetworkPolicyInput = { ...cluster.policies[k]!, spec: mutate(cluster.policies[k]!.spec, i) };
    cluster.policies[k] = changed;
    record(out.change, incremental(c, gen, () => c.setPolicy(changed)));

    // One new policy in a namespace.
    const added = generatePolicy(rng, cluster, cluster.namespaces[rng.int(NAMESPACES)]!.name, `added-${i}`);
    cluster.policies.push(added);
    record(out.add, incremental(c, gen, () => c.setPolicy(added)));
  }
  // The figures mean something only if the incremental results are the right ones: compare with a one-shot compile.
  const truth = compile({ policies: cluster.policies, pods: [...current.values()], namespaces: cluster.namespaces, identities: cluster.identities, ...(node === undefined ? {} : { node }) });
  const keys = new Set([...truth.endpoints.keys(), ...c.endpointKeys()]);
  const mismatches: string[] = [];
  for (const k of keys) {
    const why = endpointDifference(c.result(k), truth.endpoints.get(k));
    if (why) mismatches.push(`${k}: ${why}`);
  }
  return { warmMs: warm.ms, heap, ...out, endpoints: keys.size, mismatches };
}

/** Where two compiled endpoints differ (undefined when equal). */
function endpointDifference(a: EndpointPolicy | undefined, b: EndpointPolicy | undefined): string | undefined {
  if (!a || !b) return a === b ? undefined : `${a ? 'only the incremental' : 'only the one-shot'} compiler has it`;
  if (a.ip !== b.ip || a.identity !== b.identity || a.identityKey !== b.identityKey) return 'address or identity';
  for (const d of ['ingress', 'egress'] as const) {
    const x = a[d];
    const y = b[d];
    if (!x || !y) {
      if (x !== y) return `${d}: isolated in one only`;
      continue;
    }
    if (x.isolatedBy.map(refText).join() !== y.isolatedBy.map(refText).join()) return `${d}: isolatedBy`;
    const lists: Array<[string, readonly PolicyEntry[], readonly PolicyEntry[]]> = [[`${d} entries`, x.entries, y.entries]];
    if (x.cidrRegions.length !== y.cidrRegions.length) return `${d}: ${x.cidrRegions.length} vs ${y.cidrRegions.length} CIDR regions`;
    x.cidrRegions.forEach((r, i) => {
      const o = y.cidrRegions[i]!;
      lists.push([`${d} region ${r.prefix}${r.prefix === o.prefix && r.regionId === o.regionId ? '' : ` vs ${o.prefix}`}`, r.entries, r.prefix === o.prefix && r.regionId === o.regionId ? o.entries : []]);
    });
    for (const [what, p, q] of lists) {
      const ps = new Set(p.map(entryText));
      const qs = new Set(q.map(entryText));
      const extra = [...ps].filter((e) => !qs.has(e));
      const missing = [...qs].filter((e) => !ps.has(e));
      if (extra.length || missing.length || p.length !== q.length) {
        return `${what}: ${extra.length} only incremental (e.g. ${extra[0] ?? '-'}), ${missing.length} only one-shot (e.g. ${missing[0] ?? '-'})`;
      }
    }
  }
  return undefined;
}

const refText = (r: { namespace: string; name: string }) => `${r.namespace}/${r.name}`;
const entryText = (e: PolicyEntry) =>
  `${e.peer.kind === 'identity' ? e.peer.identity : e.peer.kind === 'region' ? `region ${e.peer.regionId}` : 'any'} ${e.protocol}/${e.port === 'any' ? 'any' : `${e.port.from}-${e.port.to}`} by ${e.rule.namespace}/${e.rule.name}/${e.rule.direction}/${e.rule.index}`;

/** A changed version of a policy: different ports, or a different peer when it has none. */
function mutate(spec: NetworkPolicySpec, i: number): NetworkPolicySpec {
  const port = 7000 + i;
  if (spec.ingress?.length) return { ...spec, ingress: [{ ...spec.ingress[0]!, ports: [{ protocol: 'TCP', port }] }, ...spec.ingress.slice(1)] };
  if (spec.egress?.length) return { ...spec, egress: [{ ...spec.egress[0]!, ports: [{ protocol: 'TCP', port }] }, ...spec.egress.slice(1)] };
  // A default deny becomes an allow from one port.
  return { ...spec, ingress: [{ ports: [{ protocol: 'TCP', port }] }], policyTypes: ['Ingress'] };
}
