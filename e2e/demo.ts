// `npm run demo`: Palisade installed the way a user installs it, on one
// machine. Starts a cluster of two real nodes (kubelet, containerd, runc,
// kube-proxy; e2e/cluster/real-cluster.ts) that has no CNI, so its nodes are
// NotReady; installs Palisade with `helm install` of helm/palisade (the
// image the Dockerfile builds, made here by scripts/build-images.sh) and
// shows the chart's NOTES and the nodes turning Ready; creates pods in two
// namespaces, shows their reachability matrix, applies a default deny and an
// allow by label, waits until the agents report them enforced, shows the
// matrix again, then the flows of that traffic as `kubectl palisade` shows
// them (live, and the drops with the policies behind them) and one policy
// trace. It leaves the cluster up for kubectl until Ctrl-C (or exits at once
// with --once). Everything is removed on exit, whenever Ctrl-C comes.
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { REPO_ROOT } from './cluster/paths.ts';
import { probeAll } from './cluster/probe.ts';
import { readyCondition, startRealCluster, type RealCluster } from './cluster/real-cluster.ts';
import { INSTALL_COMMAND, installPalisade, RELEASE, startRealPods } from './cluster/real-pods.ts';
import { forever, StopOnSignal } from './cluster/stop-on-signal.ts';
import { matrixOf, renderMatrix } from './scenario/matrix.ts';
import { EnforcementTracker } from './scenario/enforcement.ts';
import type { ScenarioPod } from './scenario/scenario-cluster.ts';

const { values } = parseArgs({ options: { once: { type: 'boolean', default: false } } });
const say = (text = '') => console.log(text);
const indent = (text: string, by = '  ') => text.trimEnd().replace(/^/gm, by);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const demoStarted = performance.now();
const lifetime = new StopOnSignal<RealCluster>(say, 0);

const POLICIES = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: default-deny, namespace: data }
spec:
  podSelector: {}          # every pod of namespace data...
  policyTypes: [Ingress]   # ...accepts no connection
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: db-from-api, namespace: data }
spec:
  podSelector: { matchLabels: { app: db } }
  ingress:                 # ...except db, from app=api in namespace shop, on TCP 80
    - from:
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: shop } }
          podSelector: { matchLabels: { app: api } }
      ports: [{ protocol: TCP, port: 80 }]
`;

try {
  say('Starting a Kubernetes cluster on this machine: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,');
  say('and two nodes, each a kubelet with containerd and runc, and kube-proxy, in a network and mount namespace of its own.');
  say('No CNI is installed yet.');
  const cluster = await lifetime.start(() => startRealCluster({ nodes: 2, images: ['testpod', 'palisade'] }));
  const t = cluster.timings;
  say(`  up in ${seconds(t.total)} (images ${seconds(t.images)}, control plane ${seconds(t.controlPlane)}, controllers and nodes ${seconds(Math.max(t.controllers, t.nodes))})`);
  const kubectl = async (...args: string[]) => String((await cluster.kubectl(args)).stdout);
  const show = async (...args: string[]) => say(`\n$ kubectl ${args.join(' ')}\n${await kubectl(...args)}\n`);

  await show('get', 'nodes', '-o', 'wide');
  const why = readyCondition((await cluster.core.listNode()).items[0]!)?.message ?? '';
  say(`They are NotReady until a CNI plugin is installed; the kubelet says: ${/NetworkPluginNotReady message:[^,\]]*/.exec(why)?.[0] ?? why}`);

  say('\nInstalling Palisade with its Helm chart. Its image (docker.io/palisade/palisade:dev) was built here from the');
  say('Dockerfile by scripts/build-images.sh and is in each node\'s containerd already: nothing is pulled.');
  say(`\n$ ${INSTALL_COMMAND}`);
  const watching = watchNodesReady(cluster);
  const installed = await installPalisade(cluster, { importImage: false });
  await watching.stop();
  say(indent(installed.output, '  | '));
  say(`  helm install --wait returned after ${seconds(installed.helm)}: the agent DaemonSet on every node, the operator and the flow API up.`);
  await show('get', 'pods', '-n', RELEASE.namespace, '-o', 'wide', '-l', 'app.kubernetes.io/name=palisade');
  await show('get', 'nodes');

  say('Creating pods (namespaces shop and data; the testpod image serves TCP and UDP on ports 80 and 81): the kubelet');
  say('asks containerd for each sandbox, containerd runs palisade-cni, the agent gives the pod its address and its policy...');
  const layout = { shop: ['web', 'api'], data: ['db', 'cache'] };
  for (const ns of Object.keys(layout)) await cluster.core.createNamespace({ body: { metadata: { name: ns } } });
  const podsStarted = performance.now();
  const pods = await startRealPods(
    cluster,
    Object.entries(layout).flatMap(([namespace, names]) => names.map((name) => ({ namespace, name, labels: { app: name } }))),
  );
  say(`  all four Running and Ready ${seconds(performance.now() - podsStarted)} after their creation`);
  await show('get', 'pods', '-A', '-o', 'wide', '-l', 'app');

  say('Reachability, TCP port 80 (rows: from, columns: to; . = connected, X = blocked):');
  say(await matrixText(pods));

  say('\nApplying two NetworkPolicies in namespace data:\n');
  say(indent(POLICIES));
  say('\n$ kubectl apply -f -');
  say(String((await cluster.kubectl(['apply', '-f', '-'], { input: POLICIES })).stdout));
  const appliedAt = performance.now();
  // The versions kubectl wrote: the agents report enforcing each kind up to a version (their PalisadeNode status).
  const enforcement = new EnforcementTracker();
  for (const rv of (await kubectl('get', 'networkpolicies', '-n', 'data', '-o', 'jsonpath={.items[*].metadata.resourceVersion}')).split(' ')) {
    enforcement.note('NetworkPolicy', rv);
  }
  await enforcement.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
  say(`  enforced on both nodes ${(performance.now() - appliedAt).toFixed(0)} ms after kubectl returned (the agents' PalisadeNode status says so)`);
  say('\nReachability after:');
  say(await matrixText(pods));

  const env = { KUBECONFIG: cluster.adminKubeconfig };
  const palisade = async (...args: string[]) => {
    say(`\n$ kubectl palisade ${args.join(' ')}`);
    const result = await execa(`${REPO_ROOT}cli/kubectl-palisade`, args, { env, reject: false, all: true });
    say(String(result.all));
  };
  say('\nLive flows while the matrix is probed again, read through the chart\'s flow API (an aggregated API server):');
  const observeArgs = ['observe', '-n', 'shop', '-n', 'data', '-f', '-o', 'compact', '--protocol', 'TCP', '--type', 'new', '--type', 'drop'];
  say(`$ kubectl palisade ${observeArgs.join(' ')}`);
  const live = execa(`${REPO_ROOT}cli/kubectl-palisade`, observeArgs, { env, reject: false, all: true });
  await sleep(2000); // the plugin starts and opens its stream
  await matrixText(pods);
  await sleep(1500);
  live.kill('SIGTERM');
  say(String((await live).all).split('\n').slice(0, 25).join('\n'));
  say('\nThe drops into namespace data, with the policies behind them:');
  await palisade('observe', '-n', 'data', '--verdict', 'dropped', '--last', '8');
  say('\nWould shop/web reach data/db on TCP 80? (the compiler\'s answer, checked against the kernel maps on the nodes)');
  await palisade('policy', 'trace', '--from', 'shop/web', '--to', 'data/db', '--port', '80', '--protocol', 'TCP');

  await show('get', 'palisadenodes');
  say('Nodes, with the pod CIDR kube-controller-manager gave each (the agents route between them):');
  await show('get', 'nodes', '-o', 'custom-columns=NAME:.metadata.name,ADDRESS:.status.addresses[0].address,POD-CIDR:.spec.podCIDR,READY:.status.conditions[?(@.type=="Ready")].status');

  const helmPath = String((await execa('bash', [`${REPO_ROOT}scripts/build-cluster-tools.sh`, 'path', 'helm'])).stdout).trim();
  say(`The demo took ${seconds(performance.now() - demoStarted)}. The cluster is yours while this runs. In another shell:`);
  say(`  export KUBECONFIG=${cluster.adminKubeconfig}`);
  say('  kubectl get nodes,pods -A -o wide');
  say(`  kubectl -n ${RELEASE.namespace} logs ds/palisade-agent -c agent`);
  say(`  ${REPO_ROOT}cli/kubectl-palisade observe -A -f`);
  say(`  ${helmPath} -n ${RELEASE.namespace} status ${RELEASE.name}     # the pinned helm`);
  say(`Nodes' logs (kubelet, containerd, kube-proxy): ${cluster.runDir}/node-*/`);
  if (values.once) {
    await lifetime.stop('\nRemoving the cluster (processes, mounts, namespaces, cgroups, files)...');
    process.exit(0);
  }
  say('\nPress Ctrl-C to stop and clean up.');
  await forever();
} catch (error) {
  // Interrupted: what failed is what Ctrl-C killed (helm, kubectl); the signal's handler removes the cluster and exits.
  if (lifetime.interrupted) await forever();
  console.error(`demo failed: ${(error as Error).message}`);
  await lifetime.stop('\nRemoving the cluster (processes, mounts, namespaces, cgroups, files)...');
  process.exit(1);
}

/** Prints each node's turn to Ready, timed from now, until stopped. */
function watchNodesReady(cluster: RealCluster): { stop(): Promise<void> } {
  const started = performance.now();
  const ready = new Set<string>();
  let watching = true;
  const loop = (async () => {
    for (;;) {
      const last = !watching; // one more look after stop(), so that no turn goes unsaid
      const nodes = await cluster.core.listNode().then((l) => l.items, () => []);
      for (const node of nodes) {
        const name = node.metadata!.name!;
        if (!ready.has(name) && readyCondition(node)?.status === 'True') {
          ready.add(name);
          say(`  +${seconds(performance.now() - started)}  ${name} Ready (its agent installed the CNI configuration and serves the plugin)`);
        }
      }
      if (last) return;
      await sleep(100);
    }
  })();
  return {
    stop: () => {
      watching = false;
      return loop;
    },
  };
}

async function matrixText(pods: ScenarioPod[]): Promise<string> {
  const ids = pods.map((p) => `${p.namespace}/${p.name}`);
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to, port: 80, protocol: 'TCP' as const })));
  const outcomes = await probeAll(pairs);
  const verdict = new Map(pairs.map((p, i) => [`${p.from.namespace}/${p.from.name}>${p.to.namespace}/${p.to.name}`, outcomes[i]!.verdict]));
  return renderMatrix(matrixOf(ids, (from, to) => (from === to || verdict.get(`${from}>${to}`) === 'ok' ? '.' : 'X')));
}
