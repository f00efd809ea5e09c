// A NetworkPolicy the API server accepts but that a node will not enforce as
// written (here: it needs more entries for one pod than an endpoint may have,
// the agent's --max-entries-per-endpoint, set low for the test) is enforced
// fail-closed for the pods it selects, never fail-open; it is reported in the
// node's PalisadeNode status and as a Warning event on the pod (`kubectl get
// events`); the agent keeps running; and fixing the policy clears the report
// and opens what the fixed policy allows. Port ranges, however wide, are no
// longer a reason: they cost a few port-prefix entries each.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { enforcedEverywhere, readyCondition } from '../cluster/node-status.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';

const NAMESPACE = 'bad';
/** The test's agents allow 40 entries per endpoint: a summary and 60 single ports need 61. */
const LIMIT = 40;
const MANY = Array.from({ length: 60 }, (_, i) => ({ port: 80 + 2 * i }));
/** A few single ports and a wide range: a handful of entries. */
const FEW = [{ port: 80 }, { port: 1000, endPort: 60000 }];

let cluster: Cluster;
let client: SimPod; // bad/a
let server: SimPod; // bad/b, selected by the policy
let bystander: SimPod; // bad/c, selected by nothing
let podUid = '';

const networking = () => cluster.kubeconfig.makeApiClient(NetworkingV1Api);

function policy(ports: Array<{ port: number; endPort?: number }>): V1NetworkPolicy {
  return {
    metadata: { name: 'big', namespace: NAMESPACE },
    spec: {
      podSelector: { matchLabels: { pod: 'b' } },
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: ports.map((p) => ({ protocol: 'TCP', ...p })) }],
    },
  } as V1NetworkPolicy;
}

async function verdict(from: SimPod, to: SimPod, port = 80): Promise<string> {
  const [outcome] = await probeAll([{ from, to, port, protocol: 'TCP' }], 300);
  return outcome!.verdict;
}

before(async () => {
  cluster = await startCluster({ nodes: 1, agentArgs: ['--max-entries-per-endpoint', String(LIMIT)] });
  await enforcedEverywhere(cluster, 'Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
  const pods = await startPods(cluster, ['a', 'b', 'c'].map((name) => ({ namespace: NAMESPACE, name, labels: { pod: name } })));
  [client, server, bystander] = [pods[0]!, pods[1]!, pods[2]!];
  podUid = (await cluster.core.readNamespacedPod({ namespace: NAMESPACE, name: 'b' })).metadata!.uid!;
  await enforcedEverywhere(cluster, 'Pod', server.resourceVersion);
  assert.equal(await verdict(client, server), 'ok', 'before any policy, a reaches b');
});

after(async () => {
  await cluster?.stop();
});

test('a policy too big for one endpoint is enforced fail-closed, not open', async () => {
  const created = await networking().createNamespacedNetworkPolicy({ namespace: NAMESPACE, body: policy(MANY) });
  await enforcedEverywhere(cluster, 'NetworkPolicy', created.metadata?.resourceVersion);
  // Port 80 is one of the ports: a fail-open agent would let a through.
  assert.equal(await verdict(client, server), 'fail', 'a -> b:80 while the policy is not enforceable');
  assert.equal(await verdict(client, bystander), 'ok', 'pods the policy does not select are untouched');
  assert.equal((await execa('kill', ['-0', String(server.node.agent.pid)], { reject: false })).exitCode, 0, 'the agent is still running');
});

test("the node's PalisadeNode status says which pod it cannot enforce and why", async () => {
  const ready = await readyCondition(cluster, server.node.name);
  assert.equal(ready.status, 'False');
  assert.match(ready.message, new RegExp(`bad/b: its policy needs 61 entries, more than the ${LIMIT} one endpoint may have; all its traffic is denied`));
});

test('a Warning event on the pod names the node and the reason, and kubectl get events shows it', async () => {
  const core = cluster.kubeconfig.makeApiClient(CoreV1Api);
  let events: Awaited<ReturnType<CoreV1Api['listNamespacedEvent']>>['items'] = [];
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    events = (await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: 'involvedObject.kind=Pod,involvedObject.name=b' })).items;
    if (events.some((e) => e.reason === 'EndpointFailClosed' && /more than the/.test(e.message ?? ''))) break;
  }
  const event = events.find((e) => e.reason === 'EndpointFailClosed' && /more than the/.test(e.message ?? ''));
  assert.ok(event, `no EndpointFailClosed event; events: ${JSON.stringify(events.map((e) => [e.reason, e.message]))}`);
  assert.equal(event.type, 'Warning');
  assert.equal(event.involvedObject.uid, podUid);
  assert.deepEqual(events.filter((e) => /not known yet/.test(e.message ?? '')).map((e) => e.message), [], 'CNI ADD learns the pod before any sync sees its endpoint: no spurious warning');
  assert.equal(event.message, `node ${server.node.name}: its policy needs 61 entries, more than the ${LIMIT} one endpoint may have; all its traffic is denied`);
  const listed = await execa('kubectl', ['--kubeconfig', cluster.controlPlane.adminKubeconfig, 'get', 'events', '-n', NAMESPACE, '--field-selector', 'involvedObject.name=b']);
  assert.match(String(listed.stdout), /Warning\s+EndpointFailClosed\s+pod\/b\s+.*more than the 40 one endpoint may have/);
});

test('fixing the policy clears the report and opens exactly what it now allows, a wide range included', async () => {
  const replaced = await networking().replaceNamespacedNetworkPolicy({ namespace: NAMESPACE, name: 'big', body: policy(FEW) });
  await enforcedEverywhere(cluster, 'NetworkPolicy', replaced.metadata?.resourceVersion);
  assert.equal(await verdict(client, server), 'ok', 'a -> b:80 is allowed');
  assert.equal(await verdict(client, server, 81), 'fail', 'a -> b:81 is not (it lies between 80 and the range)');
  assert.equal(await verdict(bystander, server), 'fail', 'c is not allowed by the policy');
  assert.deepEqual(await readyCondition(cluster, server.node.name), { status: 'True', message: 'enforcing' });
});
