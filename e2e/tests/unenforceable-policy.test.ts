// A NetworkPolicy the API server accepts but Palisade cannot enforce exactly
// (here a port range wider than the agent expands, but not all ports) is
// enforced fail-closed for the pods it selects, never fail-open; it is
// reported in the node's PalisadeNode status and as a Warning event on the
// policy (`kubectl get events`); the agent keeps running; and fixing
// the policy clears the report and opens what the fixed policy allows.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, CustomObjectsApi, NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

const NAMESPACE = 'bad';
/** 1-5000: wider than the 4,096 ports a range may expand to, and not "all ports". */
const WIDE = { port: 1, endPort: 5000 };
const NARROW = { port: 1, endPort: 4000 };

let cluster: Cluster;
let client: SimPod; // bad/a
let server: SimPod; // bad/b, selected by the policy
let bystander: SimPod; // bad/c, selected by nothing
let policyUid = '';

const networking = () => cluster.kubeconfig.makeApiClient(NetworkingV1Api);

function policy(ports: { port: number; endPort: number }): V1NetworkPolicy {
  return {
    metadata: { name: 'wide', namespace: NAMESPACE },
    spec: {
      podSelector: { matchLabels: { pod: 'b' } },
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ protocol: 'TCP', ...ports }] }],
    },
  } as V1NetworkPolicy;
}

async function enforced(kind: string, resourceVersion: string | undefined): Promise<void> {
  const tracker = new EnforcementTracker();
  tracker.note(kind, resourceVersion);
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
}

async function nodeReady(): Promise<{ status: string; message: string }> {
  const node = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).getClusterCustomObject({
    group: 'palisade.io',
    version: 'v1alpha1',
    plural: 'palisadenodes',
    name: server.node.name,
  })) as { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } };
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return { status: ready?.status ?? 'missing', message: ready?.message ?? '' };
}

async function verdict(from: SimPod, to: SimPod): Promise<string> {
  const [outcome] = await probeAll([{ from, to, port: 80, protocol: 'TCP' }], 300);
  return outcome!.verdict;
}

before(async () => {
  cluster = await startCluster({ nodes: 1 });
  await enforced('Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
  const pods = await startPods(cluster, ['a', 'b', 'c'].map((name) => ({ namespace: NAMESPACE, name, labels: { pod: name } })));
  [client, server, bystander] = [pods[0]!, pods[1]!, pods[2]!];
  await enforced('Pod', server.resourceVersion);
  assert.equal(await verdict(client, server), 'ok', 'before any policy, a reaches b');
});

after(async () => {
  await cluster?.stop();
});

test('a policy with a port range too wide to expand is enforced fail-closed, not open', async () => {
  const created = await networking().createNamespacedNetworkPolicy({ namespace: NAMESPACE, body: policy(WIDE) });
  policyUid = created.metadata!.uid!;
  await enforced('NetworkPolicy', created.metadata?.resourceVersion);
  // Port 80 is inside 1-5000: a fail-open agent would let a through.
  assert.equal(await verdict(client, server), 'fail', 'a -> b:80 while the range is not enforceable');
  assert.equal(await verdict(client, bystander), 'ok', 'pods the policy does not select are untouched');
  assert.equal((await execa('kill', ['-0', String(server.node.agent.pid)], { reject: false })).exitCode, 0, 'the agent is still running');
});

test("the node's PalisadeNode status says which policy, rule and range it cannot enforce", async () => {
  const ready = await nodeReady();
  assert.equal(ready.status, 'False');
  assert.match(ready.message, /bad\/b: bad\/wide\/ingress\/0 allows ports 1-5000, wider than 4096 \(but not all ports\); not enforced: denied/);
});

test('a Warning event on the policy names the rule, the range, the node and the pods, and kubectl get events shows it', async () => {
  const core = cluster.kubeconfig.makeApiClient(CoreV1Api);
  let events: Awaited<ReturnType<CoreV1Api['listNamespacedEvent']>>['items'] = [];
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    events = (await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: 'involvedObject.kind=NetworkPolicy,involvedObject.name=wide' })).items;
    if (events.some((e) => e.reason === 'PolicyNotEnforced')) break;
  }
  const event = events.find((e) => e.reason === 'PolicyNotEnforced');
  assert.ok(event, `no PolicyNotEnforced event; events: ${JSON.stringify(events.map((e) => [e.reason, e.message]))}`);
  assert.equal(event.type, 'Warning');
  assert.equal(event.involvedObject.uid, policyUid);
  assert.equal(event.message, `bad/wide/ingress/0 allows ports 1-5000, wider than 4096 (but not all ports); not enforced: denied, for 1 pod on node ${server.node.name}: bad/b`);
  const listed = await execa('kubectl', ['--kubeconfig', cluster.controlPlane.adminKubeconfig, 'get', 'events', '-n', NAMESPACE, '--field-selector', 'involvedObject.name=wide']);
  assert.match(String(listed.stdout), /Warning\s+PolicyNotEnforced\s+networkpolicy\/wide\s+.*wider than 4096/);
});

test('fixing the policy clears the report and opens exactly what it now allows', async () => {
  const replaced = await networking().replaceNamespacedNetworkPolicy({ namespace: NAMESPACE, name: 'wide', body: policy(NARROW) });
  await enforced('NetworkPolicy', replaced.metadata?.resourceVersion);
  assert.equal(await verdict(client, server), 'ok', 'a -> b:80 is inside 1-4000');
  assert.equal(await verdict(bystander, server), 'fail', 'c is not allowed by the policy');
  assert.deepEqual(await nodeReady(), { status: 'True', message: 'enforcing' });
});
