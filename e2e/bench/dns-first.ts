// `npm run bench -- dns-first`: the first connection right after a name's
// resolution (issue 10 item 8: "first-connection success right after
// resolution over 1,000 fresh names: 100%").
//
// On the stand-in cluster (one node), the pod x/a is selected by a
// PalisadeNetworkPolicy whose only egress rule is toFQDNs
// `*.fresh.example.com` on TCP 80, so nothing but addresses the agent learned
// from DNS answers is reachable from it. The cluster's DNS server pod
// (kube-system/dns, dnsmasq) answers n0..n999.fresh.example.com, each with an
// address of its own in 198.18.0.0/22, TTL 60; one external host answers on
// the whole of 198.18.0.0/21 (an AnyIP route, world.ts `ranges`), routed from
// the node through the world's router. From x/a's namespace, for each name
// in turn (dns-first-client.ts): an A query to the DNS server (redirected by
// the datapath to the node's DNS proxy, which learns the answer, has the
// sync write the maps, then releases it), and at once, no sleep and no
// retry, a TCP connection to the answered address. A connection counts when
// its first SYN was answered (established in under 1 s, the kernel's initial
// SYN timeout); one established only on a resent SYN is reported apart, as a
// failure of the first connection.
//
// Then a check on the same path: 200 more fresh names (t0..t199, addresses
// in 198.18.5.0/24), each looked up by two lookups at once, each followed by
// its own connection, as two pods or applications starting together (or a
// resent query) make them: the second answer teaches the cache nothing new,
// yet must not be released before the first one's sync wrote the maps.
//
// Control, in the same run: 100 addresses of 198.18.4.0/24, which no name
// answers. From x/b (no policy selects it) all connect: the range is routed
// and served. From x/a none may: the policy is enforced, and the fresh
// names' connections succeed because their addresses were learned.
//
// PAL_BENCH_DNS_FIRST_NAMES (default 1000), _TWINS (200) and _CONCURRENCY
// (1: one name after the other; N: N names at a time, so syncs coalesce)
// change the run. Evidence besides the client's figures: the node's
// pal_metrics (every drop reason, read before and after each phase) and the
// agent's flow export
// (--flow-export-file): the proxy's DNS flows (query arrival to answer
// release, learning included), x/a's new connections and drops.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { execa } from 'execa';
import { DROP_FIRST, reasonName, sumMetrics } from '../../datapath/abi.ts';
import type { Flow } from '../../lib/flow.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { startDnsServer } from '../cluster/dns-server.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import type { SimNode } from '../cluster/node.ts';
import { NODE_BIN } from '../cluster/paths.ts';
import { nsenterNet } from '../cluster/resolve.ts';
import { StopOnSignal } from '../cluster/stop-on-signal.ts';
import { WORLD_ROUTER_ADDRESS } from '../cluster/world.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';
import { percentile } from './stats.ts';

const NAMES = Number(process.env.PAL_BENCH_DNS_FIRST_NAMES ?? 1000);
const CONTROL = 100;
/** Names each asked by two lookups at once (0: none). */
const TWINS = Number(process.env.PAL_BENCH_DNS_FIRST_TWINS ?? 200);
/** Workers looking names up at once (1: one name after the other). */
const CONCURRENCY = Number(process.env.PAL_BENCH_DNS_FIRST_CONCURRENCY ?? 1);
const DOMAIN = 'fresh.example.com';
const TTL = 60;
const HOST_RANGE = '198.18.0.0/21';
const HOST_IP = '203.0.113.60';
/** The kernel resends an unanswered SYN after 1 s: a connection established later was not made by its first SYN. */
const FIRST_SYN_MS = 1000;
const CLIENT = new URL('./dns-first-client.ts', import.meta.url).pathname;

/** The address the i-th fresh name answers: 198.18.0.1 onwards (198.18.0.0/22 holds 1,023 of them). */
const freshAddress = (i: number) => `198.18.${(i + 1) >> 8}.${(i + 1) & 255}`;
/** The control's addresses: 198.18.4.1 onwards, which no name answers. */
const controlAddress = (i: number) => `198.18.4.${i + 1}`;
/** The address the i-th twin name (asked twice at once) answers: 198.18.5.1 onwards. */
const twinAddress = (i: number) => `198.18.5.${i + 1}`;

type Attempt = { i: number; copy: number; name: string; address?: string; resolveMs: number; connectMs?: number; ok: boolean; stage?: string; reason?: string };
type Connection = { address: string; connectMs: number; ok: boolean; reason?: string };

async function client<T>(pod: SimPod, args: string[]): Promise<T[]> {
  const r = await execa('nsenter', [nsenterNet(pod.netns), NODE_BIN, CLIENT, ...args], { reject: false, maxBuffer: 64 << 20 });
  if (r.exitCode !== 0) throw new Error(`dns-first-client in ${pod.namespace}/${pod.name} failed (exit ${r.exitCode}): ${String(r.stderr).trim()}`);
  return String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

/** The node's pal_metrics: packets by reason name (summed over CPUs). */
async function metrics(node: SimNode): Promise<Map<string, bigint>> {
  const out = await execa('bpftool', ['map', 'dump', 'pinned', `${node.bpffs}/pal_metrics`, '-j'], { maxBuffer: 64 << 20 });
  const bytes = (hex: string[]) => Buffer.from(hex.map((h) => Number.parseInt(h, 16)));
  const counts = new Map<string, bigint>();
  for (const e of JSON.parse(String(out.stdout)) as Array<{ key: string[]; values: Array<{ value: string[] }> }>) {
    const code = bytes(e.key).readUInt32LE(0);
    const packets = sumMetrics(Buffer.concat(e.values.map((v) => bytes(v.value)))).packets;
    if (packets > 0n) counts.set(reasonName(code) ?? (code >= DROP_FIRST ? `DROP_#${code}` : `#${code}`), packets);
  }
  return counts;
}

/** Drops counted between two readings, by reason. */
function dropsBetween(before: Map<string, bigint>, after: Map<string, bigint>): Map<string, bigint> {
  const drops = new Map<string, bigint>();
  for (const [reason, n] of after) {
    const delta = n - (before.get(reason) ?? 0n);
    if (delta > 0n && reason.startsWith('DROP_')) drops.set(reason, delta);
  }
  return drops;
}

const listDrops = (drops: Map<string, bigint>) => (drops.size === 0 ? 'none' : [...drops].map(([r, n]) => `${r} ${n}`).join(', '));

/** Every flow the agent exported (the file and its rotations). */
async function exportedFlows(dir: string): Promise<Flow[]> {
  const files = (await readdir(dir)).filter((f) => f.startsWith('flows.jsonl')).sort().reverse();
  const flows: Flow[] = [];
  for (const f of files) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      if (!line.startsWith('{"time"')) continue;
      flows.push(JSON.parse(line) as Flow);
    }
  }
  return flows;
}

const p = (xs: number[], q: number) => (xs.length === 0 ? NaN : percentile(xs, q));
const msText = (x: number) => `${x.toFixed(1)} ms`;
const dist = (xs: number[]) => `p50 ${msText(p(xs, 50))}, p99 ${msText(p(xs, 99))}, max ${msText(Math.max(...xs))} (${xs.length} samples)`;

interface Phase {
  prefix: string;
  count: number;
  copies: number;
  expected: (i: number) => string;
  attempts: Attempt[];
  seconds: number;
  /** Wall clock (ms) of the phase's start and end, to pick its flows. */
  from: number;
  to: number;
  drops: Map<string, bigint>;
  /** Agent syncs that wrote the maps meanwhile. */
  syncs: number;
}

/** Prints a phase's figures; returns how many lookups' first connections were established on their first SYN. */
function report(title: string, ph: Phase, flows: Flow[]): number {
  const { attempts } = ph;
  const total = ph.count * ph.copies;
  const resolved = attempts.filter((x) => x.address !== undefined);
  const wrongAddress = resolved.filter((x) => x.address !== ph.expected(x.i));
  const firstSyn = attempts.filter((x) => x.ok && x.connectMs! < FIRST_SYN_MS && x.address === ph.expected(x.i));
  const lateSyn = attempts.filter((x) => x.ok && x.connectMs! >= FIRST_SYN_MS);
  const failed = attempts.filter((x) => !x.ok && x.stage === 'connect');
  const inPhase = (f: Flow) => {
    const t = Date.parse(f.time);
    return t >= ph.from - 5 && t <= ph.to + 5;
  };
  const ofA = (f: Flow) => f.endpoint?.namespace === 'x' && f.endpoint?.name === 'a';
  const names = new RegExp(`^${ph.prefix}\\d+\\.${DOMAIN.replaceAll('.', '\\.')}$`);
  const dnsFlows = flows.filter((f) => f.type === 'dns' && names.test(f.dns?.name ?? '') && inPhase(f));
  const newFlows = flows.filter((f) => f.type === 'new' && ofA(f) && f.direction === 'egress' && f.destination?.ip?.startsWith('198.18.') && inPhase(f));
  const learnedNew = newFlows.filter((f) => (f.fqdn?.length ?? 0) > 0);
  const dropFlows = flows.filter((f) => (f.type === 'drop' || f.type === 'drop-summary') && ofA(f) && inPhase(f));
  console.log(`${title}: ${total} lookups in ${ph.seconds.toFixed(1)} s`);
  console.log(`  resolved through the proxy: ${resolved.length} of ${total}${wrongAddress.length > 0 ? ` (${wrongAddress.length} with an unexpected address)` : ''}${resolved.length < total ? `; not resolved: ${attempts.filter((x) => x.address === undefined).slice(0, 5).map((x) => `${x.name} ${x.reason}`).join(', ')}` : ''}`);
  console.log(`  first connections established on their first SYN: ${firstSyn.length} of ${total}; established only on a resent SYN: ${lateSyn.length}; failed: ${failed.length}`);
  for (const x of [...lateSyn, ...failed].slice(0, 8)) {
    const drop = dropFlows.find((f) => f.destination?.ip === x.address);
    const answer = dnsFlows.filter((f) => f.dns?.name === x.name).map((f) => `${f.dns!.latencyMs.toFixed(1)} ms`);
    console.log(`    ${x.name}${ph.copies > 1 ? ` (lookup ${x.copy})` : ''} -> ${x.address}: ${x.ok ? `established after ${msText(x.connectMs!)}` : x.reason}; resolved in ${msText(x.resolveMs)}; the proxy's answers to it released after ${answer.join(', ') || '?'}${drop ? `; flow: ${drop.reason} ${drop.tcpFlags?.join('|') ?? ''} at ${drop.time}` : ''}`);
  }
  console.log(`  resolve latency (client: query sent -> answer, learning included): ${dist(attempts.map((x) => x.resolveMs))}`);
  console.log(`  connect latency (answer in -> established): ${dist(resolved.filter((x) => x.ok).map((x) => x.connectMs!))}`);
  console.log(`  the proxy's own (dns flows: query arrival -> answer released, learning and the map write included): ${dist(dnsFlows.map((f) => f.dns!.latencyMs))}`);
  console.log(`  agent syncs that wrote the maps meanwhile: ${ph.syncs}; the node's drops meanwhile (pal_metrics): ${listDrops(ph.drops)}`);
  console.log(`  flows of x/a meanwhile: ${newFlows.length} new connections to 198.18.0.0/21 (${learnedNew.length} naming the learned name), ${dropFlows.length} drops${dropFlows.length > 0 ? `: ${dropFlows.slice(0, 3).map((f) => `${f.reason} ${f.protocol} ${f.destination?.ip}:${f.destination?.port}`).join('; ')}` : ''}`);
  console.log('');
  return firstSyn.length;
}

export async function benchDnsFirst(): Promise<void> {
  if (!(NAMES >= 1 && NAMES <= 1023) || !(TWINS >= 0 && TWINS <= 254) || !(CONCURRENCY >= 1)) throw new Error('dns-first: 1..1023 names, 0..254 twins, a concurrency of at least 1');
  const began = performance.now();
  const loadBefore = loadavg();
  const flowDir = await mkdtemp(join(tmpdir(), 'pal-bench-dns-first-'));
  const guard = new StopOnSignal<Cluster>((text) => console.error(text));
  try {
    const cluster = await guard.start(() => startCluster({
      nodes: 1,
      agentArgs: ['--flow-export-file', join(flowDir, 'flows.jsonl'), '--flow-export-max-bytes', String(256 << 20)],
    }));
    const node = cluster.nodes[0]!;
    const startedMs = performance.now() - began;
    // The outside addresses: one host answering on a whole range, routed from the node via the world's router.
    await cluster.world.addHosts([{ name: 'fresh', ip: HOST_IP, ranges: [HOST_RANGE] }]);
    await execa('ip', ['-n', node.netns, 'route', 'replace', HOST_RANGE, 'via', WORLD_ROUTER_ADDRESS]);
    const dns = await startDnsServer(cluster, {
      records: [
        ...Array.from({ length: NAMES }, (_, i) => ({ name: `n${i}.${DOMAIN}`, addresses: [freshAddress(i)], ttl: TTL })),
        ...Array.from({ length: TWINS }, (_, i) => ({ name: `t${i}.${DOMAIN}`, addresses: [twinAddress(i)], ttl: TTL })),
      ],
    });
    const tracker = new EnforcementTracker();
    tracker.note('Namespace', await createNamespace(cluster, 'x', { 'kubernetes.io/metadata.name': 'x' }));
    const [a, b] = (await startPods(cluster, [{ namespace: 'x', name: 'a', labels: { pod: 'a' } }, { namespace: 'x', name: 'b', labels: { pod: 'b' } }])) as [SimPod, SimPod];
    tracker.note('Pod', a.resourceVersion);
    tracker.note('Pod', b.resourceVersion);
    const policy = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'palisade.io', version: 'v1alpha1', namespace: 'x', plural: 'palisadenetworkpolicies',
      body: {
        apiVersion: 'palisade.io/v1alpha1', kind: 'PalisadeNetworkPolicy', metadata: { name: 'a-to-fresh-names' },
        spec: { endpointSelector: { matchLabels: { pod: 'a' } }, egress: [{ toFQDNs: [{ matchPattern: `*.${DOMAIN}` }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
      },
    })) as { metadata?: { resourceVersion?: string } };
    tracker.note('PalisadeNetworkPolicy', policy.metadata?.resourceVersion);
    await tracker.wait(cluster.kubeconfig, [node.name], 20_000);
    const readyMs = performance.now() - began;

    // Control: the range is routed and served (x/b), and the policy closes it to x/a.
    const controls = Array.from({ length: CONTROL }, (_, i) => controlAddress(i)).join(',');
    const reach = await client<Connection>(b, ['connect', '--addresses', controls, '--timeout-ms', '2000']);
    const m0 = await metrics(node);
    const denied = await client<Connection>(a, ['connect', '--addresses', controls, '--timeout-ms', '2000']);
    const m1 = await metrics(node);

    // The fresh names, then the same fresh name asked by two lookups at once.
    const agentLog = join(cluster.runDir, node.name, 'agent.log');
    const phase = async (prefix: string, count: number, copies: number, expected: (i: number) => string): Promise<Phase> => {
      const logBefore = (await readFile(agentLog, 'utf8')).length;
      const before = await metrics(node);
      const from = Date.now();
      const t = performance.now();
      const attempts = await client<Attempt>(a, ['fresh', '--server', dns.ip, '--prefix', prefix, '--domain', DOMAIN, '--count', String(count), '--concurrency', String(CONCURRENCY), '--copies', String(copies), '--timeout-ms', '3000']);
      const seconds = (performance.now() - t) / 1000;
      const to = Date.now();
      const drops = dropsBetween(before, await metrics(node));
      const syncs = (await readFile(agentLog, 'utf8')).slice(logBefore).split('\n').filter((l) => /policy: revision \d+:/.test(l)).length;
      return { prefix, count, copies, expected, attempts, seconds, from, to, drops, syncs };
    };
    const fresh = await phase('n', NAMES, 1, freshAddress);
    const twins = TWINS > 0 ? await phase('t', TWINS, 2, twinAddress) : undefined;
    // The export is written as flows arrive: give it a moment to catch up.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const flows = await exportedFlows(flowDir);

    const load = loadavg();
    console.log(`dns-first: the first connection right after resolution, on the stand-in cluster (1 node, its agent's DNS proxy and datapath);`);
    console.log(`  client x/a, selected by a PalisadeNetworkPolicy whose only egress rule is toFQDNs *.${DOMAIN} on TCP 80; ${NAMES.toLocaleString('en')} fresh names n0..n${NAMES - 1}.${DOMAIN},`);
    console.log(`  each answering its own address in 198.18.0.0/22 (TTL ${TTL}) from the DNS server pod (dnsmasq), one external host answering on ${HOST_RANGE}; ${CONCURRENCY === 1 ? 'one name after the other' : `${CONCURRENCY} names at a time`}`);
    console.log(`  load average (1, 5, 15 min) ${loadBefore.map((l) => l.toFixed(2)).join(', ')} before, ${load.map((l) => l.toFixed(2)).join(', ')} after (the machine may be shared; a quiet machine gives the figures of record)`);
    console.log('');
    const reachOk = reach.filter((c) => c.ok).length;
    const deniedOk = denied.filter((c) => c.ok).length;
    console.log(`baseline: ${CONTROL} addresses of 198.18.4.0/24, which no name answers:`);
    console.log(`  from x/b (no policy selects it): ${reachOk} of ${CONTROL} connect (the range is routed and served)${reachOk < CONTROL ? `; failed: ${reach.filter((c) => !c.ok).slice(0, 5).map((c) => `${c.address} ${c.reason}`).join(', ')}` : ''}`);
    console.log(`  from x/a (the FQDN policy): ${deniedOk} of ${CONTROL} connect; the node's drops meanwhile: ${listDrops(dropsBetween(m0, m1))}`);
    console.log('');
    const freshFirst = report(`fresh names n0..n${NAMES - 1}, one lookup each`, fresh, flows);
    const twinsFirst = twins && report(`the same fresh name asked by two lookups at once (t0..t${TWINS - 1}, addresses in 198.18.5.0/24; as two pods or applications starting together)`, twins, flows);
    console.log(`cluster up in ${(startedMs / 1000).toFixed(1)} s, policy enforced at ${(readyMs / 1000).toFixed(1)} s; whole run ${((performance.now() - began) / 1000).toFixed(1)} s`);
    console.log('');
    const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1)}%`;
    console.log('targets:');
    console.log(`  target first-connection success right after resolution over ${NAMES.toLocaleString('en')} fresh names = 100%: ${freshFirst === NAMES ? 'PASS' : 'MISS'} (${pct(freshFirst, NAMES)}, ${freshFirst} of ${NAMES})`);
    if (twins) console.log(`  check: the same, a fresh name asked by two lookups at once = 100%: ${twinsFirst === 2 * TWINS ? 'PASS' : 'MISS'} (${pct(twinsFirst!, 2 * TWINS)}, ${twinsFirst} of ${2 * TWINS})`);
    console.log(`  control: connections to addresses no rule allows all fail (and succeed without the policy): ${deniedOk === 0 && reachOk === CONTROL ? 'PASS' : 'MISS'} (${deniedOk} of ${CONTROL} from x/a; ${reachOk} of ${CONTROL} from x/b)`);
  } finally {
    await guard.stop();
    await rm(flowDir, { recursive: true, force: true });
  }
}
