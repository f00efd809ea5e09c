// The node's DNS path, put together (docs/adr/0012-dns-redirect.md): the
// proxy (proxy.ts) serves the upstreams the compiler names (the DNS
// servers' pods), each on a port of its own at the node's address; the
// datapath sends the queries of pods with FQDN or DNS rules there while
// the proxy's lease runs (dns-redirect.ts); answers are learned into the
// cache (dns-cache.ts) and the compiler, and released once a sync wrote the
// maps; learned names are saved, and restored before the agent's first
// sync, so a restart neither forgets nor cuts anything.
//
// Stopping ends the lease first: queries then go straight to their
// upstreams (DNS keeps working; only learning pauses) until the next agent
// takes over, restores the names and renews the lease.
import { join } from 'node:path';
import type { Flow } from '../../lib/flow.ts';
import type { Compiler } from '../../policy/compile.ts';
import type { Loader } from '../../datapath/loader-client.ts';
import { ct4Key, ctValue, DIRECTION } from '../../datapath/abi.ts';
import { DnsRedirect, planDnsProxy } from '../dns-redirect.ts';
import { DnsCache } from './dns-cache.ts';
import { dnsFlow } from './dns-flow.ts';
import { dnsAllows } from './dns-policy.ts';
import { DnsProxy } from './proxy.ts';
import { UnwrittenNames } from './unwritten-names.ts';
import type { AnswerFacts } from './dns-message.ts';

export interface DnsServiceOptions {
  node: string;
  loader: Loader;
  /** The node address pods' queries are redirected to. */
  proxyAddress: () => string | undefined;
  /** Proxy ports are handed out from here, one per upstream. */
  portBase: number;
  minTtlSeconds: number;
  maxTtlSeconds: number;
  refuseWith: 'REFUSED' | 'NXDOMAIN';
  stateDir: string;
  flows?: (flows: Flow[]) => void;
  log: (line: string) => void;
}

/** What the service needs of the policy sync. */
export interface DnsPolicy {
  readonly compiler: Compiler;
  request(): void;
  /** Resolves after a sync that started after the call. */
  syncNow(): Promise<void>;
  labels(pod: string): Readonly<Record<string, string>> | undefined;
}

const LEASE_SECONDS = 3;
const TICK_MS = 1000;

export class DnsService {
  readonly #o: DnsServiceOptions;
  readonly #cache: DnsCache;
  readonly #file: string;
  #policy: DnsPolicy | undefined;
  #proxy: DnsProxy | undefined;
  /** The address the proxy is bound to (its replies must come from the address the datapath redirected to). */
  #proxyAddress: string | undefined;
  #redirect: DnsRedirect | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ports = new Map<string, number>();
  #dirty = false;
  /** Peer addresses of the node's open connections, read from conntrack when some learned address is due. */
  #inUse = new Set<string>();
  /** Names learned whose sync is still writing them, for answers about them that teach nothing new. */
  readonly #unwritten = new UnwrittenNames();
  #ticking: Promise<void> = Promise.resolve();

  constructor(options: DnsServiceOptions) {
    this.#o = options;
    this.#file = join(options.stateDir, 'dns-cache.json');
    this.#cache = new DnsCache({
      minTtlSeconds: options.minTtlSeconds,
      maxTtlSeconds: options.maxTtlSeconds,
      apply: (name, addresses) => {
        this.#dirty = true;
        this.#policy?.compiler.setDnsName(name, addresses);
      },
      inUse: (address) => this.#inUse.has(address),
    });
  }

  /** Before the agent's first sync: the names the last run learned, into the compiler. */
  async restore(compiler: Compiler): Promise<void> {
    const inUse = await this.#peersInUse().catch(() => new Set<string>());
    const restored = await this.#cache.load(this.#file, Date.now(), (a) => inUse.has(a));
    for (const [name, addresses] of this.#cache.entries()) compiler.setDnsName(name, addresses);
    if (restored > 0) this.#o.log(`dns: restored ${restored} learned addresses of ${this.#cache.entries().size} names`);
  }

  /** Once the policy sync runs: the proxy listens, the datapath redirects to it, the lease is held. */
  async start(policy: DnsPolicy): Promise<void> {
    this.#policy = policy;
    this.#redirect = await DnsRedirect.start({ loader: this.#o.loader });
    await this.#tick();
    this.#timer = setInterval(() => (this.#ticking = this.#tick().catch((error: unknown) => this.#o.log(`dns: ${(error as Error).message}`))), TICK_MS);
  }

  #newProxy(address: string): DnsProxy {
    const policy = this.#policy!;
    const compiler = policy.compiler;
    return new DnsProxy({
      address,
      refuseWith: this.#o.refuseWith,
      allows: (client, upstream, name, protocol) => {
        const owner = compiler.podAt(client);
        const server = compiler.podAt(upstream);
        return dnsAllows(owner && compiler.result(owner.pod), { address: upstream, identity: server?.identity ?? 2 }, protocol, name, (r) => compiler.dnsRestriction(r));
      },
      learn: (facts) => this.#learn(facts),
      onEvent: (e) => this.#o.flows?.([dnsFlow(e, {
        node: this.#o.node,
        pod: (ip) => {
          const o = compiler.podAt(ip);
          return o && { key: o.pod, identity: o.identity };
        },
        labels: (pod) => policy.labels(pod),
        isolated: (pod) => compiler.result(pod)?.egress !== undefined,
      })]),
      log: this.#o.log,
    });
  }

  /**
   * Answers: names some FQDN selector wants are learned; resolves once the maps allow their addresses.
   * An answer that teaches nothing new still waits while the sync writing an earlier answer's addresses
   * of one of its names runs (the same name asked twice at once: unwritten-names.ts).
   */
  async #learn(facts: AnswerFacts): Promise<void> {
    const policy = this.#policy!;
    const changed: string[] = [];
    const waits = new Set<Promise<void>>();
    const now = Date.now();
    for (const [name, { addresses, ttl }] of facts.names) {
      if (!policy.compiler.dnsNameWanted(name)) continue;
      if (this.#cache.learn(name, addresses, ttl, now)) changed.push(name);
      else {
        const pending = this.#unwritten.pending(name);
        if (pending) waits.add(pending);
      }
    }
    if (changed.length > 0) {
      const sync = policy.syncNow();
      this.#unwritten.writing(changed, sync);
      waits.add(sync);
    }
    await Promise.all(waits);
  }

  /** Upstreams follow the DNS servers' pods; the lease is renewed; names expire; the cache is saved when it changed. */
  async #tick(): Promise<void> {
    const compiler = this.#policy!.compiler;
    const upstreams = compiler.dnsServerAddresses().filter((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip));
    const ports = new Map<string, number>();
    const used = new Set<number>();
    for (const ip of upstreams) {
      const keep = this.#ports.get(ip);
      if (keep !== undefined) (ports.set(ip, keep), used.add(keep));
    }
    let next = this.#o.portBase;
    for (const ip of upstreams) {
      if (ports.has(ip)) continue;
      while (used.has(next)) next++;
      ports.set(ip, next);
      used.add(next);
    }
    const address = this.#o.proxyAddress();
    if (address && address !== this.#proxyAddress) {
      await this.#proxy?.stop();
      this.#proxy = this.#newProxy(address);
      this.#proxyAddress = address;
      this.#ports = new Map();
    }
    if (address && this.#proxy) {
      await this.#proxy.setUpstreams(ports);
      this.#ports = ports;
      const plan = planDnsProxy({ proxyAddress: address, upstreams: ports });
      for (const p of plan.problems) this.#o.log(`dns: ${p}`);
      await this.#redirect!.apply(plan);
      if (plan.proxyAddress) await this.#redirect!.renew(LEASE_SECONDS);
    }
    // A learned address whose TTL ran out stays while a connection to it is open (conntrack, read now:
    // a connection opened a moment ago counts), so expiry never cuts one.
    const now = Date.now();
    if (this.#cache.due(now)) {
      this.#inUse = await this.#peersInUse();
      if (this.#cache.expire(now).length > 0) this.#policy!.request();
    }
    if (this.#dirty) {
      this.#dirty = false;
      await this.#cache.save(this.#file).catch((error: unknown) => this.#o.log(`dns: cannot save learned names: ${(error as Error).message}`));
    }
  }

  /**
   * The peers of the connections pods opened that are still open (conntrack:
   * opened at the egress hook, no FIN or RST seen, not revoked): what a
   * learned address must stay for. Connections into pods, or closed ones,
   * keep nothing alive.
   */
  async #peersInUse(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const e of await this.#o.loader.dump('pal_ct4')) {
      const v = ctValue.decode(e.value);
      if (v.origin === DIRECTION.EGRESS && !v.closing && !v.revoked) out.add(ct4Key.decode(e.key).peerAddr);
    }
    return out;
  }


  /** The lease ends first (queries go straight to their upstreams), then the proxy stops; the names are saved. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#ticking;
    await this.#redirect?.expire().catch(() => undefined);
    // Answers on their way are still handed out.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await this.#proxy?.stop();
    await this.#cache.save(this.#file).catch(() => undefined);
  }
}
