// `npm run demo`: Palisade on one machine. Starts a real control plane and two
// simulated nodes running the agent, creates pods through the CNI plugin,
// shows their reachability matrix, applies a default deny and an allow by
// label, waits until the agents report them enforced, shows the matrix
// again, then the flows of that traffic as `kubectl palisade` shows them
// (live, and the drops with the policies behind them) and one policy trace,
// and leaves the cluster up for kubectl until Ctrl-C (or exits at once with
// --once). Everything is removed on exit.
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { startCluster, type Cluster } from './cluster/cluster.ts';
import { REPO_ROOT } from './cluster/paths.ts';
import type { SimPod } from './cluster/kubelet.ts';
import { probeAll } from './cluster/probe.ts';
import { createNamespace, startPods } from './cluster/workload.ts';
import { matrixOf, renderMatrix } from './scenario/matrix.ts';
import { EnforcementTracker } from './scenario/enforcement.ts';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';

const { values } = parseArgs({ options: { once: { type: 'boolean', default: false } } });
const say = (text = '') => console.log(text);

let cluster: Cluster | undefined;
let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('\nRemoving the cluster (namespaces, processes, mounts, files)...');
    await cluster?.stop();
  }
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown(0));

try {
  say('Starting a control plane (etcd + kube-apiserver) and two nodes running the Palisade agent...');
  const started = performance.now();
  cluster = await startCluster({ nodes: 2 });
  say(`  up in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  say('\nCreating pods: the kubelet stand-in calls the palisade-cni binary for each one...');
  const layout = { shop: ['web', 'api'], data: ['db', 'cache'] };
  for (const ns of Object.keys(layout)) await createNamespace(cluster, ns, { 'kubernetes.io/metadata.name': ns });
  const pods = await startPods(
    cluster,
    Object.entries(layout).flatMap(([namespace, names]) => names.map((name) => ({ namespace, name, labels: { app: name } }))),
  );
  const kubeconfig = cluster.controlPlane.adminKubeconfig;
  const kubectl = async (...args: string[]) => String((await execa('kubectl', ['--kubeconfig', kubeconfig, ...args])).stdout);
  say(await kubectl('get', 'pods', '-A', '-o', 'wide'));

  say('\nReachability, TCP port 80 (rows: from, columns: to; . = connected, X = blocked):');
  say(await matrixText(pods));

  say('\nApplying two NetworkPolicies in namespace data:');
  say('  default-deny: no pod of data accepts connections...');
  say('  db-from-api:  ...except db, from pods labelled app=api in namespace shop, on TCP 80');
  const networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  const enforcement = new EnforcementTracker();
  const started2 = performance.now();
  for (const body of [
    { metadata: { name: 'default-deny' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } },
    {
      metadata: { name: 'db-from-api' },
      spec: {
        podSelector: { matchLabels: { app: 'db' } },
        // The client library spells the rule's `from` field `_from`.
        ingress: [{ _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } }, podSelector: { matchLabels: { app: 'api' } } }], ports: [{ protocol: 'TCP', port: 80 }] }],
      },
    },
  ] as V1NetworkPolicy[]) {
    const created = await networking.createNamespacedNetworkPolicy({ namespace: 'data', body });
    enforcement.note('NetworkPolicy', created.metadata?.resourceVersion);
  }
  await enforcement.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
  say(`  enforced on both nodes ${(performance.now() - started2).toFixed(0)} ms after the first write (the agents' PalisadeNode status says so)`);
  say('\nReachability after:');
  say(await matrixText(pods));
  const palisade = async (...args: string[]) => {
    const result = await execa(`${REPO_ROOT}cli/kubectl-palisade`, args, { env: { KUBECONFIG: kubeconfig }, reject: false, all: true });
    return String(result.all);
  };
  say('\nLive flows while the matrix is probed again (kubectl palisade observe -A -f -o compact --protocol TCP):');
  const live = execa(`${REPO_ROOT}cli/kubectl-palisade`, ['observe', '-A', '-f', '-o', 'compact', '--protocol', 'TCP', '--type', 'new', '--type', 'drop'], { env: { KUBECONFIG: kubeconfig }, reject: false, all: true });
  await new Promise((resolve) => setTimeout(resolve, 2000)); // the plugin starts and opens its stream
  await matrixText(pods);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  live.kill('SIGTERM');
  say(String((await live).all).split('\n').slice(0, 25).join('\n'));
  say('\nThe drops into namespace data, with the policies behind them (kubectl palisade observe -n data --verdict dropped --last 8):');
  say(await palisade('observe', '-n', 'data', '--verdict', 'dropped', '--last', '8'));
  say('\nWould shop/web reach data/db on TCP 80? (kubectl palisade policy trace: the compiler\'s answer, checked against the kernel maps)');
  say(await palisade('policy', 'trace', '--from', 'shop/web', '--to', 'data/db', '--port', '80', '--protocol', 'TCP'));

  say('\nWhat the agents report (kubectl get palisadenodes):');
  say(await kubectl('get', 'palisadenodes'));

  say('\nNodes, with the pod CIDR each agent routes to:');
  say(await kubectl('get', 'nodes', '-o', 'custom-columns=NAME:.metadata.name,ADDRESS:.status.addresses[0].address,POD-CIDR:.spec.podCIDR'));

  say(`\nThe cluster is yours while this runs. In another shell:\n  export KUBECONFIG=${kubeconfig}\n  kubectl get nodes,pods -A -o wide\n  ${REPO_ROOT}cli/kubectl-palisade observe -A -f`);
  say(`Agent logs: ${cluster.runDir}/node-*/agent.log`);
  if (values.once) await shutdown(0);
  say('\nPress Ctrl-C to stop and clean up.');
  await new Promise(() => undefined);
} catch (error) {
  console.error(`demo failed: ${(error as Error).message}`);
  await shutdown(1);
}

async function matrixText(pods: SimPod[]): Promise<string> {
  const ids = pods.map((p) => `${p.namespace}/${p.name}`);
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to, port: 80, protocol: 'TCP' as const })));
  const outcomes = await probeAll(pairs);
  const verdict = new Map(pairs.map((p, i) => [`${p.from.namespace}/${p.from.name}>${p.to.namespace}/${p.to.name}`, outcomes[i]!.verdict]));
  return renderMatrix(matrixOf(ids, (from, to) => (from === to || verdict.get(`${from}>${to}`) === 'ok' ? '.' : 'X')));
}
