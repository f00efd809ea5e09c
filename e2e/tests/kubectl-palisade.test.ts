// `kubectl palisade` against a real cluster, as a user runs it (issue 8):
// traffic between pods shows up in `observe` with the right pods, verdicts,
// reasons and policy names in every output form; `policy trace` agrees
// with what the packets met, for every pair of a matrix, and with the
// kernel maps (no disagreement warning); `status` sees every agent; and a
// user whose Role allows flows of one namespace gets exit 3 anywhere wider.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkingV1Api, RbacAuthorizationV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import type { Flow } from '../../lib/flow.ts';
import { signCert } from '../cluster/certs.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { enforcedEverywhere } from '../cluster/node-status.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';

const PLUGIN = `${REPO_ROOT}cli/kubectl-palisade`;
let cluster: Cluster;
let pods: SimPod[];
let aliceConfig: string;

const run = (kubeconfig: string, ...args: string[]) => execa(PLUGIN, args, { env: { KUBECONFIG: kubeconfig }, reject: false });

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  for (const ns of ['shop', 'db']) await createNamespace(cluster, ns, { 'kubernetes.io/metadata.name': ns });
  pods = await startPods(cluster, [
    { namespace: 'shop', name: 'web', labels: { app: 'web' } },
    { namespace: 'db', name: 'pg', labels: { app: 'pg' } },
    { namespace: 'db', name: 'other', labels: { app: 'other' } },
  ]);
  const networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  let rv: string | undefined;
  for (const body of [
    { metadata: { name: 'pg-from-shop', namespace: 'db' }, spec: { podSelector: { matchLabels: { app: 'pg' } }, ingress: [{ _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } }], ports: [{ protocol: 'TCP', port: 80 }] }] } },
    { metadata: { name: 'web-egress', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'db' } }, podSelector: { matchLabels: { app: 'pg' } } }] }] } },
  ] as V1NetworkPolicy[]) {
    rv = (await networking.createNamespacedNetworkPolicy({ namespace: body.metadata!.namespace!, body })).metadata?.resourceVersion;
  }
  await enforcedEverywhere(cluster, 'NetworkPolicy', rv);

  // alice may read flows in shop only.
  const tls = { cert: join(cluster.runDir, 'alice.crt'), key: join(cluster.runDir, 'alice.key') };
  await signCert(cluster.controlPlane.certs, tls, { user: 'alice' });
  const rbac = cluster.kubeconfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace: 'shop', body: { metadata: { name: 'flows' }, rules: [{ apiGroups: ['flows.palisade.io'], resources: ['flows'], verbs: ['list', 'watch'] }, { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] } });
  await rbac.createNamespacedRoleBinding({ namespace: 'shop', body: { metadata: { name: 'alice' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'flows' }, subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }] } });
  const admin = JSON.parse(await readFile(cluster.controlPlane.adminKubeconfig, 'utf8')) as { clusters: unknown[] };
  aliceConfig = join(cluster.runDir, 'alice.kubeconfig');
  await writeFile(aliceConfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', clusters: admin.clusters,
    users: [{ name: 'alice', user: { 'client-certificate-data': (await readFile(tls.cert)).toString('base64'), 'client-key-data': (await readFile(tls.key)).toString('base64') } }],
    contexts: [{ name: 'alice', context: { cluster: 'palisade', user: 'alice', namespace: 'shop' } }], 'current-context': 'alice',
  }));
});

after(async () => {
  await cluster?.stop();
});

const id = (p: SimPod) => `${p.namespace}/${p.name}`;

test('policy trace agrees with what the packets met for every pair, and the kernel maps agree with it (no warning)', async () => {
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
  const outcomes = await probeAll(pairs.map(({ from, to }) => ({ from, to, port: 80, protocol: 'TCP' as const })), 500);
  const disagreements: string[] = [];
  for (const [i, { from, to }] of pairs.entries()) {
    const trace = await run(cluster.controlPlane.adminKubeconfig, 'policy', 'trace', '--from', id(from), '--to', id(to), '--port', '80', '--protocol', 'TCP');
    assert.ok(trace.exitCode === 0 || trace.exitCode === 1, `${id(from)} -> ${id(to)}: exit ${trace.exitCode}: ${trace.stderr}`);
    const traced = trace.exitCode === 0;
    const met = outcomes[i]!.verdict === 'ok';
    if (traced !== met) disagreements.push(`${id(from)} -> ${id(to)}: trace ${traced ? 'allowed' : 'denied'}, packets ${met ? 'connected' : 'blocked'}`);
    assert.doesNotMatch(String(trace.stderr), /disagree/i, `${id(from)} -> ${id(to)}: ${trace.stderr}`);
  }
  assert.deepEqual(disagreements, []);
  assert.ok(outcomes.some((o) => o.verdict === 'ok') && outcomes.some((o) => o.verdict !== 'ok'), 'the matrix has both verdicts');
});

test('observe shows the probes with their pods, verdicts, reasons and policies, as JSON lines, a table and compact lines', async () => {
  const [web, pg, other] = pods as [SimPod, SimPod, SimPod];
  await probeAll([{ from: web, to: pg, port: 80, protocol: 'TCP' }, { from: other, to: pg, port: 80, protocol: 'TCP' }], 500);
  let flows: Flow[] = [];
  for (let i = 0; i < 30; i++) {
    const json = await run(cluster.controlPlane.adminKubeconfig, 'observe', '-A', '--to-pod', 'db/pg', '--port', '80', '--since', '1m', '-o', 'json');
    assert.equal(json.exitCode, 0, json.stderr);
    flows = String(json.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
    if (flows.some((f) => f.verdict === 'dropped' && f.source.pod?.name === 'other')) break;
    await sleep(200);
  }
  const allowed = flows.find((f) => f.type === 'new' && f.direction === 'ingress' && f.source.pod?.name === 'web');
  assert.deepEqual(allowed && [allowed.verdict, allowed.reason, allowed.policies.map((p) => `${p.namespace}/${p.name}`)], ['forwarded', 'ALLOW_POLICY', ['db/pg-from-shop']]);
  const egress = flows.find((f) => f.type === 'new' && f.direction === 'egress' && f.source.pod?.name === 'web');
  assert.deepEqual(egress?.policies.map((p) => `${p.namespace}/${p.name}`), ['shop/web-egress']);
  const dropped = flows.find((f) => f.verdict === 'dropped' && f.source.pod?.name === 'other');
  assert.deepEqual(dropped && [dropped.direction, dropped.reason, dropped.defaultDeny], ['ingress', 'DROP_POLICY', true]);

  const table = await run(cluster.controlPlane.adminKubeconfig, 'observe', '-A', '--to-pod', 'db/pg', '--since', '1m');
  assert.equal(table.exitCode, 0, table.stderr);
  const rows = String(table.stdout).split('\n');
  assert.match(rows[0]!, /^TIME\s+NODE\s+VERDICT\s+DIR\s+SOURCE\s+DESTINATION\s+PROTO\s+REASON\s+POLICIES/);
  assert.ok(rows.some((r) => /dropped.*db\/other:\d+\s+db\/pg:80\s+TCP\s+DROP_POLICY\s+NetworkPolicy db\/pg-from-shop/.test(r)), rows.join('\n'));
  const compact = await run(cluster.controlPlane.adminKubeconfig, 'observe', '-A', '--to-pod', 'db/pg', '--verdict', 'dropped', '--since', '1m', '-o', 'compact');
  assert.equal(compact.exitCode, 0, compact.stderr);
  assert.ok(String(compact.stdout).split('\n').filter(Boolean).every((l) => / dropped /.test(l)), String(compact.stdout));
});

test('status sees both agents ready; a user allowed flows in shop only gets them there, and exit 3 anywhere wider', async () => {
  const status = await run(cluster.controlPlane.adminKubeconfig, 'status');
  assert.equal(status.exitCode, 0, status.stderr);
  assert.match(String(status.stdout), /node-1/);
  assert.match(String(status.stdout), /node-2/);
  const mine = await run(aliceConfig, 'observe', '-n', 'shop', '--since', '5m', '-o', 'json');
  assert.equal(mine.exitCode, 0, mine.stderr);
  for (const line of String(mine.stdout).split('\n').filter(Boolean)) {
    const f = JSON.parse(line) as Flow;
    assert.ok(f.source.pod?.namespace === 'shop' || f.destination.pod?.namespace === 'shop', line);
  }
  for (const args of [['observe', '-A'], ['observe', '-n', 'db']]) {
    const denied = await run(aliceConfig, ...args);
    assert.equal(denied.exitCode, 3, `${args.join(' ')}: ${denied.stderr}`);
    assert.match(String(denied.stderr), /forbid|RBAC/i);
  }
  const unknown = await run(cluster.controlPlane.adminKubeconfig, 'observe', '-n', 'nosuch');
  assert.equal(unknown.exitCode, 5, unknown.stderr);
  const malformed = await run(cluster.controlPlane.adminKubeconfig, 'observe', '-A', '--ip', '10.0.0.0/40');
  assert.equal(malformed.exitCode, 2, malformed.stderr);
  assert.match(String(malformed.stderr), /10\.0\.0\.0\/40/);
});
