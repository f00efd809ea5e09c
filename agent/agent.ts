// The node agent: owns the datapath of its node. It learns its pod CIDR from
// its Node object (waiting, with backoff, for an API server it cannot reach;
// its CNI STATUS says not-ready meanwhile), prunes the saved endpoints that
// are not its pods' veths any more, serves the CNI binary (IPAM + pod links), keeps routes to
// every other node's pod CIDR, and the masquerading of its pods' traffic leaving the
// cluster (ADR 0011), in step with the Node objects, and keeps the
// eBPF policy datapath (loaded through the libbpf loader) in step with the
// cluster's NetworkPolicies, pods, namespaces and identities, and collects
// the conntrack entries of connections that have gone quiet.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CoreV1Api, KubeConfig, makeInformer, type V1Node } from '@kubernetes/client-node';
import type { Server } from 'node:net';
import { ensurePinDir } from '../datapath/bpffs.ts';
import { applyNodeRoutes, listNodeRoutes } from '../datapath/node-routes.ts';
import { applyMasquerade, removeMasquerade } from '../datapath/masquerade.ts';
import { masqueradePlan } from './masquerade.ts';
import type { AgentConfig } from './config.ts';
import { createCniHandler, createStartingHandler, hostIfNameFor, type Endpoint } from './cni/handler.ts';
import { EndpointRegistry } from './endpoints.ts';
import { ConntrackGc } from './conntrack-gc.ts';
import { PolicySync } from './policy-sync.ts';
import { DnsService } from './dns/dns-service.ts';
import type { Compiler } from '../policy/compile.ts';
import type { Flow } from '../lib/flow.ts';
import { isIPv4 } from 'node:net';
import { Prefilter } from './prefilter.ts';
import { FlowExport } from './flows/export.ts';
import { FlowPipeline } from './flows/pipeline.ts';
import { serveFlows } from './flows/server.ts';
import { parseListen } from '../lib/listen.ts';
import { AgentMetrics } from './metrics.ts';
import { readFile } from 'node:fs/promises';
import { StatusReporter } from './status-reporter.ts';
import { Loader } from '../datapath/loader-client.ts';
import { serveCni } from './cni/server.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { watchInformer } from '../lib/informers.ts';
import { retryWithBackoff } from '../lib/backoff.ts';
import { listLinks, podPeerIndex } from '../datapath/pod-link.ts';
import { IpAllocator } from './ipam/allocator.ts';
import { parseIpv4Cidr } from './ipam/ipv4.ts';
import { desiredNodeRoutes, planRouteChanges, type NodeFacts } from './node-routes.ts';

export interface RunningAgent {
  stop(): Promise<void>;
  /**
   * Settles when the libbpf loader died under the running agent: nothing can
   * be written to the datapath any more (the pinned maps keep enforcing what
   * they hold). The caller exits, so that the node's supervisor (the
   * DaemonSet) starts a fresh agent and loader, which pick the pins up.
   */
  loaderLost: Promise<string>;
}

export async function startAgent(config: AgentConfig, log: (line: string) => void): Promise<RunningAgent> {
  const kubeconfig = new KubeConfig();
  if (config.kubeconfig) kubeconfig.loadFromFile(config.kubeconfig);
  else kubeconfig.loadFromCluster();
  const core = kubeconfig.makeApiClient(CoreV1Api);

  // The CNI socket comes up first, so that the runtime hears "not ready"
  // (STATUS) and "try again later" (everything else) while the agent waits
  // for the API server, rather than finding no socket at all.
  let waitingFor = `waiting for Node ${config.node}`;
  let handle = createStartingHandler(() => waitingFor);
  const server: Server = await serveCni(config.cniSocket, (request) => handle(request), log);

  // What the agent needs from the API server to start, it waits for (with
  // backoff, each failure logged once) rather than exit.
  const untilDone = <T>(what: string, work: () => Promise<T>) =>
    retryWithBackoff(work, {
      backoff: { initialMs: 500, maxMs: 10_000 },
      onError: (error, attempt, delayMs) => {
        const why = String((error as Error)?.message ?? error).split('\n')[0];
        waitingFor = `cannot ${what}: ${why}`;
        log(`cannot ${what} (attempt ${attempt + 1}): ${why}; retrying in ${delayMs} ms`);
      },
    });
  // The API server may be down, or the Node not registered (or without its pod CIDR) yet.
  const podCidr = await untilDone(`read Node ${config.node}`, async () => {
    const cidr = (await core.readNode({ name: config.node })).spec?.podCIDR;
    if (!cidr) throw new Error(`Node ${config.node} has no spec.podCIDR yet`);
    return cidr;
  });
  waitingFor = 'starting the datapath';

  // Routing between pods and across nodes needs forwarding in this namespace.
  // Written only when off: in a container /proc/sys is read-only, and the Helm
  // chart's init container turns it on through the host's /proc/sys/net.
  const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
  if ((await readFile(IP_FORWARD, 'utf8')).trim() !== '1') await writeFile(IP_FORWARD, '1');
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
  // Masquerading follows the nodes too: their pod CIDRs and addresses are what stays in the cluster.
  let masquerading = '';
  const masquerade = new CoalescingTask(
    async () => {
      if (!config.masquerade) {
        if (await removeMasquerade()) log('masquerade: off; removed the chain an earlier agent wrote');
        return;
      }
      const { skipped, ...plan } = masqueradePlan(nodes.list().map(nodeFacts), podCidr);
      const key = JSON.stringify(plan);
      if (key === masquerading) return;
      const wrote = await applyMasquerade(plan);
      masquerading = key;
      if (wrote) log(`masquerade: pods of ${plan.podCidr} leave the cluster with this node's address; unmasqueraded: ${plan.cluster.join(',')}`);
      if (skipped.length > 0) log(`masquerade: not IPv4, left out: ${skipped.join('; ')}`);
    },
    { onError: (error) => log(`masquerade: sync failed, retrying: ${(error as Error).message}`) },
  );
  const nodeWatch = watchInformer(nodes, () => {
    routes.request();
    masquerade.request();
  }, (error) => log(`nodes: watch failed, restarting: ${String(error)}`));
  await nodeWatch.start();
  routes.request();
  // Before the first pod gets an address: its first connection out is masqueraded as configured.
  await masquerade.runSoon().catch((error: unknown) => {
    throw new Error(`cannot ${config.masquerade ? 'set up' : 'remove'} masquerading (--masquerade ${config.masquerade}): ${(error as Error).message}`, { cause: error });
  });

  const registry = await EndpointRegistry.open(join(config.stateDir, 'endpoints'));
  await pruneStaleEndpoints(registry, allocator, log);
  const status = new StatusReporter(kubeconfig, config.node, log);
  await untilDone(`register PalisadeNode ${config.node}`, () => status.register());
  // The loader inherits this process's network namespace: it sees the node's veths.
  // libbpf warns on every re-attach to an existing clsact qdisc; that is expected here.
  const metrics = new AgentMetrics();
  const loader = await Loader.start({ onLog: (line) => /Exclusivity flag on/.test(line) || log(`loader: ${line}`) });
  const addresses = () => {
    const facts = nodes.list().map(nodeFacts);
    const ips = (mine: boolean) => facts.filter((n) => (n.name === config.node) === mine && n.internalIp).map((n) => n.internalIp!);
    return { self: ips(true), others: ips(false) };
  };
  // The XDP prefilter on the uplinks (ADR 0013): an optimisation, off with --prefilter false; tc enforces regardless.
  const prefilter = new Prefilter({
    loader,
    objectPath: join(dirname(config.bpfObject), 'prefilter.bpf.o'),
    pinDir: config.bpffs,
    mapSizes: { pal_flows: config.flowRingBytes },
    nodeAddresses: () => addresses().self,
    deviceNames: config.prefilterDevices,
    log,
    metrics,
  });
  // The DNS proxy's learned names are restored before the first sync, so a restart cuts nothing.
  const dns = config.dnsProxy
    ? new DnsService({
        node: config.node,
        loader,
        proxyAddress: () => addresses().self.find((ip) => isIPv4(ip)),
        portBase: config.dnsProxyPortBase,
        minTtlSeconds: config.dnsMinTtlSeconds,
        maxTtlSeconds: config.dnsMaxTtlSeconds,
        refuseWith: config.dnsRefuse,
        stateDir: config.stateDir,
        flows: (batch) => flowSink(batch),
        log,
      })
    : undefined;
  let flowSink: (batch: Flow[]) => void = () => undefined;
  const policy = await PolicySync.start({
    kubeconfig,
    node: config.node,
    loader,
    objectPath: config.bpfObject,
    pinDir: config.bpffs,
    endpoints: () => registry.list(),
    nodeAddresses: addresses,
    ...(dns ? { beforeFirstSync: (compiler: Compiler) => dns.restore(compiler) } : {}),
    maxEntriesPerEndpoint: config.maxEntriesPerEndpoint,
    globals: { hostReachesPods: config.hostReachesPods, ctEndpointMax: config.ctMaxPerEndpoint, flowUpdateSeconds: config.flowUpdateSeconds },
    mapSizes: { pal_flows: config.flowRingBytes },
    status,
    log,
    metrics,
    ...(config.prefilter ? { prefilter } : {}),
  });
  // On, each sync attaches it while some rule qualifies (the maps then hold this run's state); off, one an earlier agent left goes.
  if (!config.prefilter) await prefilter.detach();
  const flowExport = config.flowExportFile
    ? new FlowExport({ file: config.flowExportFile, maxBytes: config.flowExportMaxBytes, files: config.flowExportFiles, log })
    : undefined;
  const flows = new FlowPipeline({
    loader,
    pinDir: config.bpffs,
    context: policy.flowContext(),
    storeSize: config.flowStoreSize,
    onFlows: (batch) => {
      metrics.flows(batch);
      flowExport?.add(batch);
    },
    log,
  });
  metrics.attach({
    loader,
    maps: () => policy.datapathStatus().maps,
    flowLoss: () => ({ decoder: flows.loss().decoder, consumer: flows.consumerMissed, export: flowExport?.lost ?? 0 }),
  });
  let ready = false;
  let loaderGone: string | undefined;
  void loader.exited.then((exit) => (loaderGone = `the datapath loader exited (${loader.failure ?? JSON.stringify(exit)})`));
  const metricsServer = config.metricsListen
    ? await metrics.serve(parseListen(config.metricsListen), {
        live: () => loaderGone,
        ready: () => loaderGone ?? (ready ? undefined : 'starting'),
      })
    : undefined;
  const flowServer = config.flowsListen
    ? await serveFlows({
        listen: parseListen(config.flowsListen),
        cert: await readFile(config.flowsTlsCert!),
        key: await readFile(config.flowsTlsKey!),
        token: (await readFile(config.flowsTokenFile!, 'utf8')).trim(),
        node: config.node,
        pipeline: flows,
        verdict: (pod, q) => policy.mapVerdict(pod, q),
        status: async () => ({
          ...policy.datapathStatus(),
          programs: (await loader.status()).attachments.length,
          flows: { stored: flows.store.size, capacity: flows.store.capacity, followers: flows.store.followers, events: flows.events, lost: flows.loss() },
        }),
        log,
      })
    : undefined;
  nodes.on('update', () => policy.request());
  // Not awaited: it measures the kernel's HZ first, which the node's readiness need not wait for.
  flowSink = (batch) => flows.add(batch);
  // Not awaited either: DNS works without the proxy until it holds its lease.
  const dnsStarted = dns?.start(policy).catch((error: unknown) => log(`dns: the proxy cannot start, DNS goes straight to the servers: ${(error as Error).message}`));
  const conntrackGc = ConntrackGc.start({ loader, intervalMs: config.ctGcIntervalSeconds * 1000, log }).catch((error: unknown) => {
    log(`conntrack gc: cannot start, entries leave by LRU eviction only: ${(error as Error).message}`);
    return undefined;
  });

  const endpoints = {
    async added(endpoint: Endpoint) {
      await policy.learnPod(endpoint);
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
  handle = createCniHandler({ allocator, endpoints });
  ready = true;
  log(`ready node=${config.node} podCIDR=${podCidr} cni=${config.cniSocket}`);

  let stopping = false;
  return {
    loaderLost: loader.exited.then(
      (exit) => new Promise<string>((resolve) => {
        if (!stopping) resolve(`the datapath loader died (${loader.failure ?? JSON.stringify(exit)})`);
      }),
    ),
    async stop() {
      stopping = true;
      // First the DNS proxy's lease: from now on queries go straight to their servers.
      await dnsStarted;
      await dns?.stop();
      await new Promise((resolve) => server.close(resolve));
      await nodeWatch.stop();
      await routes.idle();
      // The chain stays, as the routes and pins do: pods keep reaching the world while no agent runs.
      await masquerade.idle();
      await new Promise((resolve) => (metricsServer ? metricsServer.close(resolve) : resolve(undefined)));
      if (flowServer) {
        const closed = new Promise((resolve) => flowServer.close(resolve));
        flowServer.closeAllConnections(); // followers stream until closed
        await closed;
      }
      await flows.stop();
      await flowExport?.close();
      await policy.stop();
      // Unlike the tc programs, the prefilter leaves with the agent: nothing would keep its maps in step.
      await prefilter.detach();
      await (await conntrackGc)?.stop();
      await status.idle();
      // Pinned programs and maps stay: enforcement goes on while the agent is away.
      await loader.close();
    },
  };
}

/**
 * Before anything attaches to a saved endpoint: drops those whose veth is
 * gone or not their pod's any more (see EndpointRegistry.prune) and frees
 * their addresses, and frees every address whose owner has no host veth
 * (an ADD cut short by a crash, or a pod lost with a reboot). Nothing else
 * allocates meanwhile: the CNI handler is still the starting one.
 */
async function pruneStaleEndpoints(registry: EndpointRegistry, allocator: IpAllocator, log: (line: string) => void): Promise<void> {
  const { pruned, renumbered } = await registry.prune({ links: listLinks, peerIndex: podPeerIndex });
  for (const { endpoint: e, reason } of pruned) {
    const freed = await allocator.release({ containerId: e.containerId, ifName: e.ifName });
    log(`endpoints: pruned endpoint ${e.hostIfName} (pod ${e.podNamespace ?? '?'}/${e.podName ?? '?'}, ${e.ip}): ${reason}; ${freed ? `released ${freed}` : 'it held no address'}`);
  }
  for (const { endpoint: e, from } of renumbered) log(`endpoints: ${e.hostIfName} moved from ifindex ${from} to ${e.ifindex}`);
  const links = await listLinks();
  for (const { ip, owner } of allocator.allocations()) {
    const hostIfName = hostIfNameFor(owner.containerId, owner.ifName);
    if (links.has(hostIfName)) continue;
    await allocator.release(owner);
    log(`ipam: released ${ip} of container ${owner.containerId} interface ${owner.ifName}: its host interface ${hostIfName} does not exist`);
  }
}

function nodeFacts(node: V1Node): NodeFacts {
  return {
    name: node.metadata?.name ?? '',
    podCidr: node.spec?.podCIDR,
    internalIp: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
  };
}
