// The agent's flow API over the real pipeline: events from the endpoint
// programs (test_run) through palisade-flow-reader, enriched into the store,
// served over HTTPS to the holder of the token only. A follower that never
// reads does not hold the agent up.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Server } from 'node:https';
import { DIRECTION, ENDPOINT_FLAG, endpointInfo, ipcacheValue, ipv4Key, policyKey, policyValue, POLICY_FLAG, PROTOCOL, u32Key } from '../../datapath/abi.ts';
import { ipv4Packet, TCP_SYN } from '../../datapath/packet.ts';
import { scratchDatapath, type ScratchDatapath } from '../../datapath/scratch-datapath.ts';
import type { Flow } from '../../lib/flow.ts';
import { ruleId } from '../datapath-plan.ts';
import { RuleIndex } from './enrich.ts';
import { FlowPipeline } from './pipeline.ts';
import { serveFlows } from './server.ts';

const TOKEN = 'the-aggregated-api-server';
const POD = '10.200.1.5';
const PEER = '10.200.2.9';
let datapath: ScratchDatapath;
let pipeline: FlowPipeline;
let server: Server;
let dir: string;
let ca: Buffer;
let port: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pal-flow-api-'));
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc', '-subj', '/CN=agent', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1']);
  ca = await readFile(join(dir, 'cert.pem'));
  datapath = await scratchDatapath('flow-api');
  const { loader } = datapath;
  await loader.update('pal_ipcache4', [[POD, 300], [PEER, 400]].map(([ip, identity]) => ({ key: ipv4Key.encode(ip as string), value: ipcacheValue.encode({ identity: identity as number, flags: 0 }) })));
  await loader.update('pal_endpoints', [{ key: u32Key.encode(1), value: endpointInfo.encode({ endpointId: 7, identity: 300, flags: ENDPOINT_FLAG.INGRESS_ENFORCED, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4: POD }) }]);
  const key = (protocol: number, dport: number) => policyKey.encode({ endpointId: 7, identity: 400, direction: DIRECTION.INGRESS, protocol, dport });
  const rule = { namespace: 'shop', name: 'allow-peer', direction: 'ingress' as const, index: 0 };
  await loader.update('pal_policy', [
    { key: key(0, 0), value: policyValue.encode({ ruleId: 0, flags: POLICY_FLAG.TCP_ANY_PORT }) },
    { key: key(PROTOCOL.TCP, 0), value: policyValue.encode({ ruleId: ruleId(rule), flags: 0 }) },
  ]);
  const rules = new RuleIndex();
  rules.setPolicy({ namespace: 'shop', name: 'allow-peer' }, { ingress: 1, egress: 0 });
  const pods: Record<string, string> = { [POD]: 'shop/web', [PEER]: 'shop/client' };
  pipeline = new FlowPipeline({
    loader,
    pinDir: datapath.pinDir,
    storeSize: 100_000,
    context: {
      node: 'node-1',
      endpoint: (ifindex) => (ifindex === 1 ? 'shop/web' : undefined),
      owner: (ip) => pods[ip],
      pod: (k) => ({ namespace: k.split('/')[0]!, name: k.split('/')[1]!, labels: { app: k.split('/')[1]! } }),
      rules,
      isolatedBy: (pod, direction) => (pod === 'shop/web' && direction === 'ingress' ? [{ namespace: 'shop', name: 'allow-peer' }] : undefined),
    },
    log: () => undefined,
  });
  server = await serveFlows({
    listen: { host: '127.0.0.1', port: 0 },
    cert: ca,
    key: await readFile(join(dir, 'key.pem')),
    token: TOKEN,
    node: 'node-1',
    pipeline,
    status: async () => ({ revision: 1 }),
    log: () => undefined,
    followQueue: 1000,
    followCutOff: 5000,
  });
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  if (server) {
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    await closed;
  }
  await pipeline?.stop();
  await datapath?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function get(path: string, token: string | null = TOKEN): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject).end();
  });
}

let next = 0;
/** n new connections from PEER, each on a tuple not used before (ports 1024.. then the next destination port). */
async function connect(n = 1): Promise<void> {
  for (let i = 0; i < n; i++, next++) {
    const sport = 1024 + (next % 64_000);
    const dport = 80 + Math.floor(next / 64_000);
    await datapath.loader.testRun('pal_to_pod', ipv4Packet({ saddr: PEER, daddr: POD, protocol: 'TCP', sport, dport, tcpFlags: TCP_SYN }));
  }
}

async function flows(criteria: object = {}): Promise<Flow[]> {
  const { status, body } = await get(`/v1/flows?criteria=${encodeURIComponent(JSON.stringify(criteria))}`);
  assert.equal(status, 200, body);
  return (JSON.parse(body) as { flows: Flow[] }).flows;
}

test('without the token, or with another, nothing is served', async () => {
  assert.equal((await get('/v1/flows', null)).status, 401);
  assert.equal((await get('/v1/flows', 'guess')).status, 401);
  assert.equal((await get('/v1/status', `${TOKEN}x`)).status, 401);
});

test('a connection the datapath admitted is served as an enriched flow, filtered as asked', async () => {
  await connect();
  let seen: Flow[] = [];
  for (let i = 0; i < 100 && seen.length === 0; i++, await sleep(20)) seen = await flows({ fromPods: ['shop/client'] });
  assert.equal(seen.length, 1);
  const [flow] = seen;
  assert.deepEqual([flow!.type, flow!.verdict, flow!.direction, flow!.source.pod, flow!.destination.pod, flow!.policies], [
    'new', 'forwarded', 'ingress', { namespace: 'shop', name: 'client' }, { namespace: 'shop', name: 'web' }, [{ kind: 'NetworkPolicy', namespace: 'shop', name: 'allow-peer' }],
  ]);
  assert.deepEqual(await flows({ toPods: ['shop/client'] }), []);
});

test('a malformed filter is a 400 that names it', async () => {
  const { status, body } = await get(`/v1/flows?criteria=${encodeURIComponent(JSON.stringify({ ips: ['10.0.0.0/40'] }))}`);
  assert.equal(status, 400);
  assert.match(body, /10\.0\.0\.0\/40/);
});

test('a follower gets new flows as they come; one that never reads is cut off while queries keep being answered at once', async () => {
  // A follower that reads.
  const lines: string[] = [];
  let partial = '';
  const live = request({ host: '127.0.0.1', port, path: '/v1/flows?follow=true', ca, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
    res.setEncoding('utf8').on('data', (c: string) => {
      const parts = (partial + c).split('\n');
      partial = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    });
  });
  live.end();
  // A follower that never reads: its socket fills, its queue overflows.
  const stuck = request({ host: '127.0.0.1', port, path: '/v1/flows?follow=true', ca, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => res.pause());
  stuck.on('error', () => undefined).end();
  await sleep(200);
  const before = lines.length;
  await connect(3000);
  const started = Date.now();
  const answered = await flows({ fromPods: ['shop/client'] });
  assert.ok(Date.now() - started < 2000, 'a query is answered while a follower is stuck');
  assert.ok(answered.length >= 3000);
  // The reading follower's queue (1,000 here) may overflow in a burst: what it got and what it was told it missed make up every flow.
  const accounted = () => lines.slice(before).reduce((n, line) => n + ((JSON.parse(line) as { missed?: number }).missed ?? 1), 0);
  for (let i = 0; i < 100 && accounted() < 3000; i++) await sleep(50);
  assert.equal(accounted(), 3000, 'the reading follower got every flow or was told it missed it');
  // The kernel's socket buffers take megabytes before the stuck one holds anything back: go on until it is cut off.
  let more = 0;
  for (; pipeline.store.followers > 1 && more < 40_000; more += 2000) await connect(2000);
  // Cut off: the store no longer queues for it and the agent closed its side (the client, which reads nothing, cannot see the close).
  assert.equal(pipeline.store.followers, 1, `the store stopped queueing for the stuck follower (after ${3000 + more} flows)`);
  assert.ok(pipeline.consumerMissed > 0, 'what it missed is counted');
  live.destroy();
  stuck.destroy();
});
