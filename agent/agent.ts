// The node agent: owns the datapath of its node. It learns its pod CIDR from
// its Node object, serves the CNI binary (IPAM + pod links), keeps routes to
// every other node's pod CIDR in step with the Node objects, and keeps the
// eBPF policy datapath (loaded through the libbpf loader) in step with the
// cluster's NetworkPolicies, pods, namespaces and identities, and collects
// the conntrack entries of connections that have gone quiet.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, makeInformer, type V1Node } from '@kubernetes/client-node';
import type { Server } from 'node:net';
import { ensurePinDir } from '../datapath/bpffs.ts';
import { applyNodeRoutes, listNodeRoutes } from '../datapath/node-routes.ts';
import type { AgentConfig } from './config.ts';
import { createCniHandler, type Endpoint } from './cni/handler.ts';
import { EndpointRegistry } from './endpoints.ts';
import { ConntrackGc } from './conntrack-gc.ts';
import { PolicySync } from './policy-sync.ts';
import { StatusReporter } from './status-reporter.ts';
import { Loader } from '../datapath/loader-client.ts';
import { serveCni } from './cni/server.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { watchInformer } from '../lib/informers.ts';
import { IpAllocator } from './ipam/allocator.ts';
import { parseIpv4Cidr } from './ipam/ipv4.ts';
import { desiredNodeRoutes, planRouteChanges, type NodeFacts } from './node-routes.ts';

export interface RunningAgent {
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig, log: (line: string) => void): Promise<RunningAgent> {
  const kubeconfig = new KubeConfig();
  if (config.kubeconfig) kubeconfig.loadFromFile(config.kubeconfig);
  else kubeconfig.loadFromCluster();
  const core = kubeconfig.makeApiClient(CoreV1Api);

  const self = await core.readNode({ name: config.node });
  const podCidr = self.spec?.podCIDR;
  if (!podCidr) throw new Error(`Node ${config.node} has no spec.podCIDR; cannot assign pod addresses`);

  // Routing between pods and across nodes needs forwarding in this namespace.
  await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
  await ensurePinDir(config.bpffs);

  const allocator = await IpAllocator.open(join(config.stateDir, 'ipam'), parseIpv4Cidr(podCidr), podCidr);

  const nodes = makeInformer<V1Node>(kubeconfig, '/api/v1/nodes', () => core.listNode());
  const routes = new CoalescingTask(
    async () => {
      const desired = desiredNodeRoutes(nodes.list().map(nodeFacts), config.node);
      const change = planRouteChanges(desired, await listNodeRoutes());
      if (change.replace.length + change.remove.length === 0) return;
      await applyNodeRoutes(change);
      log(`routes: +${change.replace.map((r) => r.podCidr).join(',')} -${change.remove.map((r) => r.podCidr).join(',')}`);
    },
    { onError: (error) => log(`routes: sync failed, retrying: ${(error as Error).message}`) },
  );
  const nodeWatch = watchInformer(nodes, () => routes.request(), (error) => log(`nodes: watch failed, restarting: ${String(error)}`));
  await nodeWatch.start();
  routes.request();

  const registry = await EndpointRegistry.open(join(config.stateDir, 'endpoints'));
  const status = new StatusReporter(kubeconfig, config.node, log);
  await status.register();
  // The loader inherits this process's network namespace: it sees the node's veths.
  // libbpf warns on every re-attach to an existing clsact qdisc; that is expected here.
  const loader = await Loader.start({ onLog: (line) => /Exclusivity flag on/.test(line) || log(`loader: ${line}`) });
  const addresses = () => {
    const facts = nodes.list().map(nodeFacts);
    const ips = (mine: boolean) => facts.filter((n) => (n.name === config.node) === mine && n.internalIp).map((n) => n.internalIp!);
    return { self: ips(true), others: ips(false) };
  };
  const policy = await PolicySync.start({
    kubeconfig,
    node: config.node,
    loader,
    objectPath: config.bpfObject,
    pinDir: config.bpffs,
    endpoints: () => registry.list(),
    nodeAddresses: addresses,
    status,
    log,
  });
  nodes.on('update', () => policy.request());
  // Not awaited: it measures the kernel's HZ first, which the node's readiness need not wait for.
  const conntrackGc = ConntrackGc.start({ loader, intervalMs: config.ctGcIntervalSeconds * 1000, log }).catch((error: unknown) => {
    log(`conntrack gc: cannot start, entries leave by LRU eviction only: ${(error as Error).message}`);
    return undefined;
  });

  const endpoints = {
    async added(endpoint: Endpoint) {
      await registry.added(endpoint);
      // ADD fails unless the pod's policy is in the kernel; the runtime then tears the pod down.
      await policy.ensureEndpoint(endpoint).catch(async (error: unknown) => {
        await registry.removed(endpoint);
        throw error;
      });
    },
    async removed(endpoint: Pick<Endpoint, 'hostIfName'>) {
      await registry.removed(endpoint);
      policy.request();
    },
  };
  const server: Server = await serveCni(config.cniSocket, createCniHandler({ allocator, endpoints }), log);
  log(`ready node=${config.node} podCIDR=${podCidr} cni=${config.cniSocket}`);

  return {
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      await nodeWatch.stop();
      await routes.idle();
      await policy.stop();
      await (await conntrackGc)?.stop();
      await status.idle();
      // Pinned programs and maps stay: enforcement goes on while the agent is away.
      await loader.close();
    },
  };
}

function nodeFacts(node: V1Node): NodeFacts {
  return {
    name: node.metadata?.name ?? '',
    podCidr: node.spec?.podCIDR,
    internalIp: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
  };
}
