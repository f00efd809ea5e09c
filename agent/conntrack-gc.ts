// Removes the conntrack entries of connections that have gone quiet, so that
// pal_ct4 holds live connections, not history. Nothing else removes them:
// pal_ct4 never evicts (docs/adr/0003-conntrack-budget.md), and each
// endpoint's new connections are refused once it holds its budget of
// entries, so without this pass every pod would in time be refused.
//
// expiredEntries() is pure. ConntrackGc runs it on a dump of the map every
// interval and deletes what expired through the object's pal_ct_forget
// program, which deletes an entry only if it was not refreshed since the
// dump and keeps pal_ct_budget's per-endpoint counts exact; then it drops
// the counters of devices that are no longer endpoints and hold nothing.
// A revoked connection's entry is refreshed by its (dropped) packets like
// any other, so it expires only once both sides have been silent for the
// whole timeout. The clock is the datapath's: jiffies, read through the
// object's pal_clock program; the kernel's HZ is measured once at start.
import { CLOCK_PROGRAM, CT_FORGET_BATCH, CT_FORGET_PROGRAM, ct4Key, ctBudget, ctForget, ctValue, PROTOCOL, u32Key } from '../datapath/abi.ts';
import type { Loader, MapEntry } from '../datapath/loader-client.ts';

export interface CtTimeouts {
  /** An established TCP connection. */
  tcpSeconds: number;
  /** A TCP connection that has seen a FIN or RST. */
  tcpClosingSeconds: number;
  /** UDP, SCTP, ICMP and the rest. */
  otherSeconds: number;
}

/** Cilium's defaults. */
export const DEFAULT_CT_TIMEOUTS: CtTimeouts = { tcpSeconds: 21_600, tcpClosingSeconds: 10, otherSeconds: 60 };

/** The kernel's possible HZ values. */
const HZ_VALUES = [100, 250, 300, 1000];

/**
 * The keys of entries idle for longer than their timeout at `nowJiffies`
 * (low 32 bits, like ct_value.last_seen; differences are taken modulo 2^32).
 * An entry stamped after `now` (written while the map was read) is not idle.
 */
export function expiredEntries(entries: readonly MapEntry[], nowJiffies: number, hz: number, timeouts: CtTimeouts): MapEntry[] {
  return entries.filter((entry) => {
    const value = ctValue.decode(entry.value);
    const tcp = ct4Key.decode(entry.key).protocol === PROTOCOL.TCP;
    const timeout = tcp ? (value.closing ? timeouts.tcpClosingSeconds : timeouts.tcpSeconds) : timeouts.otherSeconds;
    const idle = (nowJiffies - value.lastSeen) >>> 0;
    return idle < 2 ** 31 && idle > timeout * hz;
  });
}

/** The keys of expiredEntries(). */
export function expiredKeys(entries: readonly MapEntry[], nowJiffies: number, hz: number, timeouts: CtTimeouts): Buffer[] {
  return expiredEntries(entries, nowJiffies, hz, timeouts).map((entry) => entry.key);
}

/** pal_ct_forget's inputs for `entries`: an Ethernet header's 14 bytes (ignored), then up to CT_FORGET_BATCH records each. */
export function forgetBatches(entries: readonly MapEntry[]): Buffer[] {
  const batches: Buffer[] = [];
  for (let i = 0; i < entries.length; i += CT_FORGET_BATCH) {
    const records = entries.slice(i, i + CT_FORGET_BATCH).map((e) => ctForget.encode({ key: e.key, lastSeen: ctValue.decode(e.value).lastSeen }));
    batches.push(Buffer.concat([Buffer.alloc(14), ...records]));
  }
  return batches;
}

/** The HZ nearest to `jiffies` ticks in `seconds`. */
export function nearestHz(jiffies: number, seconds: number): number {
  const rate = jiffies / seconds;
  return HZ_VALUES.reduce((best, hz) => (Math.abs(hz - rate) < Math.abs(best - rate) ? hz : best));
}

export class ConntrackGc {
  readonly #loader: Loader;
  readonly #hz: number;
  readonly #timeouts: CtTimeouts;
  readonly #log: (line: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;

  private constructor(loader: Loader, hz: number, timeouts: CtTimeouts, log: (line: string) => void) {
    this.#loader = loader;
    this.#hz = hz;
    this.#timeouts = timeouts;
    this.#log = log;
  }

  /** Measures HZ (about a quarter of a second), then collects every `intervalMs` (0: only when runOnce is called). */
  static async start(o: { loader: Loader; intervalMs: number; timeouts?: CtTimeouts; log: (line: string) => void }): Promise<ConntrackGc> {
    const clock = () => jiffies(o.loader);
    const [j0, t0] = [await clock(), performance.now()];
    await new Promise((resolve) => setTimeout(resolve, 250));
    const [j1, t1] = [await clock(), performance.now()];
    const gc = new ConntrackGc(o.loader, nearestHz((j1 - j0) >>> 0, (t1 - t0) / 1000), o.timeouts ?? DEFAULT_CT_TIMEOUTS, o.log);
    if (o.intervalMs > 0) gc.#schedule(o.intervalMs);
    return gc;
  }

  get hz(): number {
    return this.#hz;
  }

  /** One pass: dump, pick the expired entries, delete those still idle (and their counts), drop dead devices' empty counters. */
  async runOnce(): Promise<{ scanned: number; deleted: number }> {
    const entries = await this.#loader.dump('pal_ct4');
    const expired = expiredEntries(entries, await jiffies(this.#loader), this.#hz, this.#timeouts);
    let deleted = 0;
    for (const batch of forgetBatches(expired)) deleted += (await this.#loader.testRun(CT_FORGET_PROGRAM, batch)).retval;
    await this.#dropEmptyCounters();
    return { scanned: entries.length, deleted };
  }

  /**
   * A device that is no longer an endpoint opens nothing more (the datapath
   * counts only endpoints' new connections), so once it holds no entry its
   * counter can go; key 0 is the node's total and stays.
   */
  async #dropEmptyCounters(): Promise<void> {
    const endpoints = new Set((await this.#loader.dump('pal_endpoints')).map((e) => u32Key.decode(e.key)));
    const empty = (await this.#loader.dump('pal_ct_budget')).filter((e) => {
      const ifindex = u32Key.decode(e.key);
      return ifindex !== 0 && !endpoints.has(ifindex) && ctBudget.decode(e.value).entries === 0;
    });
    if (empty.length > 0) await this.#loader.delete('pal_ct_budget', empty.map((e) => e.key));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(intervalMs: number): void {
    this.#timer = setTimeout(() => {
      this.#running = this.runOnce()
        .then(({ scanned, deleted }) => deleted > 0 && this.#log(`conntrack gc: ${deleted} of ${scanned} entries expired`))
        .catch((error: unknown) => this.#log(`conntrack gc failed, next pass in ${intervalMs / 1000} s: ${(error as Error).message}`))
        .finally(() => this.#stopped || this.#schedule(intervalMs));
    }, intervalMs);
    this.#timer.unref();
  }
}

async function jiffies(loader: Loader): Promise<number> {
  return (await loader.testRun(CLOCK_PROGRAM, Buffer.alloc(64))).retval >>> 0;
}
