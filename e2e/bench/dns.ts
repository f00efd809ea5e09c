// `npm run bench -- dns`: the DNS path's figures (issue 10 item 8).
//
// 1. Latency the proxy adds: a client process alternates A queries sent
//    straight to a DNS server process and sent through the agent's proxy
//    (agent/dns/proxy.ts) on loopback, same names, in one run: p50 and p99
//    of each and of the difference. With names already learned (the steady
//    state: the answer is released without a sync), and with fresh names
//    (each answer learned: the compiler's work and the ipcache plan of a
//    sync, not the kernel map write, which `npm run bench -- sync` measures).
// 2. Memory and time of learning 100,000 names on a node whose 10,000 pods
//    FQDN rules select (a simulation: the compiler and the cache, no kernel).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Compiler } from '../../policy/compile.ts';
import { validatePalisadePolicy } from '../../policy/palisade-policy.ts';
import type { PalisadePolicyInput } from '../../policy/types.ts';
import { DnsCache } from '../../agent/dns/dns-cache.ts';
import { dnsAllows } from '../../agent/dns/dns-policy.ts';
import { DnsProxy } from '../../agent/dns/proxy.ts';
import { heapUsed } from './heap.ts';
import { percentile } from './stats.ts';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const ROUNDS = Number(process.env.PAL_BENCH_ROUNDS ?? 5);
const QUERIES = Number(process.env.PAL_BENCH_DNS_QUERIES ?? 2000);
const ms = (us: number) => `${(us / 1000).toFixed(3)} ms`;

function policy(namespace: string, name: string, spec: unknown): PalisadePolicyInput {
  const v = validatePalisadePolicy({ kind: 'PalisadeNetworkPolicy', spec });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return { kind: 'PalisadeNetworkPolicy', namespace, name, spec: v.spec };
}

async function child(script: string, args: string[]): Promise<{ out: Promise<string>; firstLine: Promise<string>; kill(): void }> {
  const p = spawn(process.execPath, [here(script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  let resolveFirst: (line: string) => void;
  const firstLine = new Promise<string>((r) => (resolveFirst = r));
  p.stdout.on('data', (d: Buffer) => {
    text += d.toString();
    if (text.includes('\n')) resolveFirst(text.slice(0, text.indexOf('\n')));
  });
  const out = once(p, 'exit').then(() => text);
  return { out, firstLine, kill: () => p.kill() };
}

async function latency(): Promise<void> {
  const upstream = await child('dns-upstream.ts', ['127.0.0.2']);
  const upstreamPort = Number(await upstream.firstLine);
  // The node as the agent sees it: the client pod (at 127.0.0.1) selected by an FQDN rule, the DNS server's pod.
  const c = new Compiler({ node: 'n1' });
  c.setNamespace({ name: 'bench', labels: {} });
  c.setNamespace({ name: 'kube-system', labels: {} });
  c.setIdentities(new Map());
  c.setPod({ namespace: 'bench', name: 'client', labels: { app: 'client' }, ip: '127.0.0.1', node: 'n1', containerPorts: [] });
  c.setPod({ namespace: 'kube-system', name: 'dns', labels: { 'k8s-app': 'kube-dns' }, ip: '127.0.0.2', node: 'n1', containerPorts: [] });
  c.setIdentities(new Map(c.missingIdentities().map((k, i) => [k, 300 + i])));
  c.setPalisadePolicy(policy('bench', 'to-bench', { endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: '**.bench.example.com' }] }] }));
  const cache = new DnsCache({ minTtlSeconds: 2, maxTtlSeconds: 86400, apply: (n, a) => c.setDnsName(n, a), inUse: () => false });
  let synced = 0;
  const proxy = new DnsProxy({
    address: '127.0.0.1',
    upstreamPort,
    allows: (client, up, name, protocol) => {
      const owner = c.podAt(client);
      return dnsAllows(owner && c.result(owner.pod), { address: up, identity: c.podAt(up)?.identity ?? 2 }, protocol, name, (r) => c.dnsRestriction(r));
    },
    learn: async (facts) => {
      let changed = false;
      for (const [name, { addresses, ttl }] of facts.names) if (c.dnsNameWanted(name) && cache.learn(name, addresses, ttl, Date.now())) changed = true;
      if (changed) {
        // What a sync computes before it writes: the changed endpoints and the ipcache.
        c.endpointsChangedSince(0);
        c.ipcache();
        synced++;
      }
    },
  });
  await proxy.setUpstreams(new Map([['127.0.0.2', 0]]));
  const proxyPort = proxy.ports().get('127.0.0.2')!;
  try {
    for (const mode of ['known', 'fresh'] as const) {
      const p50s: number[][] = [[], [], []];
      const p99s: number[][] = [[], [], []];
      for (let round = 0; round < ROUNDS; round++) {
        const client = await child('dns-client.ts', ['127.0.0.2', String(upstreamPort), String(proxyPort), String(QUERIES), mode]);
        const pairs = (await client.out).trim().split('\n').map((l) => JSON.parse(l) as [number, number]).slice(Math.floor(QUERIES / 10));
        const direct = pairs.map((p) => p[0]);
        const proxied = pairs.map((p) => p[1]);
        const added = pairs.map((p) => p[1] - p[0]);
        for (const [i, xs] of [direct, proxied, added].entries()) {
          p50s[i]!.push(percentile(xs, 50));
          p99s[i]!.push(percentile(xs, 99));
        }
      }
      const med = (xs: number[]) => percentile(xs, 50);
      console.log(`dns: ${mode === 'known' ? 'names already learned (answer released at once)' : 'fresh names (each answer learned: compiler and ipcache plan)'}, ${QUERIES} queries x ${ROUNDS} rounds, medians over rounds:`);
      console.log(`  direct:        p50 ${ms(med(p50s[0]!))}, p99 ${ms(med(p99s[0]!))}`);
      console.log(`  through proxy: p50 ${ms(med(p50s[1]!))}, p99 ${ms(med(p99s[1]!))}`);
      console.log(`  added:         p50 ${ms(med(p50s[1]!) - med(p50s[0]!))}, p99 ${ms(med(p99s[1]!) - med(p99s[0]!))} (per query: p50 ${ms(med(p50s[2]!))}, p99 ${ms(med(p99s[2]!))})`);
    }
    console.log(`  (${synced} answers learned; ${cache.size} addresses cached)`);
  } finally {
    await proxy.stop();
    upstream.kill();
  }
}

function memory(): void {
  const PODS = 10_000;
  const NAMES = 100_000;
  const c = new Compiler({ node: 'n1' });
  const base = heapUsed();
  for (let n = 0; n < 100; n++) c.setNamespace({ name: `ns${n}`, labels: {} });
  for (let i = 0; i < PODS; i++) {
    c.setPod({ namespace: `ns${i % 100}`, name: `p${i}`, labels: { app: `a${i % 20}` }, ip: `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, node: 'n1', containerPorts: [] });
  }
  c.setIdentities(new Map(c.missingIdentities().map((k, i) => [k, 300 + i])));
  // Every pod selected by FQDN rules: per namespace, its apps may reach their own zone, and everyone the shared CDN.
  for (let n = 0; n < 100; n++) {
    c.setPalisadePolicy(policy(`ns${n}`, 'fqdn', { endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: `*.zone${n % 10}.example.com` }, { matchPattern: '**.cdn.example.net' }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] }));
  }
  c.snapshot();
  const compiled = heapUsed();
  const cache = new DnsCache({ minTtlSeconds: 2, maxTtlSeconds: 86400, apply: (n, a) => c.setDnsName(n, a), inUse: () => false });
  const times: number[] = [];
  for (let i = 0; i < NAMES; i++) {
    const name = i % 2 ? `h${i}.zone${i % 10}.example.com` : `e${i}.edge.cdn.example.net`;
    const t = performance.now();
    cache.learn(name, [`203.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`], 60, 0);
    times.push(performance.now() - t);
  }
  let t = performance.now();
  const { changed, generation } = c.endpointsChangedSince(0);
  const recompileMs = performance.now() - t;
  t = performance.now();
  const ipcache = c.ipcache();
  const ipcacheMs = performance.now() - t;
  // One more name of a known set, as a steady-state answer: what its sync computes.
  cache.learn('late.zone1.example.com', ['198.51.100.7'], 60, 0);
  t = performance.now();
  const late = c.endpointsChangedSince(generation);
  c.ipcache();
  const lateMs = performance.now() - t;
  const learned = heapUsed();
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(`dns: ${NAMES.toLocaleString('en')} learned names on a node whose ${PODS.toLocaleString('en')} pods 200 FQDN selectors select (simulation: compiler and cache):`);
  console.log(`  heap: cluster and policies compiled ${mib(compiled - base)}; + 100k names learned ${mib(learned - compiled)} (${Math.round((learned - compiled) / NAMES)} B per name)`);
  console.log(`  learning one name (cache + compiler): p50 ${(percentile(times, 50) * 1000).toFixed(1)} us, p99 ${(percentile(times, 99) * 1000).toFixed(1)} us`);
  console.log(`  then the sync's work: ${changed.length} endpoints recompiled in ${recompileMs.toFixed(0)} ms (new selector sets), the ipcache of ${ipcache.size.toLocaleString('en')} addresses in ${ipcacheMs.toFixed(0)} ms`);
  console.log(`  one more name of a known set: ${late.changed.length} endpoints changed; the sync's compiler work ${lateMs.toFixed(0)} ms`);
  console.log(`  policy entries of one endpoint: ${c.result('ns0/p0')!.egress!.entryCount.policy} (the selector sets' identities, not one per address)`);
}

export async function benchDns(): Promise<void> {
  await latency();
  memory();
}
