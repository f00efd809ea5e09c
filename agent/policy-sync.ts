// Keeps the node's eBPF maps equal to the compiled policy of its endpoints.
//
// Informers feed the incremental compiler and only request a sync; a sync
// (one at a time, bursts coalesced) plans the maps' contents, writes the
// difference through the loader (new entries first, endpoint flags last,
// removals after), bumps the datapath's policy revision so that established
// connections are re-checked, and publishes what it realized: per watched
// kind, the resourceVersion up to which changes are now enforced.
import {
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  NetworkingV1Api,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type V1Namespace,
  type V1NetworkPolicy,
  type V1Pod,
} from '@kubernetes/client-node';
import { datapathConfig, loadGlobals, u32Key } from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { watchInformer, type WatchedInformer } from '../lib/informers.ts';
import { Compiler } from '../policy/compile.ts';
import type { Protocol } from '../policy/types.ts';
import { networkPolicySpec } from '../lib/network-policy.ts';
import type { Endpoint } from './cni/handler.ts';
import { diffMaps, PLANNED_MAPS, planDatapath, problemText, type MapContents, type PlannedMap } from './datapath-plan.ts';
import { ProblemEvents } from './problem-events.ts';
import type { StatusReporter } from './status-reporter.ts';

export interface PolicySyncOptions {
  kubeconfig: KubeConfig;
  node: string;
  loader: Loader;
  objectPath: string;
  pinDir: string;
  endpoints: () => Endpoint[];
  nodeAddresses: () => { self: string[]; others: string[] };
  status: StatusReporter;
  log: (line: string) => void;
}

interface SecurityIdentity extends KubernetesObject {
  spec: { key: string };
}

/** Kinds whose resourceVersions are reported as realized (see e2e/scenario/enforcement.ts). */
type WatchedKind = 'Pod' | 'Namespace' | 'NetworkPolicy' | 'SecurityIdentity';

export class PolicySync {
  readonly #o: PolicySyncOptions;
  readonly #compiler: Compiler;
  readonly #core: CoreV1Api;
  readonly #informers: Informer<KubernetesObject>[] = [];
  readonly #watches: WatchedInformer[] = [];
  readonly #seen = new Map<WatchedKind, bigint>();
  /** Wall-clock time of the first watch event not yet realized (for the apply-latency stages). */
  #firstPendingEventAt: number | undefined;
  readonly #task: CoalescingTask;
  #applied: MapContents = new Map();
  #listed = false;
  #capacity = { pal_policy: Infinity, pal_policy_cidr: Infinity };
  #revision = 0;
  #identities = new Map<string, SecurityIdentity>();
  /** `Kind/namespace/name` -> uid of every watched object, for events. */
  readonly #uids = new Map<string, string>();
  readonly #events: ProblemEvents;
  /** The problems last logged, one per line. */
  #loggedProblems = '';

  private constructor(options: PolicySyncOptions) {
    this.#o = options;
    this.#compiler = new Compiler({ node: options.node });
    this.#core = options.kubeconfig.makeApiClient(CoreV1Api);
    this.#events = new ProblemEvents({
      core: this.#core,
      node: options.node,
      uid: (kind, namespace, name) => this.#uids.get(`${kind}/${namespace}/${name}`),
      log: options.log,
    });
    this.#task = new CoalescingTask(() => this.#sync(), {
      retryMs: 500,
      onError: (error) => options.log(`policy: sync failed, retrying: ${(error as Error).message}`),
    });
  }

  static async start(options: PolicySyncOptions): Promise<PolicySync> {
    const sync = new PolicySync(options);
    await sync.#loadDatapath();
    await sync.#watch();
    sync.#listed = true;
    sync.request();
    await sync.#task.idle();
    return sync;
  }

  request(): void {
    // Before every informer has listed, a sync would see a partial cluster
    // (pods without their identities, say) and write it: wait for all of them.
    if (this.#listed) this.#task.request();
  }

  /**
   * Called by CNI ADD before it answers: attaches the programs to the pod's
   * host veth and waits until a sync has written the pod's policy, so no
   * packet of the pod ever passes unenforced.
   */
  async ensureEndpoint(endpoint: Endpoint): Promise<void> {
    await this.#o.loader.attach(endpoint.ifindex, 'pal_from_pod', 'ingress');
    await this.#o.loader.attach(endpoint.ifindex, 'pal_to_pod', 'egress');
    // The kubelet creates the Pod object before calling CNI, but our watch may
    // not have delivered it yet: read it directly. A pod the API server does
    // not know is enforced fail-closed until it appears.
    if (endpoint.podNamespace && endpoint.podName && !this.#compiler.result(`${endpoint.podNamespace}/${endpoint.podName}`)) {
      const pod = await this.#core.readNamespacedPod({ namespace: endpoint.podNamespace, name: endpoint.podName }).catch((error: unknown) => {
        if ((error as { code?: number }).code === 404) return undefined;
        throw error;
      });
      if (pod) this.#setPod(pod);
    }
    this.request();
    await this.#task.idle();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#watches.map((w) => w.stop()));
    await this.#task.idle();
  }

  async #loadDatapath(): Promise<void> {
    const { loader, objectPath, pinDir } = this.#o;
    const loaded = await loader.load(objectPath, pinDir, { globals: loadGlobals({ hostReachesPods: true }) });
    const size = (name: string) => loaded.maps.find((m) => m.name === name)?.maxEntries ?? Infinity;
    this.#capacity = { pal_policy: size('pal_policy'), pal_policy_cidr: size('pal_policy_cidr') };
    // Pinned maps survive restarts: what they hold is what is applied.
    for (const map of PLANNED_MAPS) {
      const entries = await loader.dump(map);
      this.#applied.set(map, new Map(entries.map((e) => [e.key.toString('hex'), e.value.toString('hex')])));
    }
    const [config] = await loader.dump('pal_config');
    this.#revision = config ? datapathConfig.decode(config.value).policyRevision : 0;
    for (const endpoint of this.#o.endpoints()) {
      await loader.attach(endpoint.ifindex, 'pal_from_pod', 'ingress').catch(() => undefined);
      await loader.attach(endpoint.ifindex, 'pal_to_pod', 'egress').catch(() => undefined);
    }
  }

  async #watch(): Promise<void> {
    const { kubeconfig, log } = this.#o;
    const core = kubeconfig.makeApiClient(CoreV1Api);
    const networking = kubeconfig.makeApiClient(NetworkingV1Api);
    const custom = kubeconfig.makeApiClient(CustomObjectsApi);
    const c = this.#compiler;

    this.#informer<V1Pod>('Pod', makeInformer(kubeconfig, '/api/v1/pods', () => core.listPodForAllNamespaces()), {
      set: (pod) => this.#setPod(pod),
      remove: (pod) => c.deletePod(pod.metadata!.namespace!, pod.metadata!.name!),
    });
    this.#informer<V1Namespace>('Namespace', makeInformer(kubeconfig, '/api/v1/namespaces', () => core.listNamespace()), {
      set: (ns) => c.setNamespace({ name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} }),
      remove: (ns) => c.deleteNamespace(ns.metadata!.name!),
    });
    this.#informer<V1NetworkPolicy>(
      'NetworkPolicy',
      makeInformer(kubeconfig, '/apis/networking.k8s.io/v1/networkpolicies', () => networking.listNetworkPolicyForAllNamespaces()),
      {
        set: (p) => c.setPolicy({ namespace: p.metadata!.namespace!, name: p.metadata!.name!, spec: networkPolicySpec(p) }),
        remove: (p) => c.deletePolicy(p.metadata!.namespace!, p.metadata!.name!),
      },
    );
    this.#informer<SecurityIdentity>(
      'SecurityIdentity',
      makeInformer(kubeconfig, '/apis/palisade.io/v1alpha1/securityidentities', () =>
        custom.listClusterCustomObject({ group: 'palisade.io', version: 'v1alpha1', plural: 'securityidentities' }) as never,
      ),
      {
        set: (i) => this.#setIdentity(i, true),
        remove: (i) => this.#setIdentity(i, false),
      },
    );
    for (const informer of this.#informers) {
      this.#watches.push(watchInformer(informer, () => this.request(), (error) => log(`policy: watch failed, restarting: ${String(error)}`)));
    }
    await Promise.all(this.#watches.map((w) => w.start()));
  }

  #informer<T extends KubernetesObject>(kind: WatchedKind, informer: Informer<T>, apply: { set(o: T): void; remove(o: T): void }): void {
    const uidKey = (o: T) => `${kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    const note = (o: T) => {
      if (o.metadata?.uid) this.#uids.set(uidKey(o), o.metadata.uid);
      const rv = BigInt(o.metadata?.resourceVersion ?? '0');
      if (rv > (this.#seen.get(kind) ?? 0n)) this.#seen.set(kind, rv);
      this.#firstPendingEventAt ??= Date.now();
    };
    informer.on('add', (o) => (apply.set(o), note(o)));
    informer.on('update', (o) => (apply.set(o), note(o)));
    informer.on('delete', (o) => (apply.remove(o), note(o), this.#uids.delete(uidKey(o))));
    this.#informers.push(informer as unknown as Informer<KubernetesObject>);
  }

  #setPod(pod: V1Pod): void {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    // Until the kubelet reports the pod IP, a local pod's address is the one CNI gave it.
    const local = pod.status?.podIP ? undefined : this.#o.endpoints().find((e) => e.podNamespace === namespace && e.podName === name);
    this.#compiler.setPod({
      namespace,
      name,
      labels: pod.metadata?.labels ?? {},
      ip: pod.status?.podIP ?? local?.ip,
      node: pod.spec?.nodeName,
      containerPorts: (pod.spec?.containers ?? []).flatMap((ct) =>
        (ct.ports ?? []).map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: (p.protocol ?? 'TCP') as Protocol })),
      ),
    });
  }

  #setIdentity(identity: SecurityIdentity, present: boolean): void {
    const name = identity.metadata!.name!;
    if (present) this.#identities.set(name, identity);
    else this.#identities.delete(name);
    this.#compiler.setIdentities(new Map([...this.#identities].map(([id, i]) => [i.spec.key, Number(id)])));
  }

  async #sync(): Promise<void> {
    const realized = new Map(this.#seen);
    const eventAt = this.#firstPendingEventAt;
    this.#firstPendingEventAt = undefined;
    const started = performance.now();
    const startedAt = Date.now();
    const endpoints = this.#o.endpoints();
    const compiled = new Map(endpoints.flatMap((e) => {
      const key = `${e.podNamespace}/${e.podName}`;
      const result = this.#compiler.result(key);
      return result ? [[key, result] as const] : [];
    }));
    const plan = planDatapath({
      endpoints: endpoints.map((e) => ({ key: `${e.podNamespace}/${e.podName}`, ifindex: e.ifindex, ip: e.ip })),
      compiled,
      podIdentities: this.#compiler.ipcache(),
      nodeAddresses: this.#o.nodeAddresses(),
      capacity: this.#capacity,
    });
    const compiledAt = Date.now();
    const compiledMs = performance.now() - started;
    const changes = diffMaps(plan.maps, this.#applied);
    const diffedAt = Date.now();
    if (changes.count > 0) {
      const { loader } = this.#o;
      // New state first (endpoint flags last, so an endpoint is never enforced before its entries exist)...
      for (const map of PLANNED_MAPS) {
        const updates = changes.updates.get(map);
        if (updates) await loader.update(map, updates.map((u) => ({ key: Buffer.from(u.key, 'hex'), value: Buffer.from(u.value, 'hex') })));
        this.#record(map, updates ?? [], []);
      }
      // ...then what is stale, endpoints first.
      for (const map of [...PLANNED_MAPS].reverse()) {
        const deletes = changes.deletes.get(map);
        if (deletes) await loader.delete(map, deletes.map((k) => Buffer.from(k, 'hex')));
        this.#record(map, [], deletes ?? []);
      }
      this.#revision = (this.#revision + 1) >>> 0;
      await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: this.#revision, flags: 0 }) }]);
      this.#o.log(
        `policy: revision ${this.#revision}: ${changes.count} map changes in ${(performance.now() - started).toFixed(1)} ms (plan ${compiledMs.toFixed(1)} ms)`,
      );
      // Stage timestamps (wall clock, ms) for the apply-latency benchmark: the first
      // watch event of this batch, compile and plan done, diff done, maps written.
      this.#o.log(`policy-stages ${JSON.stringify({ revision: this.#revision, eventAt, startedAt, compiledAt, diffedAt, writtenAt: Date.now() })}`);
    }
    const problems = plan.problems.map(problemText);
    if (problems.join('\n') !== this.#loggedProblems) {
      this.#loggedProblems = problems.join('\n');
      for (const problem of problems) this.#o.log(`policy: ${problem}`);
    }
    this.#o.status.report({
      revision: this.#revision,
      endpoints: endpoints.length,
      realized: Object.fromEntries([...realized].map(([kind, rv]) => [kind, rv.toString()])),
      pendingIdentities: this.#compiler.missingIdentities().length,
      ready: plan.problems.length === 0,
      message: problems.length === 0 ? 'enforcing' : problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : ''),
    });
    await this.#events.report(plan.problems);
  }

  #record(map: PlannedMap, updates: Array<{ key: string; value: string }>, deletes: string[]): void {
    const applied = this.#applied.get(map) ?? new Map<string, string>();
    for (const u of updates) applied.set(u.key, u.value);
    for (const k of deletes) applied.delete(k);
    this.#applied.set(map, applied);
  }
}

