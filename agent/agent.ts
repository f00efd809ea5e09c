// The node agent: owns the datapath of its node. It learns its pod CIDR from
// its Node object, serves the CNI binary (IPAM + pod links), and keeps routes
// to every other node's pod CIDR in step with the Node objects.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, makeInformer, type V1Node } from '@kubernetes/client-node';
import type { Server } from 'node:net';
import { ensurePinDir } from '../datapath/bpffs.ts';
import { applyNodeRoutes, listNodeRoutes } from '../datapath/node-routes.ts';
import type { AgentConfig } from './config.ts';
import { createCniHandler } from './cni/handler.ts';
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
  watchInformer(nodes, () => routes.request(), (error) => log(`nodes: watch failed, restarting: ${String(error)}`));
  await nodes.start();
  routes.request();

  const server: Server = await serveCni(config.cniSocket, createCniHandler({ allocator }), log);
  log(`ready node=${config.node} podCIDR=${podCidr} cni=${config.cniSocket}`);

  return {
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      await nodes.stop();
      await routes.idle();
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
