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
  DiscoveryV1Api,
  makeInformer,
  NetworkingV1Api,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Namespace,
  type V1NetworkPolicy,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import { datapathConfig, endpointInfo, loadGlobals, u32Key } from '../datapath/abi.ts';
import { postWarningEvent } from '../lib/events.ts';
import type { LoadedObject, Loader } from '../datapath/loader-client.ts';
import { copySetAside, removeSetAside, setAsideMaps, STATEFUL_MAPS, type MapCopy } from '../datapath/pin-migration.ts';
import { CoalescingTask } from '../lib/coalescing-task.ts';
import { watchInformer, type WatchedInformer } from '../lib/informers.ts';
import { Compiler } from '../policy/compile.ts';
import { networkPolicySpec } from '../lib/network-policy.ts';
import { policyRefString } from '../policy/ids.ts';
import { PALISADE_POLICY_GROUP, PALISADE_POLICY_KINDS, PALISADE_POLICY_VERSION } from '../policy/palisade-policy.ts';
import type { DirectionPolicy, PalisadePolicyKind, PolicyRef } from '../policy/types.ts';
import { readPalisadePolicy, type StoredPalisadePolicy } from './palisade-policy-input.ts';

/** The policies whose rules make a direction's entries (isolating or not); once per shared direction result. */
const rulePoliciesOf = new WeakMap<DirectionPolicy, readonly PolicyRef[]>();
function rulePolicies(dp: DirectionPolicy): readonly PolicyRef[] {
  let out = rulePoliciesOf.get(dp);
  if (!out) {
    const seen = new Map<string, PolicyRef>(dp.isolatedBy.map((p) => [policyRefString(p), p]));
    const add = (r: PolicyRef) => {
      const key = policyRefString(r);
      if (!seen.has(key)) seen.set(key, { ...(r.kind ? { kind: r.kind } : {}), namespace: r.namespace, name: r.name });
    };
    for (const e of dp.entries) add(e.rule);
    for (const region of dp.cidrRegions) for (const e of region.entries) add(e.rule);
    rulePoliciesOf.set(dp, (out = [...seen.values()]));
  }
  return out;
}
import type { Endpoint } from './cni/handler.ts';
import { ConntrackPurge } from './conntrack-purge.ts';
import { podInput } from './pod-input.ts';
import {
  closedEndpointInfo,
  DatapathPlanner,
  ENDPOINT_MAPS,
  diffMaps,
  PLANNED_MAPS,
  problemText,
  type EndpointMap,
  type IncrementalPlan,
  type MapChanges,
  type MapContents,
  type PlannedMap,
} from './datapath-plan.ts';
import { writeSteps } from './map-writer.ts';
import { endpointIdOfKey, orderWrites, type Capacity, type WriteStep } from './map-writes.ts';
import type { AgentMetrics } from './metrics.ts';
import type { Prefilter } from './prefilter.ts';
import { ProblemEvents } from './problem-events.ts';
import { apiServerAddresses, serviceFrontends, type ServiceFrontend } from './services.ts';
import { RuleIndex, type FlowContext, type PodFacts } from './flows/enrich.ts';
import { mapVerdict, type MapQuery, type MapVerdict } from './map-verdict.ts';
import type { RealizedStatus, StatusReporter } from './status-reporter.ts';

export interface PolicySyncOptions {
  kubeconfig: KubeConfig;
  node: string;
  loader: Loader;
  objectPath: string;
  pinDir: string;
  endpoints: () => Endpoint[];
  nodeAddresses: () => { self: string[]; others: string[] };
  /** Called once, before the first sync: what the compiler must know from the last run (names learned from DNS). */
  beforeFirstSync?: (compiler: Compiler) => Promise<void>;
  /** See agent/config.ts. */
  maxEntriesPerEndpoint?: number;
  /** The datapath's load-time settings (agent/config.ts: host admission, conntrack per pod, flow reports). */
  globals: Parameters<typeof loadGlobals>[0];
  /** Sizes of the datapath's maps set at load (the flow ring's bytes). */
  mapSizes?: Record<string, number>;
  status: StatusReporter;
  log: (line: string) => void;
  /** Realization latency and datapath errors (agent/metrics.ts). */
  metrics?: Pick<AgentMetrics, 'realized' | 'datapathError'>;
  /** The XDP prefilter (prefilter.ts): loaded after the datapath, fed Palisade policies, narrowed before each write of the maps and widened after. */
  prefilter?: Pick<Prefilter, 'load' | 'setPolicy' | 'deletePolicy' | 'snapshot' | 'narrow' | 'widen'>;
}

interface SecurityIdentity extends KubernetesObject {
  spec: { key: string };
}

/** Kinds whose resourceVersions are reported as realized (see e2e/scenario/enforcement.ts). */
type WatchedKind = 'Pod' | 'Namespace' | 'NetworkPolicy' | PalisadePolicyKind | 'SecurityIdentity' | 'Service' | 'EndpointSlice';

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
  #capacity: Capacity = {};
  /** Set when a write failed midway: what the kernel holds is then read back before the next diff. */
  #appliedUnknown = false;
  readonly #planner = new DatapathPlanner();
  /** The compiler generation the planner has seen; false until a first whole plan was diffed against the maps. */
  #generation = 0;
  #planned = false;
  /** The last status published, and the sync failure last raised as an event. */
  #status: RealizedStatus | undefined;
  #failureEvent = '';
  #stopping = false;
  #revision = 0;
  #identities = new Map<string, SecurityIdentity>();
  /** `Kind/namespace/name` -> uid of every watched object, for events. */
  readonly #uids = new Map<string, string>();
  readonly #events: ProblemEvents;
  /** The problems last logged, one per line. */
  #loggedProblems = '';
  /** Removes the conntrack entries of addresses that changed hands (see conntrack-purge.ts). */
  readonly #purge = new ConntrackPurge();
  /** Services and EndpointSlices by `namespace/name`, and the frontends and API server addresses made of them (undefined: to be made again). */
  readonly #services = new Map<string, V1Service>();
  readonly #slices = new Map<string, V1EndpointSlice>();
  #frontends: { frontends: ServiceFrontend[]; problems: string[]; apiServers: string[] } | undefined;
  /** What flows are enriched with (flows/enrich.ts): rules by number, pods' labels, address owners and local devices as of the last sync. */
  readonly #rules = new RuleIndex();
  /** Palisade policies enforced fail closed, and why (logged once per reason). */
  readonly #policyProblems = new Map<string, string>();
  readonly #podFacts = new Map<string, PodFacts>();
  #owners = new Map<string, string>();
  #devices = new Map<number, string>();

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
      onError: (error) => void this.#syncFailed(error as Error),
    });
  }

  static async start(options: PolicySyncOptions): Promise<PolicySync> {
    const sync = new PolicySync(options);
    const loaded = await sync.#loadDatapath();
    // The maps are open (conntrack included) and nothing is written yet.
    await options.beforeFirstSync?.(sync.#compiler);
    await options.prefilter?.load();
    await sync.#watch();
    sync.#listed = true;
    sync.request();
    await sync.#task.idle();
    // The programs of the last run stay attached, on the maps they had, until the maps hold
    // this run's state: only then do the new programs replace them.
    for (const endpoint of options.endpoints()) {
      await options.loader.attach(endpoint.ifindex, 'pal_from_pod', 'ingress').catch(() => undefined);
      await options.loader.attach(endpoint.ifindex, 'pal_to_pod', 'egress').catch(() => undefined);
    }
    await sync.#finishMigration(loaded);
    // A loader that dies leaves the pinned maps enforcing, but no sync can
    // write any more: the next one fails and reports it (Ready False, event).
    void options.loader.exited.then(() => sync.#stopping || sync.request());
    return sync;
  }

  /** The compiler (for the DNS proxy: its judgements and learned names; changes go through request/syncNow). */
  get compiler(): Compiler {
    return this.#compiler;
  }

  /** Resolves after a sync that started after the call (the DNS proxy releases an answer once its addresses are written). */
  async syncNow(): Promise<void> {
    await this.#task.runSoon();
  }

  /** A pod's labels, as the flows show them. */
  labels(pod: string): Readonly<Record<string, string>> | undefined {
    return this.#podFacts.get(pod)?.labels;
  }

  request(): void {
    // Before every informer has listed, a sync would see a partial cluster
    // (pods without their identities, say) and write it: wait for all of them.
    if (this.#listed) this.#task.request();
  }

  /**
   * Called by CNI ADD before it answers. The pod's device is first entered
   * closed (deny all), then the programs attach, then a sync must write the
   * pod's policy: ADD succeeds only once one has, and fails with the sync's
   * error otherwise. No packet of the pod ever passes unenforced.
   */
  async ensureEndpoint(endpoint: Endpoint): Promise<void> {
    const closed = { key: u32Key.encode(endpoint.ifindex), value: endpointInfo.encode(closedEndpointInfo(endpoint.ip)) };
    await this.#o.loader.update('pal_endpoints', [closed]);
    this.#record('pal_endpoints', [{ key: closed.key.toString('hex'), value: closed.value.toString('hex') }], []);
    try {
      await this.#o.loader.attach(endpoint.ifindex, 'pal_from_pod', 'ingress');
      await this.#o.loader.attach(endpoint.ifindex, 'pal_to_pod', 'egress');
    } catch (error) {
      this.#o.metrics?.datapathError('attach');
      throw error;
    }
    await this.learnPod(endpoint);
    await this.#task.runSoon();
  }

  /**
   * The kubelet creates the Pod object before calling CNI, but our watch may
   * not have delivered it yet: read it directly, with the address CNI gave it.
   * Called by CNI ADD before the endpoint is registered, so that no sync sees
   * the endpoint without its pod (it would be denied everything and reported
   * as unknown meanwhile). A pod the API server does not know is enforced
   * fail-closed until it appears.
   */
  async learnPod(endpoint: Pick<Endpoint, 'podNamespace' | 'podName' | 'ip'>): Promise<void> {
    if (!endpoint.podNamespace || !endpoint.podName || this.#compiler.result(`${endpoint.podNamespace}/${endpoint.podName}`)) return;
    const pod = await this.#core.readNamespacedPod({ namespace: endpoint.podNamespace, name: endpoint.podName }).catch((error: unknown) => {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    });
    if (pod) this.#setPod(pod, endpoint.ip);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#watches.map((w) => w.stop()));
    await this.#task.idle();
  }

  async #loadDatapath(): Promise<LoadedObject> {
    const { loader, objectPath, pinDir } = this.#o;
    const loaded = await loader.load(objectPath, pinDir, { globals: loadGlobals(this.#o.globals), mapSizes: this.#o.mapSizes }).catch((error: unknown) => {
      this.#o.metrics?.datapathError('load');
      throw error;
    });
    // Maps of another layout or size were set aside by the load: their entries first.
    this.#logCopies('migrating pinned maps', await copySetAside(loader, pinDir, loaded));
    this.#capacity = Object.fromEntries(PLANNED_MAPS.map((map) => [map, loaded.maps.find((m) => m.name === map)?.maxEntries ?? Infinity]));
    // Pinned maps survive restarts: what they hold is what is applied.
    await this.#readApplied();
    const [config] = await loader.dump('pal_config');
    this.#revision = config ? datapathConfig.decode(config.value).policyRevision : 0;
    return loaded;
  }

  /** After the new programs attached: the connections the old ones opened meanwhile, then the old maps go. */
  async #finishMigration(loaded: LoadedObject): Promise<void> {
    const { loader, pinDir } = this.#o;
    if ((await setAsideMaps(pinDir)).length === 0) return;
    this.#logCopies('migrating pinned maps, connections opened meanwhile', await copySetAside(loader, pinDir, loaded, STATEFUL_MAPS));
    await removeSetAside(pinDir);
    this.#o.log('datapath: migration of pinned maps done; the old maps are unpinned');
  }

  #logCopies(what: string, copies: MapCopy[]): void {
    for (const c of copies) {
      this.#o.log(`datapath: ${what}: ${c.map}: ${c.copied} entries copied${c.dropped ? `, ${c.dropped} dropped (${c.why})` : ''}`);
    }
  }

  async #readApplied(): Promise<void> {
    for (const map of PLANNED_MAPS) {
      const entries = await this.#o.loader.dump(map);
      this.#applied.set(map, new Map(entries.map((e) => [e.key.toString('hex'), e.value.toString('hex')])));
    }
    this.#appliedUnknown = false;
  }

  async #watch(): Promise<void> {
    const { kubeconfig, log } = this.#o;
    const core = kubeconfig.makeApiClient(CoreV1Api);
    const networking = kubeconfig.makeApiClient(NetworkingV1Api);
    const custom = kubeconfig.makeApiClient(CustomObjectsApi);
    const discovery = kubeconfig.makeApiClient(DiscoveryV1Api);
    const c = this.#compiler;

    this.#informer<V1Pod>('Pod', makeInformer(kubeconfig, '/api/v1/pods', () => core.listPodForAllNamespaces()), {
      set: (pod) => this.#setPod(pod),
      remove: (pod) => {
        c.deletePod(pod.metadata!.namespace!, pod.metadata!.name!);
        this.#podFacts.delete(`${pod.metadata!.namespace}/${pod.metadata!.name}`);
      },
    });
    this.#informer<V1Namespace>('Namespace', makeInformer(kubeconfig, '/api/v1/namespaces', () => core.listNamespace()), {
      set: (ns) => c.setNamespace({ name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} }),
      remove: (ns) => c.deleteNamespace(ns.metadata!.name!),
    });
    this.#informer<V1NetworkPolicy>(
      'NetworkPolicy',
      makeInformer(kubeconfig, '/apis/networking.k8s.io/v1/networkpolicies', () => networking.listNetworkPolicyForAllNamespaces()),
      {
        set: (p) => {
          const ref = { namespace: p.metadata!.namespace!, name: p.metadata!.name! };
          c.setPolicy({ ...ref, spec: networkPolicySpec(p) });
          this.#rules.setPolicy(ref, { ingress: p.spec?.ingress?.length ?? 0, egress: p.spec?.egress?.length ?? 0 });
        },
        remove: (p) => {
          c.deletePolicy(p.metadata!.namespace!, p.metadata!.name!);
          this.#rules.deletePolicy({ namespace: p.metadata!.namespace!, name: p.metadata!.name! });
        },
      },
    );
    // Palisade's own kinds; an invalid one is enforced fail closed (palisade-policy-input.ts).
    for (const info of PALISADE_POLICY_KINDS) {
      const coordinates = { group: PALISADE_POLICY_GROUP, version: PALISADE_POLICY_VERSION, plural: info.plural };
      const kind = info.kind as PalisadePolicyKind;
      const refOf = (p: StoredPalisadePolicy) => ({ kind, namespace: kind === 'PalisadeClusterNetworkPolicy' ? '' : p.metadata!.namespace!, name: p.metadata!.name! });
      this.#informer<StoredPalisadePolicy & KubernetesObject>(
        kind,
        makeInformer(kubeconfig, `/apis/${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}/${info.plural}`, () =>
          (info.scope === 'Namespaced' ? custom.listCustomObjectForAllNamespaces(coordinates) : custom.listClusterCustomObject(coordinates)) as never,
        ),
        {
          set: (p) => {
            const read = readPalisadePolicy(kind, p);
            const key = policyRefString(refOf(p));
            if (read.problem && this.#policyProblems.get(key) !== read.problem) log(`policy: ${kind} ${key}: ${read.problem}`);
            if (read.problem) this.#policyProblems.set(key, read.problem);
            else this.#policyProblems.delete(key);
            c.setPalisadePolicy(read.input);
            this.#o.prefilter?.setPolicy(read.input);
            this.#rules.setPolicy(refOf(p), read.rules);
          },
          remove: (p) => {
            const ref = refOf(p);
            c.deletePalisadePolicy(kind, ref.namespace, ref.name);
            this.#o.prefilter?.deletePolicy(kind, ref.namespace, ref.name);
            this.#rules.deletePolicy(ref);
            this.#policyProblems.delete(policyRefString(ref));
          },
        },
      );
    }
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
    // Services and their EndpointSlices: the frontends pods' traffic is translated for (services.ts).
    const keep = <T extends KubernetesObject>(objects: Map<string, T>) => ({
      set: (o: T) => {
        objects.set(`${o.metadata!.namespace}/${o.metadata!.name}`, o);
        this.#frontends = undefined;
      },
      remove: (o: T) => {
        objects.delete(`${o.metadata!.namespace}/${o.metadata!.name}`);
        this.#frontends = undefined;
      },
    });
    this.#informer<V1Service>('Service', makeInformer(kubeconfig, '/api/v1/services', () => core.listServiceForAllNamespaces()), keep(this.#services));
    this.#informer<V1EndpointSlice>(
      'EndpointSlice',
      makeInformer(kubeconfig, '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces()),
      keep(this.#slices),
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

  /** `cniAddress`: the address CNI gave a local pod whose endpoint is not registered yet. */
  #setPod(pod: V1Pod, cniAddress?: string): void {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    // Until the kubelet reports the pod IP, a local pod's address is the one CNI gave it.
    const local = pod.status?.podIP ? undefined : (cniAddress ?? this.#o.endpoints().find((e) => e.podNamespace === namespace && e.podName === name)?.ip);
    // Terminal and host-network pods claim no address (pod-input.ts).
    this.#compiler.setPod(podInput(pod, local));
    this.#podFacts.set(`${namespace}/${name}`, { namespace, name, labels: pod.metadata?.labels ?? {} });
  }

  /** The node's realized state and the fill of the maps it writes (for `kubectl palisade status`). */
  datapathStatus(): { revision: number; ready: boolean; message: string; endpoints: number; maps: Record<string, { entries: number; capacity: number | null }> } {
    const maps = Object.fromEntries(PLANNED_MAPS.map((m) => {
      const capacity = this.#capacity[m];
      return [m, { entries: this.#applied.get(m)?.size ?? 0, capacity: capacity === undefined || capacity === Infinity ? null : capacity }];
    }));
    const st = this.#status;
    return { revision: this.#revision, ready: st?.ready ?? false, message: st?.message ?? 'starting', endpoints: st?.endpoints ?? 0, maps };
  }

  /** The verdict this node's maps give a new connection of a local pod (map-verdict.ts); undefined when the pod is not local. */
  mapVerdict(pod: string, q: Omit<MapQuery, 'ifindex' | 'hostReachesPods'>): MapVerdict | undefined {
    const ifindex = [...this.#devices].find(([, key]) => key === pod)?.[0];
    if (ifindex === undefined) return undefined;
    return mapVerdict(this.#applied, { ...q, ifindex, hostReachesPods: this.#o.globals.hostReachesPods });
  }

  /** What the flow pipeline enriches events with; addresses and devices as of the last sync. */
  flowContext(): FlowContext {
    return {
      node: this.#o.node,
      endpoint: (ifindex) => this.#devices.get(ifindex),
      owner: (ip) => this.#owners.get(ip),
      pod: (key) => this.#podFacts.get(key),
      rules: this.#rules,
      isolatedBy: (pod, direction) => this.#compiler.result(pod)?.[direction]?.isolatedBy,
      deniedBy: (pod, direction) => this.#compiler.result(pod)?.[direction === 'ingress' ? 'ingressDeny' : 'egressDeny']?.isolatedBy,
      allowedBy: (pod, direction) => {
        const dp = this.#compiler.result(pod)?.[direction];
        return dp && rulePolicies(dp);
      },
      dnsNamesOf: (address) => this.#compiler.dnsNamesOf(address),
    };
  }

  #setIdentity(identity: SecurityIdentity, present: boolean): void {
    const name = identity.metadata!.name!;
    if (present) this.#identities.set(name, identity);
    else this.#identities.delete(name);
    this.#compiler.setIdentities(new Map([...this.#identities].map(([id, i]) => [i.spec.key, Number(id)])));
  }

  async #sync(): Promise<void> {
    // Even a sync with nothing to write fails without a loader: the node could not write the next change.
    const broken = this.#o.loader.failure;
    if (broken) throw new Error(`the datapath loader is gone: ${broken}`);
    const realized = new Map(this.#seen);
    const eventAt = this.#firstPendingEventAt;
    this.#firstPendingEventAt = undefined;
    const started = performance.now();
    const startedAt = Date.now();
    const endpoints = this.#o.endpoints();
    // This node's CNI registry decides who owns its local addresses (Compiler.addressOwners).
    this.#compiler.setLocalAddresses(new Map(endpoints.filter((e) => e.podNamespace && e.podName).map((e) => [e.ip, `${e.podNamespace}/${e.podName}`])));
    const compiled = new Map(endpoints.flatMap((e) => {
      const key = `${e.podNamespace}/${e.podName}`;
      const result = this.#compiler.result(key);
      return result ? [[key, result] as const] : [];
    }));
    // What the XDP prefilter must drop, from the same events as `compiled` (taken before any await).
    const prefilter = this.#o.prefilter?.snapshot(endpoints);
    const since = this.#compiler.endpointsChangedSince(this.#generation);
    this.#generation = since.generation;
    // After a start or a failed write, the kernel's maps are the reference: plan all, diff all.
    const full = this.#appliedUnknown || since.full || !this.#planned;
    if (!this.#frontends) {
      const made = serviceFrontends(this.#services.values(), this.#slices.values(), this.#o.node);
      this.#frontends = { frontends: made.frontends, problems: made.problems.map((p) => `Service ${p.service}: ${p.message}`), apiServers: apiServerAddresses(this.#slices.values()) };
    }
    const plan = this.#planner.plan(
      {
        endpoints: endpoints.map((e) => ({ key: `${e.podNamespace}/${e.podName}`, ifindex: e.ifindex, ip: e.ip })),
        compiled,
        podIdentities: this.#compiler.ipcache(),
        nodeAddresses: this.#o.nodeAddresses(),
        apiServerAddresses: this.#frontends.apiServers,
        frontends: this.#frontends.frontends,
        capacity: this.#capacity,
        maxEntriesPerEndpoint: this.#o.maxEntriesPerEndpoint,
      },
      full ? 'all' : new Set(since.changed),
    );
    const compiledAt = Date.now();
    const compiledMs = performance.now() - started;
    if (this.#appliedUnknown) await this.#readApplied();
    const steps = orderWrites(full ? diffMaps(plan.full(), this.#applied) : this.#withEndpoints(plan), this.#applied, this.#capacity);
    this.#planned = true;
    const diffedAt = Date.now();
    // Before anything admits an address's new owner: its previous owner's conntrack entries go.
    const owners = this.#compiler.addressOwners();
    await this.#purge.run(this.#o.loader, owners, endpoints, this.#o.log);
    this.#owners = new Map([...owners].map(([ip, o]) => [ip, o.pod]));
    this.#devices = new Map(endpoints.map((e) => [e.ifindex, `${e.podNamespace}/${e.podName}`]));
    // The prefilter never drops what the maps let through: narrowed before they change, widened after.
    if (prefilter) await this.#o.prefilter!.narrow(prefilter);
    if (steps.length > 0) {
      await this.#write(steps);
      this.#revision = (this.#revision + 1) >>> 0;
      await this.#o.loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: this.#revision, flags: 0 }) }]);
      const count = steps.reduce((n, step) => n + step.entries.length, 0);
      this.#o.log(`policy: revision ${this.#revision}: ${count} map changes in ${(performance.now() - started).toFixed(1)} ms (plan ${compiledMs.toFixed(1)} ms)`);
      // Stage timestamps (wall clock, ms) for the apply-latency benchmark: the first
      // watch event of this batch, compile and plan done, diff done, maps written.
      this.#o.log(`policy-stages ${JSON.stringify({ revision: this.#revision, eventAt, startedAt, compiledAt, diffedAt, writtenAt: Date.now() })}`);
      if (eventAt !== undefined) this.#o.metrics?.realized((Date.now() - eventAt) / 1000);
    }
    if (prefilter) await this.#o.prefilter!.widen(prefilter);
    if (plan.skippedAddresses.length > 0) {
      plan.problems.push({
        endpoint: 'node',
        message: `${plan.skippedAddresses.length} addresses left out of the ipcache (not IPv4, or the map is full), judged as world: ${plan.skippedAddresses.slice(0, 5).join(', ')}${plan.skippedAddresses.length > 5 ? ', ...' : ''}`,
      });
    }
    const problems = plan.problems.map(problemText);
    const events = plan.problems.filter((p) => p.endpoint !== 'node');
    // Services the datapath leaves to kube-proxy (SCTP) are logged; they do not make the node unready.
    const logged = [...problems, ...this.#frontends.problems];
    if (logged.join('\n') !== this.#loggedProblems) {
      this.#loggedProblems = logged.join('\n');
      for (const problem of logged) this.#o.log(`policy: ${problem}`);
    }
    this.#status = {
      revision: this.#revision,
      endpoints: endpoints.length,
      realized: Object.fromEntries([...realized].map(([kind, rv]) => [kind, rv.toString()])),
      pendingIdentities: this.#compiler.missingIdentities().length,
      ready: plan.problems.length === 0,
      message: problems.length === 0 ? 'enforcing' : problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : ''),
    };
    this.#o.status.report(this.#status);
    this.#failureEvent = '';
    await this.#events.report(events);
  }

  /**
   * Writes the steps in order (see map-writes.ts). If one fails, the
   * endpoints whose entries were being written are closed (best effort:
   * updating an existing key needs no room) and the maps are read back
   * before the next attempt, so nothing is left half-written and open.
   */
  async #write(steps: WriteStep[]): Promise<void> {
    const { loader } = this.#o;
    try {
      await writeSteps(loader, steps, (step) => this.#record(step.map, step.op === 'update' ? step.entries : [], step.op === 'delete' ? step.entries.map((e) => e.key) : []));
    } catch (error) {
      this.#o.metrics?.datapathError('write');
      this.#appliedUnknown = true;
      const touched = new Set(
        steps.flatMap((s) => (isEndpointMap(s.map) ? s.entries.map((e) => endpointIdOfKey(s.map as EndpointMap, e.key)) : [])),
      );
      const close = [...(this.#applied.get('pal_endpoints') ?? [])]
        .map(([key, value]) => ({ key, info: endpointInfo.decode(Buffer.from(value, 'hex')) }))
        .filter(({ info }) => touched.has(info.endpointId))
        .map(({ key, info }) => ({ key: Buffer.from(key, 'hex'), value: endpointInfo.encode(closedEndpointInfo(info.ipv4)) }));
      if (close.length > 0) {
        await loader.update('pal_endpoints', close).catch((closing: unknown) => this.#o.log(`policy: could not close endpoints after a failed write: ${(closing as Error).message}`));
        this.#o.log(`policy: closed ${close.length} endpoints whose entries could not be written`);
      }
      throw error;
    }
  }

  /**
   * A sync failed: the node keeps what its maps hold (new endpoints stay
   * closed), and says so: Ready False with the reason in its PalisadeNode
   * status, a Warning event once per distinct failure, a log line each time.
   */
  async #syncFailed(error: Error): Promise<void> {
    this.#planned = false; // the planner may be ahead of the maps: the next sync diffs them whole
    const message = `policy sync failed, retrying: ${error.message}`;
    this.#o.log(`policy: ${message}`);
    this.#o.status.report({ ...(this.#status ?? { revision: this.#revision, endpoints: 0, realized: {}, pendingIdentities: 0 }), ready: false, message });
    if (message === this.#failureEvent) return;
    this.#failureEvent = message;
    await postWarningEvent(this.#core, {
      involved: { apiVersion: 'palisade.io/v1alpha1', kind: 'PalisadeNode', namespace: '', name: this.#o.node },
      reason: 'PolicySyncFailed',
      message: `node ${this.#o.node}: ${message}`,
      component: 'palisade-agent',
      host: this.#o.node,
    }).catch((posting: unknown) => this.#o.log(`could not record the sync failure as an event: ${(posting as Error).message}`));
  }

  /** The plan's changes, with pal_endpoints diffed whole against the kernel (CNI ADD writes closed entries there itself). */
  #withEndpoints(plan: IncrementalPlan): MapChanges {
    const endpoints = diffMaps(new Map([['pal_endpoints', plan.endpoints]]), new Map([['pal_endpoints', this.#applied.get('pal_endpoints') ?? new Map()]]));
    const updates = new Map(plan.changes.updates);
    const deletes = new Map(plan.changes.deletes);
    updates.delete('pal_endpoints');
    deletes.delete('pal_endpoints');
    for (const [m, list] of endpoints.updates) updates.set(m, list);
    for (const [m, list] of endpoints.deletes) deletes.set(m, list);
    return { updates, deletes, count: plan.changes.count + endpoints.count };
  }

  #record(map: PlannedMap, updates: Array<{ key: string; value: string }>, deletes: string[]): void {
    const applied = this.#applied.get(map) ?? new Map<string, string>();
    for (const u of updates) applied.set(u.key, u.value);
    for (const k of deletes) applied.delete(k);
    this.#applied.set(map, applied);
  }
}

function isEndpointMap(map: PlannedMap): map is EndpointMap {
  return (ENDPOINT_MAPS as readonly string[]).includes(map);
}
