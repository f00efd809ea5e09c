// Flows through the Kubernetes API (issue 8): traffic between pods of a real
// cluster shows up at /apis/flows.palisade.io/v1alpha1 with its pods,
// verdict, hook and the policies behind it, merged from every node's agent;
// and RBAC decides who sees what: a user allowed to list flows in `shop`
// only sees flows with a pod of `shop` at one end, and is Forbidden
// anywhere wider. The flow API of an agent answers nobody but the flows-api.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, NetworkingV1Api, RbacAuthorizationV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { signCert } from '../cluster/certs.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { AGENT_FLOWS_PORT } from '../cluster/flows-api.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { enforcedEverywhere } from '../cluster/node-status.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import type { Flow } from '../../lib/flow.ts';

let cluster: Cluster;
let web: SimPod; // shop, node-1
let pg: SimPod; // db, node-2
let other: SimPod; // db, node-1
let alice: KubeConfig; // may list and watch flows in shop only

const BASE = '/apis/flows.palisade.io/v1alpha1';

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  for (const ns of ['shop', 'db']) await createNamespace(cluster, ns, { 'kubernetes.io/metadata.name': ns });
  [web, pg, other] = await startPods(cluster, [
    { namespace: 'shop', name: 'web', labels: { app: 'web' } },
    { namespace: 'db', name: 'pg', labels: { app: 'pg' } },
    { namespace: 'db', name: 'other', labels: { app: 'other' } },
  ]) as [SimPod, SimPod, SimPod];
  const policy: V1NetworkPolicy = {
    metadata: { name: 'allow-shop', namespace: 'db' },
    spec: {
      podSelector: { matchLabels: { app: 'pg' } },
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } }], ports: [{ protocol: 'TCP', port: 80 }] }],
    },
  } as V1NetworkPolicy;
  const created = await cluster.kubeconfig.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({ namespace: 'db', body: policy });
  await enforcedEverywhere(cluster, 'NetworkPolicy', created.metadata?.resourceVersion);

  // alice: a client certificate of the cluster CA, and a Role in shop only.
  const dir = join(cluster.runDir, 'alice');
  await execa('mkdir', ['-p', dir]);
  const tls = { cert: join(dir, 'alice.crt'), key: join(dir, 'alice.key') };
  await signCert(cluster.controlPlane.certs, tls, { user: 'alice', groups: ['shop-team'] });
  const rbac = cluster.kubeconfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace: 'shop', body: { metadata: { name: 'flow-reader' }, rules: [{ apiGroups: ['flows.palisade.io'], resources: ['flows'], verbs: ['list', 'watch'] }] } });
  await rbac.createNamespacedRoleBinding({
    namespace: 'shop',
    body: { metadata: { name: 'alice-flows' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'flow-reader' }, subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }] },
  });
  alice = new KubeConfig();
  alice.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${cluster.controlPlane.apiserverPort}`, caData: (await readFile(cluster.controlPlane.certs.caCert)).toString('base64') }],
    users: [{ name: 'alice', certData: (await readFile(tls.cert)).toString('base64'), keyData: (await readFile(tls.key)).toString('base64') }],
    contexts: [{ name: 'c', cluster: 'c', user: 'alice' }],
    currentContext: 'c',
  });

  const outcomes = await probeAll([
    { from: web, to: pg, port: 80, protocol: 'TCP' }, // allowed by db/allow-shop
    { from: other, to: pg, port: 80, protocol: 'TCP' }, // default deny at pg's ingress
    { from: web, to: pg, port: 81, protocol: 'TCP' }, // default deny: wrong port
  ], 500);
  assert.deepEqual(outcomes.map((o) => o.verdict === 'ok'), [true, false, false]);
});

after(async () => {
  await cluster?.stop();
});

async function get(kubeconfig: KubeConfig, path: string): Promise<{ status: number; body: any }> {
  const server = new URL(kubeconfig.getCurrentCluster()!.server);
  const options: RequestOptions = { host: server.hostname, port: server.port, path, headers: {} };
  await kubeconfig.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    request(options, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode!, body });
      });
    }).on('error', reject).end();
  });
}

const q = (criteria: object) => `criteria=${encodeURIComponent(JSON.stringify(criteria))}`;

/** The flows of a query, once the agents have them (flows arrive within a moment of the packets). */
async function flows(kubeconfig: KubeConfig, path: string, ready: (items: Flow[]) => boolean): Promise<Flow[]> {
  let items: Flow[] = [];
  for (let i = 0; i < 50; i++) {
    const { status, body } = await get(kubeconfig, path);
    assert.equal(status, 200, JSON.stringify(body));
    items = body.items;
    if (ready(items)) return items;
    await sleep(100);
  }
  return items;
}

const key = (p?: { namespace: string; name: string }) => (p ? `${p.namespace}/${p.name}` : '-');
const line = (f: Flow) => `${f.type} ${f.verdict} ${f.direction} ${key(f.source.pod)} -> ${key(f.destination.pod)}:${f.destination.port} [${f.policies.map((p) => `${p.kind} ${p.namespace}/${p.name}`).join(', ')}]${f.defaultDeny ? ' default-deny' : ''}`;

test('the connections to pg are explained: allowed by the policy at ingress, dropped by default deny naming the isolating policy', async () => {
  const items = await flows(cluster.kubeconfig, `${BASE}/namespaces/db/flows?${q({ toPods: ['db/pg'], protocols: ['TCP'] })}`, (list) => list.some((f) => f.verdict === 'dropped' && f.destination.port === 81));
  const lines = new Set(items.filter((f) => f.type !== 'update').map(line));
  assert.ok(lines.has('new forwarded ingress shop/web -> db/pg:80 [NetworkPolicy db/allow-shop]'), [...lines].join('\n'));
  assert.ok(lines.has('new forwarded egress shop/web -> db/pg:80 []'), 'the source side: no policy isolates web\'s egress');
  assert.ok(lines.has('drop dropped ingress db/other -> db/pg:80 [NetworkPolicy db/allow-shop] default-deny'), [...lines].join('\n'));
  assert.ok(lines.has('drop dropped ingress shop/web -> db/pg:81 [NetworkPolicy db/allow-shop] default-deny'), [...lines].join('\n'));
  const nodes = new Set(items.map((f) => f.node));
  assert.deepEqual([...nodes].sort(), ['node-1', 'node-2'], 'merged from both nodes: egress at the source\'s, ingress at pg\'s');
  assert.deepEqual(items.map((f) => f.time), items.map((f) => f.time).sort(), 'in time order');
});

test('a user who may list flows in shop sees only flows with a pod of shop, and is Forbidden in db and across the cluster', async () => {
  const items = await flows(alice, `${BASE}/namespaces/shop/flows?${q({})}`, (list) => list.length > 0);
  assert.ok(items.length > 0);
  for (const f of items) assert.ok(f.source.pod?.namespace === 'shop' || f.destination.pod?.namespace === 'shop', line(f));
  // Even when alice's own filter asks for db.
  const sneaky = await get(alice, `${BASE}/namespaces/shop/flows?${q({ namespaces: ['db'] })}`);
  assert.equal(sneaky.status, 200);
  for (const f of sneaky.body.items as Flow[]) assert.ok(f.source.pod?.namespace === 'shop' || f.destination.pod?.namespace === 'shop', line(f));
  for (const path of [`${BASE}/namespaces/db/flows`, `${BASE}/flows`, `${BASE}/agents`]) {
    const denied = await get(alice, path);
    assert.equal(denied.status, 403, path);
    assert.equal(denied.body.reason, 'Forbidden');
    assert.match(denied.body.message, /User "alice" cannot (list|watch)/);
  }
});

test('bad queries are errors that name what is wrong: an unknown namespace, a malformed CIDR', async () => {
  const unknown = await get(cluster.kubeconfig, `${BASE}/namespaces/nosuch/flows`);
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.message, /nosuch/);
  const filtered = await get(cluster.kubeconfig, `${BASE}/flows?${q({ namespaces: ['nosuch'] })}`);
  assert.equal(filtered.status, 404);
  const cidr = await get(cluster.kubeconfig, `${BASE}/flows?${q({ ips: ['10.0.0.0/99'] })}`);
  assert.equal(cidr.status, 400);
  assert.match(cidr.body.message, /10\.0\.0\.0\/99/);
});

test('every agent reports its status through the API; an agent\'s own flow API refuses anyone without the token', async () => {
  const { status, body } = await get(cluster.kubeconfig, `${BASE}/agents`);
  assert.equal(status, 200);
  assert.deepEqual(body.items.map((a: { node: string; reachable: boolean }) => [a.node, a.reachable]), [['node-1', true], ['node-2', true]]);
  assert.ok(body.items.every((a: { status: { flows: { stored: number } } }) => a.status.flows.stored >= 0));
  // From the control-plane namespace, straight at node-1's agent, with admin's valid cluster client certificate but no token.
  const node = cluster.nodes[0]!;
  const script = `require('node:https').get({ host: '${node.address}', port: ${AGENT_FLOWS_PORT}, path: '/v1/flows', rejectUnauthorized: false }, (r) => console.log(r.statusCode)).on('error', (e) => console.log(e.message))`;
  const result = await execa('ip', ['netns', 'exec', `${cluster.runId}-cp`, process.execPath, '-e', script], { reject: false });
  assert.equal(result.stdout.trim(), '401', result.stderr);
});

test('following through the API streams new flows as they happen, from every node', async () => {
  const server = new URL(cluster.kubeconfig.getCurrentCluster()!.server);
  const options: RequestOptions = { host: server.hostname, port: server.port, path: `${BASE}/namespaces/db/flows?follow=true&${q({ toPods: ['db/pg'], types: ['new', 'drop'] })}`, headers: {} };
  await cluster.kubeconfig.applyToHTTPSOptions(options);
  const lines: Array<{ flow?: Flow; missed?: number; error?: string }> = [];
  let partial = '';
  const req = request(options, (res) => {
    assert.equal(res.statusCode, 200);
    res.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const part of parts) if (part) lines.push(JSON.parse(part));
    });
  });
  req.on('error', () => undefined).end();
  try {
    await sleep(500); // the stream is open on both agents
    const before = lines.length;
    const [allowed, denied] = await probeAll([{ from: web, to: pg, port: 80, protocol: 'TCP' }, { from: other, to: pg, port: 81, protocol: 'TCP' }], 500);
    assert.deepEqual([allowed!.verdict === 'ok', denied!.verdict === 'ok'], [true, false]);
    const arrived = () => lines.slice(before).flatMap((l) => (l.flow ? [line(l.flow)] : []));
    for (let i = 0; i < 50 && !(arrived().some((l) => l.startsWith('new forwarded ingress shop/web')) && arrived().some((l) => l.startsWith('drop dropped ingress db/other'))); i++) await sleep(100);
    const seen = arrived();
    assert.ok(seen.includes('new forwarded ingress shop/web -> db/pg:80 [NetworkPolicy db/allow-shop]'), seen.join('\n'));
    assert.ok(seen.includes('drop dropped ingress db/other -> db/pg:81 [NetworkPolicy db/allow-shop] default-deny'), seen.join('\n'));
    assert.ok(seen.includes('new forwarded egress shop/web -> db/pg:80 []'), 'the egress side comes from the other node');
    assert.deepEqual(lines.filter((l) => l.error), []);
  } finally {
    req.destroy();
  }
});

test('what the kernel maps of pg\'s node say of a connection, through the API (policy trace\'s check), and only to whom RBAC allows', async () => {
  const ask = (kc: KubeConfig, peer: string, port: number) =>
    get(kc, `${BASE}/namespaces/db/verdicts?pod=pg&direction=ingress&peer=${peer}&protocol=TCP&port=${port}`);
  const allowed = await ask(cluster.kubeconfig, web.ip, 80);
  assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  assert.deepEqual([allowed.body.node, allowed.body.reason], [pg.node.name, 'ALLOW_POLICY']);
  assert.equal((await ask(cluster.kubeconfig, web.ip, 81)).body.reason, 'DROP_POLICY');
  assert.equal((await ask(cluster.kubeconfig, other.ip, 80)).body.reason, 'DROP_POLICY');
  assert.equal((await get(cluster.kubeconfig, `${BASE}/namespaces/db/verdicts?pod=nosuch&direction=ingress&peer=${web.ip}&protocol=TCP&port=80`)).status, 404);
  assert.equal((await ask(alice, web.ip, 80)).status, 403);
});
