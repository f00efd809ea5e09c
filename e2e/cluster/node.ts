// A simulated node: a network namespace on the underlay, a Node object with
// its pod CIDR and address, and the Palisade agent running inside it with its
// own state directory, CNI socket and bpffs pin directory.
import { mkdir } from 'node:fs/promises';
import { execa } from 'execa';
import type { CoreV1Api } from '@kubernetes/client-node';
import { signCert, type ClusterCerts } from './certs.ts';
import { AGENT_FLOWS_PORT, AGENT_METRICS_PORT } from './flows-api.ts';
import { startKubeProxy } from './kube-proxy.ts';
import { createNetns, deleteNetns } from './netns.ts';
import { NODE_BIN, programs } from './paths.ts';
import { startProcess, type ManagedProcess } from './processes.ts';
import { attachNode, type Underlay } from './underlay.ts';

export interface SimNode {
  name: string;
  netns: string;
  address: string;
  podCidr: string;
  cniSocket: string;
  bpffs: string;
  agent: ManagedProcess;
  /** kube-proxy (iptables mode) in the node's namespace, when the cluster runs it (ClusterOptions.kubeProxy). */
  kubeProxy?: ManagedProcess;
  /** Kills the agent as a crash would (its pinned programs and maps stay). */
  killAgent(): Promise<void>;
  /** Starts the agent again, with the same state directory and pins (and more flags, e.g. a changed map size). */
  startAgent(extraArgs?: string[]): Promise<void>;
  /** Stops the agent and removes the namespace, state and pins (not the Node object). */
  stop(): Promise<void>;
}

export interface NodeOptions {
  runId: string;
  runDir: string;
  index: number;
  podCidr: string;
  underlay: Underlay;
  core: CoreV1Api;
  /** Kubeconfig that reaches the API server from inside a node namespace. */
  nodeKubeconfig: string;
  /** More agent flags (agent/config.ts), e.g. ['--max-entries-per-endpoint', '40']. */
  agentArgs?: string[];
  /** Run kube-proxy (iptables mode) in the node's namespace; pod addresses of the whole cluster lie in clusterCidr. */
  kubeProxy?: { clusterCidr: string };
  /** Serve flows to the flow API (e2e/cluster/flows-api.ts) on the node's address, with a certificate of the cluster CA, and metrics. */
  flows?: { certs: ClusterCerts; tokenFile: string };
}

export async function startNode(opts: NodeOptions): Promise<SimNode> {
  const name = `node-${opts.index}`;
  const netns = `${opts.runId}-n${opts.index}`;
  const stateDir = `${opts.runDir}/${name}`;
  // A bpffs instance of the node's own, as a real node has: pins of
  // different simulated nodes (and runs) never meet, and /sys/fs/bpf is untouched.
  const bpffs = `${stateDir}/bpffs`;
  const podCidr = opts.podCidr;
  const cleanup = async () => {
    await deleteNetns(netns);
    await execa('umount', [bpffs], { reject: false });
  };
  try {
    await createNetns(netns);
    await mkdir(bpffs, { recursive: true });
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    const address = await attachNode(opts.underlay, opts.index, netns);
    await registerNode(opts.core, name, podCidr, address);
    const flowArgs: string[] = [];
    if (opts.flows) {
      const tls = { cert: `${stateDir}/flows.crt`, key: `${stateDir}/flows.key` };
      await signCert(opts.flows.certs, tls, { serverIps: [address] });
      flowArgs.push('--flows-listen', `${address}:${AGENT_FLOWS_PORT}`, '--flows-tls-cert', tls.cert, '--flows-tls-key', tls.key,
        '--flows-token-file', opts.flows.tokenFile, '--metrics-listen', `${address}:${AGENT_METRICS_PORT}`);
    }
    const startAgent = (extraArgs: string[] = []) =>
      startProcess({
        name: `agent ${name}`,
        command: NODE_BIN,
        args: [programs.agent, '--node', name, '--kubeconfig', opts.nodeKubeconfig, '--state-dir', stateDir,
          '--cni-socket', `${stateDir}/cni.sock`, '--bpffs', bpffs, ...flowArgs, ...(opts.agentArgs ?? []), ...extraArgs],
        netns,
        logFile: `${stateDir}/agent.log`,
        readyLine: /ready node=/,
      });
    const node: SimNode = {
      name, netns, address, podCidr, cniSocket: `${stateDir}/cni.sock`, bpffs, agent: await startAgent(),
      async killAgent() {
        process.kill(node.agent.pid, 'SIGKILL');
        await node.agent.exited;
      },
      async startAgent(extraArgs) {
        node.agent = await startAgent(extraArgs);
      },
      async stop() {
        await node.kubeProxy?.stop();
        await node.agent.stop();
        await cleanup();
      },
    };
    if (opts.kubeProxy) {
      try {
        node.kubeProxy = await startKubeProxy({ nodeName: name, netns, stateDir, kubeconfig: opts.nodeKubeconfig, clusterCidr: opts.kubeProxy.clusterCidr });
      } catch (error) {
        await node.agent.stop();
        throw error;
      }
    }
    return node;
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** What the kubelet does at registration: the Node object, its address and readiness. */
async function registerNode(core: CoreV1Api, name: string, podCidr: string, address: string): Promise<void> {
  const node = await core.createNode({
    body: { metadata: { name, labels: { 'kubernetes.io/hostname': name } }, spec: { podCIDR: podCidr, podCIDRs: [podCidr] } },
  });
  const now = new Date();
  await core.replaceNodeStatus({
    name,
    body: {
      ...node,
      status: {
        addresses: [{ type: 'InternalIP', address }, { type: 'Hostname', address: name }],
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now, lastTransitionTime: now }],
      },
    },
  });
}
