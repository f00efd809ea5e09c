// Palisade installed as a user installs it (issue 9): `helm install` of
// helm/palisade on a fresh cluster of two real nodes (kubelet, containerd,
// runc, kube-proxy; e2e/cluster/real-cluster.ts) whose nodes have no CNI,
// with the image the Dockerfile builds. Then, on real pods: networking
// across nodes, the shared scenario examples and a selection of the
// project's, flows through the chart's aggregated API; `kubectl auth can-i`
// for every component's ServiceAccount; `helm upgrade` to another config
// that changes a pinned map, with probes running throughout; and
// `helm uninstall`, after which no node holds Palisade's CNI files, pins,
// programs or masquerade chain.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { listMasquerade } from '../../datapath/masquerade.ts';
import { probeAll } from '../cluster/probe.ts';
import { readyCondition, startRealCluster, type RealCluster } from '../cluster/real-cluster.ts';
import { installPalisade, realScenarioCluster, RELEASE, startRealPods, stopRealPods, uninstallPalisade, upgradePalisade } from '../cluster/real-pods.ts';
import { parseScenario } from '../scenario/format.ts';
import { scenarioOutcome } from '../scenario/report.ts';
import { runScenario } from '../scenario/runner.ts';
import type { ScenarioPod } from '../scenario/scenario-cluster.ts';

const ms = (t: number) => Math.round(performance.now() - t);
const shared = (name: string) => fileURLToPath(new URL(`../../../shared/scenarios/${name}`, import.meta.url));
const own = (name: string) => fileURLToPath(new URL(`../scenarios/${name}`, import.meta.url));
/** The shared examples, and the project's scenarios that cover the rest on real pods: deny-all, stacking, named ports, ipBlock of pod addresses, relabelling, replies, explanations, hosts outside the cluster. */
const SCENARIOS = [
  ...['01-egress-within-namespace', '02-named-udp-port-from-namespace', '03-egress-port-ranges', '04-ingress-ipblock-except', '05-labels-move-pods-in-and-out', '06-policy-types-default'].map((n) => shared(`examples/${n}.yaml`)),
  shared('next/07-explain-verdicts.yaml'),
  ...['13-deny-all-both-directions-then-delete', '34-ports-named-ingress', '40-ipblock-ingress-pod-ips', '50-stacked-policies-union', '62-label-namespace-into-and-out-of-peer', '71-stateful-replies', '70-explain-egress-and-ingress', '90-ipblock-external-hosts'].map((n) => own(`${n}.yaml`)),
];

describe('helm install on real nodes', { timeout: 20 * 60_000 }, () => {
  let cluster: RealCluster;

  before(async () => {
    const t = performance.now();
    cluster = await startRealCluster({ nodes: 2, images: ['testpod', 'palisade'] });
    console.log(`real cluster: started in ${ms(t)} ms (${JSON.stringify(cluster.timings)})`);
  });

  after(() => cluster?.stop());

  const nodeFiles = async (node: RealCluster['nodes'][number]) => ({
    conflists: (await node.exec(['ls', '/etc/cni/net.d'])).trim(),
    plugin: (await node.exec(['ls', '/opt/cni/bin'])).includes('palisade-cni'),
    pins: (await node.exec(['sh', '-c', 'ls /sys/fs/bpf/palisade 2>/dev/null || true'])).trim(),
  });

  it('installs with helm on nodes that have no CNI: the nodes turn Ready, the components Available', async () => {
    for (const node of (await cluster.core.listNode()).items) assert.match(readyCondition(node)?.message ?? '', /NetworkPluginNotReady/, 'NotReady before');
    const t = performance.now();
    const took = await installPalisade(cluster);
    console.log(`helm install: ${ms(t)} ms (image import ${Math.round(took.image)}, helm install --wait ${Math.round(took.helm)}, nodes Ready ${Math.round(took.nodesReady)})`);
    const status = JSON.parse(String((await cluster.kubectl(['get', 'daemonset,deployment', '-n', RELEASE.namespace, '-o', 'json'])).stdout)) as {
      items: Array<{ kind: string; metadata: { name: string }; status: { numberAvailable?: number; availableReplicas?: number } }>;
    };
    assert.deepEqual(status.items.map((i) => `${i.kind} ${i.metadata.name} ${i.status.numberAvailable ?? i.status.availableReplicas}`).sort(), [
      'DaemonSet palisade-agent 2', 'Deployment palisade-flows-api 2', 'Deployment palisade-operator 2',
    ]);
    for (const node of cluster.nodes) {
      const files = await nodeFiles(node);
      assert.equal(files.conflists, '05-palisade.conflist');
      assert.ok(files.plugin, `palisade-cni on ${node.name}`);
      assert.match(files.pins, /pal_policy/, `the agent's pins on ${node.name}`);
      // The agent, in its container, masquerades the node's pods leaving the cluster (routing.masquerade, default true).
      const chain = await listMasquerade({ kind: 'path', path: `/var/run/netns/${node.netns}` });
      assert.equal(chain?.jumps, 1, `the masquerade chain on ${node.name}`);
      assert.ok(chain?.chain.includes(`-A PALISADE-MASQUERADE ! -s ${node.podCidr} -j RETURN`), `${node.name}: ${chain?.chain.join('; ')}`);
    }
  });

  it('gives real pods addresses from their node\'s pod CIDR, and they reach each other across nodes', async () => {
    await cluster.core.createNamespace({ body: { metadata: { name: 'reach' } } });
    const t = performance.now();
    const pods = await startRealPods(cluster, [{ namespace: 'reach', name: 'a', labels: { pod: 'a' } }, { namespace: 'reach', name: 'b', labels: { pod: 'b' } }]);
    console.log(`two pods Ready with Palisade networking in ${ms(t)} ms`);
    for (const [i, pod] of pods.entries()) {
      const cidr = cluster.nodes[i]!.podCidr;
      assert.ok(pod.ip.startsWith(cidr.split('.').slice(0, 3).join('.')), `${pod.name} ${pod.ip} in ${cidr}`);
    }
    const outcomes = await probeAll([
      { from: pods[0]!, to: pods[1]!, port: 80, protocol: 'TCP' },
      { from: pods[1]!, to: pods[0]!, port: 81, protocol: 'UDP' },
    ]);
    assert.deepEqual(outcomes.map((o) => o.verdict), ['ok', 'ok']);
    await stopRealPods(cluster, pods);
    await cluster.core.deleteNamespace({ name: 'reach' });
  });

  it('passes the shared examples and a selection of the project\'s scenarios on real pods', async () => {
    const results: string[] = [];
    for (const file of SCENARIOS) {
      const t = performance.now();
      const scenario = parseScenario(await readFile(file, 'utf8'), file);
      const run = await runScenario(realScenarioCluster(cluster), scenario, file);
      const verdict = scenarioOutcome(run.probes, { sctpSupported: run.sctpSupported, errored: run.error !== undefined });
      results.push(`${verdict.outcome} ${scenario.name} (${ms(t)} ms)${run.error ? `: ${run.error.message}` : ''}${run.failures.length ? `\n${run.failures.join('\n')}` : ''}`);
    }
    console.log(results.join('\n'));
    assert.deepEqual(results.filter((r) => !r.startsWith('pass')), []);
  });

  it('gives each component\'s ServiceAccount exactly what it needs (kubectl auth can-i)', async () => {
    // RESOURCE#SUBRESOURCE for a subresource.
    const can = async (sa: string, verb: string, resource: string, namespace?: string) => {
      const [name, sub] = resource.split('#') as [string, string | undefined];
      const args = ['auth', 'can-i', verb, name, ...(sub ? [`--subresource=${sub}`] : []), `--as=system:serviceaccount:${RELEASE.namespace}:${sa}`];
      return String((await cluster.kubectl([...args, ...(namespace ? ['-n', namespace] : ['--all-namespaces'])], { reject: false })).stdout).trim();
    };
    const checks: Array<[string, string, string, string | undefined, 'yes' | 'no']> = [
      // The agent: reads what it enforces, writes its node's status and events; nothing else.
      ['palisade-agent', 'watch', 'networkpolicies.networking.k8s.io', undefined, 'yes'],
      ['palisade-agent', 'list', 'pods', undefined, 'yes'],
      ['palisade-agent', 'patch', 'palisadenodes.palisade.io#status', undefined, 'yes'],
      ['palisade-agent', 'delete', 'palisadenodes.palisade.io', undefined, 'no'],
      ['palisade-agent', 'create', 'networkpolicies.networking.k8s.io', 'default', 'no'],
      ['palisade-agent', 'get', 'secrets', 'default', 'no'],
      ['palisade-agent', 'delete', 'pods', 'default', 'no'],
      // The operator: identities and policy status; no pods to change, no secrets.
      ['palisade-operator', 'create', 'securityidentities.palisade.io', undefined, 'yes'],
      ['palisade-operator', 'update', 'leases.coordination.k8s.io/palisade-operator', RELEASE.namespace, 'yes'],
      ['palisade-operator', 'update', 'leases.coordination.k8s.io/kube-scheduler', RELEASE.namespace, 'no'],
      ['palisade-operator', 'delete', 'pods', 'default', 'no'],
      ['palisade-operator', 'get', 'secrets', RELEASE.namespace, 'no'],
      // The flow API: authorizes users and finds agents; nothing it could use to act.
      ['palisade-flows-api', 'create', 'subjectaccessreviews.authorization.k8s.io', undefined, 'yes'],
      ['palisade-flows-api', 'list', 'nodes', undefined, 'yes'],
      ['palisade-flows-api', 'create', 'pods', 'default', 'no'],
      ['palisade-flows-api', 'list', 'secrets', undefined, 'no'],
    ];
    const wrong: string[] = [];
    for (const [sa, verb, resource, ns, expected] of checks) {
      const got = await can(sa, verb, resource, ns);
      if (got !== expected) wrong.push(`${sa} ${verb} ${resource}${ns ? ` -n ${ns}` : ''}: ${got}, expected ${expected}`);
    }
    assert.deepEqual(wrong, []);
  });

  it('upgrades to a config that changes a pinned map, agents rolling one by one: no allowed connection fails, no denied one passes', async () => {
    await cluster.core.createNamespace({ body: { metadata: { name: 'upgrade' } } });
    const [client, intruder, server] = await startRealPods(cluster, ['a', 'b', 'c'].map((name) => ({ namespace: 'upgrade', name, labels: { pod: name } })));
    await cluster.kubeconfig.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({
      namespace: 'upgrade',
      body: { metadata: { name: 'c-from-a' }, spec: { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ _from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] } } as V1NetworkPolicy,
    });
    const round = async (c: ScenarioPod, i: ScenarioPod, s: ScenarioPod) => {
      const [allowed, denied] = await probeAll([{ from: c, to: s, port: 80, protocol: 'TCP' }, { from: i, to: s, port: 80, protocol: 'TCP' }], 1000);
      return `${allowed!.verdict}/${denied!.verdict}`;
    };
    const deadline = Date.now() + 30_000;
    while ((await round(client!, intruder!, server!)) !== 'ok/fail') assert.ok(Date.now() < deadline, 'the policy was never enforced');

    const rounds: string[] = [];
    let upgrading = true;
    const prober = (async () => {
      while (upgrading) rounds.push(await round(client!, intruder!, server!));
    })();
    const t = performance.now();
    await upgradePalisade(cluster, { set: { 'agent.flows.ringBytes': String(1 << 20) } });
    console.log(`helm upgrade (agents rolled, pal_flows remade at 1 MiB) in ${ms(t)} ms, ${rounds.length} probe rounds meanwhile`);
    upgrading = false;
    await prober;
    assert.ok(rounds.length >= 5, `only ${rounds.length} probe rounds during the upgrade`);
    assert.deepEqual(rounds.filter((r) => r !== 'ok/fail'), [], 'every round: allowed ok, denied fail');
    for (const node of cluster.nodes) {
      const ring = JSON.parse(await node.exec(['bpftool', 'map', 'show', 'pinned', '/sys/fs/bpf/palisade/pal_flows', '-j'])) as { max_entries: number };
      assert.equal(ring.max_entries, 1 << 20, `pal_flows on ${node.name}`);
      assert.doesNotMatch((await nodeFiles(node)).pins, /migrate/, `no old pin left on ${node.name}`);
    }
    await stopRealPods(cluster, [client!, intruder!, server!]);
  });

  it('uninstalls: no agent, no CNI configuration or plugin, no pins, no masquerade chain on any node', async () => {
    const t = performance.now();
    await uninstallPalisade(cluster);
    console.log(`helm uninstall in ${ms(t)} ms`);
    const left = String((await cluster.kubectl(['get', 'daemonset,deployment,apiservice', '-A', '-l', 'app.kubernetes.io/name=palisade', '-o', 'name'])).stdout).trim();
    assert.equal(left, '');
    for (const node of cluster.nodes) assert.deepEqual(await nodeFiles(node), { conflists: '', plugin: false, pins: '' }, node.name);
    // No tc program of Palisade's stays on a node's devices.
    for (const node of cluster.nodes) {
      const { stdout } = await execa('nsenter', [`--net=/var/run/netns/${node.netns}`, 'bpftool', 'net', 'show', '-j']);
      assert.doesNotMatch(String(stdout), /pal_/, `tc programs on ${node.name}`);
      assert.equal(await listMasquerade({ kind: 'path', path: `/var/run/netns/${node.netns}` }), undefined, `the masquerade chain on ${node.name}`);
    }
  });
});
