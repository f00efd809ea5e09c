// The datapath's side of the node's DNS proxy (docs/adr/0012-dns-redirect.md):
// which upstreams' DNS queries the datapath sends to the proxy, on which
// port of it, at which address, and the proxy's lease.
//
// pal_dns_upstreams (upstream address -> proxy port) and pal_dns_proxy (the
// proxy's address and lease) are node-wide and small (at most
// PAL_DNS_UPSTREAMS_MAX upstreams), so they are not part of the planner's
// maps (datapath-plan.ts): planDnsProxy() (pure) says what they must hold,
// and DnsRedirect writes it, comparing with a dump each time (no state to
// lose across a restart). Which pods are redirected is the planner's: the
// endpoint flag DNS_REDIRECT of pods whose compiled policy has `dns`.
//
// The lease: the datapath sends queries to the proxy only while the
// kernel's 64-bit jiffies are below pal_dns_proxy.alive_until. The proxy
// renews it (DnsRedirect.renew) every second or so while it serves, for a
// few seconds at a time; when it stops, or the agent dies, the lease runs
// out and queries go to their upstreams again (or, for pods whose DNS rules
// must not be bypassed, DNS_NO_FALLBACK, are dropped). The clock is the
// datapath's: pal_clock writes the 64-bit jiffies into its test_run packet;
// HZ is measured once at start, as the conntrack garbage collector does.
import { isIPv4 } from 'node:net';
import { CLOCK_PROGRAM, dnsProxy, dnsUpstream, ipv4Key, jiffies64FromClock, u32Key } from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { nearestHz } from './conntrack-gc.ts';

/** bpf/lib/dns.h PAL_DNS_UPSTREAMS_MAX: max_entries of pal_dns_upstreams. */
export const DNS_UPSTREAMS_MAX = 256;

export interface DnsProxyInput {
  /** The IPv4 address the proxy listens on (at every proxy port), e.g. the node's; it must not be an upstream. */
  proxyAddress: string;
  /** Each upstream's IPv4 address (a DNS server pods query on port 53, as reached after Service translation: the kube-dns pods) -> the proxy port standing in for it. Several upstreams may share a port. */
  upstreams: ReadonlyMap<string, number>;
}

export interface DnsProxyPlan {
  /** pal_dns_upstreams as it must be: key hex -> value hex. */
  upstreams: Map<string, string>;
  /** pal_dns_proxy's address; undefined: no proxy (nothing is redirected). */
  proxyAddress: string | undefined;
  /** What was left out, and why. */
  problems: string[];
}

/**
 * What pal_dns_upstreams and pal_dns_proxy's address must be. An upstream
 * that is not IPv4, has no valid port, is the proxy's own address (its
 * queries would loop) or does not fit the map is left out (its queries go to
 * it directly) and reported; an invalid proxy address redirects nothing.
 */
export function planDnsProxy(input: DnsProxyInput, capacity = DNS_UPSTREAMS_MAX): DnsProxyPlan {
  const problems: string[] = [];
  const upstreams = new Map<string, string>();
  if (!isIPv4(input.proxyAddress) || input.proxyAddress === '0.0.0.0') {
    return { upstreams, proxyAddress: undefined, problems: [`DNS proxy address ${input.proxyAddress} is not a usable IPv4 address; no query is redirected`] };
  }
  for (const [upstream, port] of [...input.upstreams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!isIPv4(upstream) || upstream === '0.0.0.0') {
      problems.push(`DNS upstream ${upstream} left out: not an IPv4 address`);
    } else if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push(`DNS upstream ${upstream} left out: proxy port ${port} is not a port`);
    } else if (upstream === input.proxyAddress) {
      problems.push(`DNS upstream ${upstream} left out: it is the proxy's own address`);
    } else if (upstreams.size >= capacity) {
      problems.push(`DNS upstream ${upstream} left out: the node's upstream map is full (${capacity}); its queries go to it directly`);
    } else {
      upstreams.set(ipv4Key.encode(upstream).toString('hex'), dnsUpstream.encode({ proxyPort: port }).toString('hex'));
    }
  }
  return { upstreams, proxyAddress: input.proxyAddress, problems };
}

/** The writes that take pal_dns_upstreams from `applied` to `desired` (key hex -> value hex). */
export function diffUpstreams(desired: ReadonlyMap<string, string>, applied: ReadonlyMap<string, string>): { updates: Array<{ key: string; value: string }>; deletes: string[] } {
  return {
    updates: [...desired].filter(([k, v]) => applied.get(k) !== v).map(([key, value]) => ({ key, value })),
    deletes: [...applied.keys()].filter((k) => !desired.has(k)),
  };
}

/** pal_dns_proxy.alive_until for a lease of `seconds` from `now` (64-bit jiffies) at `hz`: at least one tick ahead. */
export function leaseUntil(now: bigint, seconds: number, hz: number): bigint {
  if (!(seconds > 0) || !Number.isFinite(seconds)) throw new RangeError(`a lease of ${seconds} s`);
  return now + BigInt(Math.max(1, Math.ceil(seconds * hz)));
}

/** The kernel's 64-bit jiffies, through the loaded object's pal_clock. */
export async function readJiffies64(loader: Loader): Promise<bigint> {
  return jiffies64FromClock((await loader.testRun(CLOCK_PROGRAM, Buffer.alloc(64))).data);
}

const hex = (h: string) => Buffer.from(h, 'hex');
const ZERO = u32Key.encode(0);

/**
 * Writes pal_dns_upstreams and pal_dns_proxy through the loader; the lease's
 * renewal is the proxy's. pal_dns_proxy is written whole from what this
 * object last set (address and lease), so concurrent calls cannot put back
 * an older address or lease.
 */
export class DnsRedirect {
  readonly #loader: Loader;
  readonly #hz: number;
  #addr: string;
  #aliveUntil: bigint;

  private constructor(loader: Loader, hz: number, current: { addr: string; aliveUntil: bigint }) {
    this.#loader = loader;
    this.#hz = hz;
    this.#addr = current.addr;
    this.#aliveUntil = current.aliveUntil;
  }

  /** Reads what pal_dns_proxy holds (a restarted agent takes the running lease over) and measures the kernel's HZ on the datapath's clock (about a quarter of a second). */
  static async start(o: { loader: Loader }): Promise<DnsRedirect> {
    const current = await readProxy(o.loader);
    const [j0, t0] = [await readJiffies64(o.loader), performance.now()];
    await new Promise((resolve) => setTimeout(resolve, 250));
    const [j1, t1] = [await readJiffies64(o.loader), performance.now()];
    return new DnsRedirect(o.loader, nearestHz(Number(j1 - j0), (t1 - t0) / 1000), current);
  }

  get hz(): number {
    return this.#hz;
  }

  /** The datapath's clock: the kernel's 64-bit jiffies. */
  clock(): Promise<bigint> {
    return readJiffies64(this.#loader);
  }

  /** pal_dns_proxy as the map holds it: the address (0.0.0.0: none) and alive_until (0n: not alive). */
  proxy(): Promise<{ addr: string; aliveUntil: bigint }> {
    return readProxy(this.#loader);
  }

  /** Whether the lease runs now, by the datapath's clock. */
  async alive(): Promise<boolean> {
    const { addr, aliveUntil } = await this.proxy();
    return addr !== '0.0.0.0' && (await this.clock()) < aliveUntil;
  }

  /**
   * Makes pal_dns_upstreams and the proxy's address what `plan` says,
   * keeping the lease as it is (a new address takes over the running lease;
   * no address ends it). Upstreams are written before the address, and
   * upstreams that go are deleted after it.
   */
  async apply(plan: DnsProxyPlan): Promise<void> {
    const applied = new Map((await this.#loader.dump('pal_dns_upstreams')).map((e) => [e.key.toString('hex'), e.value.toString('hex')]));
    const { updates, deletes } = diffUpstreams(plan.upstreams, applied);
    if (updates.length > 0) await this.#loader.update('pal_dns_upstreams', updates.map((u) => ({ key: hex(u.key), value: hex(u.value) })));
    const addr = plan.proxyAddress ?? '0.0.0.0';
    if (addr !== this.#addr || (await readProxy(this.#loader)).addr !== addr) {
      this.#addr = addr;
      if (addr === '0.0.0.0') this.#aliveUntil = 0n;
      await this.#write();
    }
    if (deletes.length > 0) await this.#loader.delete('pal_dns_upstreams', deletes.map(hex));
  }

  /** Renews the lease for `seconds` from now; returns alive_until. Refused while no proxy address is set. */
  async renew(seconds: number): Promise<bigint> {
    const now = await this.clock();
    if (this.#addr === '0.0.0.0') throw new Error('no DNS proxy address: apply() a plan with one before renewing its lease');
    this.#aliveUntil = leaseUntil(now, seconds, this.#hz);
    await this.#write();
    return this.#aliveUntil;
  }

  /** Ends the lease now: queries go to their upstreams (or are dropped, for DNS_NO_FALLBACK pods) from the next packet. */
  async expire(): Promise<void> {
    this.#aliveUntil = 0n;
    await this.#write();
  }

  #write(): Promise<number> {
    return this.#loader.update('pal_dns_proxy', [{ key: ZERO, value: dnsProxy.encode({ addr: this.#addr, aliveUntil: this.#aliveUntil }) }]);
  }
}

async function readProxy(loader: Loader): Promise<{ addr: string; aliveUntil: bigint }> {
  const entry = (await loader.dump('pal_dns_proxy'))[0];
  return entry ? dnsProxy.decode(entry.value) : { addr: '0.0.0.0', aliveUntil: 0n };
}
