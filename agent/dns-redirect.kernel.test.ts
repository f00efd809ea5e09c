// The DNS proxy's redirect on the real programs attached to a pod's host-side
// veth between real namespaces (no cluster; docs/adr/0012-dns-redirect.md),
// driven through agent/dns-redirect.ts as the agent drives it:
//
//   pod (eth0 10.9.1.5) ─ veth ─ node (vp 10.9.1.1; vq 10.9.2.1; forwarding) ─ veth ─ upstream (eth0 10.9.2.53)
//
// The upstream answers DNS on UDP and TCP 53 with 192.0.2.1; the "proxy", a
// plain UDP and TCP server of the node on 10.9.1.1:5300 (what Node.js can
// open: no transparent socket), answers with 192.0.2.2 and prints where each
// query came from. The pod asks the upstream over a CONNECTED socket, which
// only takes answers from 10.9.2.53:53: an answer it gets from the proxy
// shows the source was translated back. While the lease runs the proxy
// answers; once it has expired (ended, or run out by the datapath's clock)
// the upstream does. Every namespace (with its veths and processes), the
// bpffs mount and the loader go away after the test, also when it fails;
// names carry this run's pal-<pid>-<random> prefix.
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { datapathConfig, ENDPOINT_FLAG, endpointInfo, ipcacheValue, ipv4Key, loadGlobals, REASON, sumMetrics, u32Key } from '../datapath/abi.ts';
import { Loader } from '../datapath/loader-client.ts';
import { ENDPOINT_OBJECT } from '../datapath/scratch-datapath.ts';
import { createNetns, deleteNetns, netnsPath, newRunId, sweepDeadRuns } from '../e2e/cluster/netns.ts';
import { DnsRedirect, planDnsProxy } from './dns-redirect.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const POD = '10.9.1.5';
const PROXY = '10.9.1.1';
const PROXY_PORT = 5300;
const UPSTREAM = '10.9.2.53';
const FROM_UPSTREAM = '192.0.2.1';
const FROM_PROXY = '192.0.2.2';

const run = newRunId();
const ns = { pod: `${run}-pod`, node: `${run}-node`, up: `${run}-up` };
const bpffs = join(tmpdir(), `${run}-bpffs`);
const cleanups: Array<() => Promise<unknown>> = [];
let loader: Loader;
let dns: DnsRedirect;
/** What the proxy printed: one `udp|tcp <source address>:<port>` line per query it got. */
const proxied: string[] = [];

const ip = (netns: string, ...args: string[]) => execa('ip', ['-n', netns, ...args]);

/** A DNS server on addr:port, UDP and TCP, answering every A query with `answer`; prints `ready`, then `udp|tcp <source>` per query. */
function dnsServer(addr: string, port: number, answer: string): string {
  return `
    const dgram = require('node:dgram'), net = require('node:net'), packet = require('dns-packet');
    const reply = (q) => packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
      questions: q.questions, answers: [{ type: 'A', name: q.questions[0].name, ttl: 30, data: '${answer}' }] });
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => { console.log('udp ' + r.address + ':' + r.port); u.send(reply(packet.decode(m)), r.port, r.address); });
    const t = net.createServer((c) => {
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        console.log('tcp ' + c.remoteAddress + ':' + c.remotePort);
        const answer = reply(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        const framed = Buffer.alloc(2 + answer.length);
        framed.writeUInt16BE(answer.length);
        answer.copy(framed, 2);
        c.end(framed);
      });
      c.on('error', () => {});
    });
    u.bind(${port}, '${addr}', () => t.listen(${port}, '${addr}', () => console.log('ready')));`;
}

/** Starts a Node script in a namespace whose stdout lines go to `lines`; resolves once it printed `ready`. */
async function serve(netns: string, script: string, lines: string[]): Promise<void> {
  const child = execa('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { cwd: REPO });
  child.stdout!.on('data', (chunk: Buffer) => lines.push(...String(chunk).split('\n').filter(Boolean)));
  child.catch(() => {}); // killed with its namespace
  for (let i = 0; i < 100 && !lines.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(lines.includes('ready'), `a server in ${netns} listens`);
}

/** The pod asks the upstream for example.com over a connected UDP socket or TCP: who answered (the source it saw) and what. */
async function ask(transport: 'udp' | 'tcp'): Promise<{ from: string; answers: string[] } | 'timeout'> {
  const script = transport === 'udp'
    ? `
      const packet = require('dns-packet'), s = require('node:dgram').createSocket('udp4');
      const query = packet.encode({ type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ type: 'A', name: 'example.com' }] });
      s.on('message', (m, r) => { console.log(JSON.stringify({ from: r.address + ':' + r.port, answers: packet.decode(m).answers.map((a) => a.data) })); process.exit(0); });
      s.connect(53, '${UPSTREAM}', () => s.send(query));
      setTimeout(() => { console.log('"timeout"'); process.exit(0); }, 2000);`
    : `
      const packet = require('dns-packet'), c = require('node:net').connect(53, '${UPSTREAM}');
      let buf = Buffer.alloc(0);
      c.on('connect', () => c.write(packet.streamEncode({ type: 'query', id: 4243, flags: packet.RECURSION_DESIRED, questions: [{ type: 'A', name: 'example.com' }] })));
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        console.log(JSON.stringify({ from: c.remoteAddress + ':' + c.remotePort, answers: packet.streamDecode(buf).answers.map((a) => a.data) }));
        process.exit(0);
      });
      c.on('error', (e) => { console.log(JSON.stringify(e.code)); process.exit(0); });
      setTimeout(() => { console.log('"timeout"'); process.exit(0); }, 2000);`;
  const out = await execa('ip', ['netns', 'exec', ns.pod, process.execPath, '-e', script], { cwd: REPO, timeout: 10_000 });
  return JSON.parse(String(out.stdout).trim());
}

async function counted(reason: number): Promise<bigint> {
  const entry = (await loader.dump('pal_metrics')).find((e) => u32Key.decode(e.key) === reason);
  return entry ? sumMetrics(entry.value).packets : 0n;
}

before(async () => {
  await sweepDeadRuns();
  cleanups.push(async () => {
    for (const name of Object.values(ns)) await deleteNetns(name);
  });
  for (const name of Object.values(ns)) await createNetns(name);
  await ip(ns.node, 'link', 'add', 'vp', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.pod);
  await ip(ns.node, 'link', 'add', 'vq', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.up);
  await execa('ip', ['netns', 'exec', ns.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [netns, dev, addr] of [[ns.node, 'vp', `${PROXY}/24`], [ns.node, 'vq', '10.9.2.1/24'], [ns.pod, 'eth0', `${POD}/24`], [ns.up, 'eth0', `${UPSTREAM}/24`]] as const) {
    await ip(netns, 'addr', 'add', addr, 'dev', dev);
    await ip(netns, 'link', 'set', dev, 'up');
  }
  await ip(ns.pod, 'route', 'add', 'default', 'via', PROXY);
  await ip(ns.up, 'route', 'add', 'default', 'via', '10.9.2.1');
  const vpIfindex = JSON.parse(String((await ip(ns.node, '-j', 'link', 'show', 'vp')).stdout))[0].ifindex as number;

  await mkdir(bpffs, { recursive: true });
  cleanups.push(() => rm(bpffs, { recursive: true, force: true }));
  await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
  cleanups.push(() => execa('umount', [bpffs]));
  loader = await Loader.start({ netns: netnsPath(ns.node), onLog: () => {} });
  cleanups.push(() => loader.close());
  await loader.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals({ hostReachesPods: true }) });
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: 1, flags: 0 }) }]);
  await loader.update('pal_ipcache4', [
    [POD, 300],
    [UPSTREAM, 400],
    [PROXY, 1],
  ].map(([addr, identity]) => ({ key: ipv4Key.encode(addr as string), value: ipcacheValue.encode({ identity: identity as number, flags: 0 }) })));
  // The pod: no policy selects it (its traffic passes, tracked), its DNS goes through the proxy.
  await loader.update('pal_endpoints', [{
    key: u32Key.encode(vpIfindex),
    value: endpointInfo.encode({ endpointId: 7, identity: 300, flags: ENDPOINT_FLAG.DNS_REDIRECT, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4: POD }),
  }]);
  await loader.attach(vpIfindex, 'pal_from_pod', 'ingress');
  await loader.attach(vpIfindex, 'pal_to_pod', 'egress');

  await serve(ns.up, dnsServer(UPSTREAM, 53, FROM_UPSTREAM), []);
  await serve(ns.node, dnsServer(PROXY, PROXY_PORT, FROM_PROXY), proxied);

  dns = await DnsRedirect.start({ loader });
  const plan = planDnsProxy({ proxyAddress: PROXY, upstreams: new Map([[UPSTREAM, PROXY_PORT]]) });
  assert.deepEqual(plan.problems, []);
  await dns.apply(plan);
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
});

test('with no lease yet, the pod\'s query reaches its upstream', async () => {
  assert.equal(await dns.alive(), false);
  assert.deepEqual(await ask('udp'), { from: `${UPSTREAM}:53`, answers: [FROM_UPSTREAM] });
  assert.deepEqual(proxied.filter((l) => l !== 'ready'), []);
});

test('while the lease runs, the proxy answers UDP and TCP queries, which the pod sees come from the upstream', async () => {
  const redirected = await counted(REASON.PASS_DNS_REDIRECT);
  await dns.renew(30);
  assert.equal(await dns.alive(), true);
  assert.deepEqual(await ask('udp'), { from: `${UPSTREAM}:53`, answers: [FROM_PROXY] });
  assert.deepEqual(await ask('tcp'), { from: `${UPSTREAM}:53`, answers: [FROM_PROXY] });
  const sources = proxied.filter((l) => l !== 'ready');
  assert.equal(sources.length, 2, sources.join(', '));
  assert.match(sources[0]!, new RegExp(`^udp ${POD.replaceAll('.', '\\.')}:\\d+$`), 'the proxy sees the pod as the source');
  assert.match(sources[1]!, new RegExp(`^tcp ${POD.replaceAll('.', '\\.')}:\\d+$`));
  assert.ok((await counted(REASON.PASS_DNS_REDIRECT)) - redirected >= 2n, 'counted as PASS_DNS_REDIRECT');
});

test('once the lease has ended, or run out by the datapath\'s clock, queries reach the upstream again', async () => {
  proxied.length = 0;
  await dns.expire();
  assert.deepEqual(await ask('udp'), { from: `${UPSTREAM}:53`, answers: [FROM_UPSTREAM] });
  assert.deepEqual(await ask('tcp'), { from: `${UPSTREAM}:53`, answers: [FROM_UPSTREAM] });

  await dns.renew(0.5);
  assert.deepEqual(await ask('udp'), { from: `${UPSTREAM}:53`, answers: [FROM_PROXY] });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(await dns.alive(), false);
  assert.deepEqual(await ask('udp'), { from: `${UPSTREAM}:53`, answers: [FROM_UPSTREAM] });
  assert.equal(proxied.length, 1, proxied.join(', '));
});
