// `npm run demo`: Palisade on one machine. Starts a real control plane and two
// simulated nodes running the agent, creates pods through the CNI plugin,
// shows their reachability matrix, and leaves the cluster up for kubectl
// until Ctrl-C (or exits at once with --once). Everything is removed on exit.
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { startCluster, type Cluster } from './cluster/cluster.ts';
import type { SimPod } from './cluster/kubelet.ts';
import { probeAll } from './cluster/probe.ts';
import { createNamespace, startPods } from './cluster/workload.ts';
import { matrixOf, renderMatrix } from './scenario/matrix.ts';

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

  say('\nNodes, with the pod CIDR each agent routes to:');
  say(await kubectl('get', 'nodes', '-o', 'custom-columns=NAME:.metadata.name,ADDRESS:.status.addresses[0].address,POD-CIDR:.spec.podCIDR'));

  say(`\nThe cluster is yours while this runs. In another shell:\n  export KUBECONFIG=${kubeconfig}\n  kubectl get nodes,pods -A -o wide`);
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
