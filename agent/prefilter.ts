// The node's XDP prefilter (docs/adr/0013-xdp-prefilter.md): loads
// build/bpf/prefilter.bpf.o beside the endpoint programs (sharing their
// pinned maps), attaches pal_prefilter to the node's uplinks, and keeps its
// maps in step with the policy sync:
//
//   pal_prefilter4        the sources every pod denies (policy/prefilter.ts)
//   pal_prefilter_dst4    this node's endpoints (address -> host veth)
//   pal_prefilter_config  ACTIVE, WORLD and world's rule
//
// It is an optimisation, never the only enforcement: every frame it passes
// meets the tc programs, which enforce everything without it. So it must
// never drop what they would let through, even while both change: the sync
// NARROWS it (removes prefixes, destinations and world, whatever the new
// policy no longer has) before the policy maps are written, and WIDENS it
// (adds) only after they were written and the revision bumped. Entries are
// disjoint prefixes without holes, so each write only ever narrows or widens
// the set of frames dropped. The program is attached only while some rule
// qualifies (the maps ACTIVE): an uplink without it pays nothing, which
// matters on a veth, whose native XDP copies every skb it receives into a
// buffer of its own. A prefilter that cannot be loaded, attached or written
// is reported (log, palisade_datapath_errors_total) and the agent goes on:
// a failed narrowing switches it off (ACTIVE cleared, else detached) rather
// than leave it dropping more than the new policy.
import { isIPv4 } from 'node:net';
import { ipv4Key, u32Key } from '../datapath/abi.ts';
import { ipJson, SELF, type Netns } from '../datapath/iproute.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { PREFILTER_FLAG, PREFILTER_MAX, PREFILTER_PROGRAM, prefilter4Key, prefilterConfig, prefilterDst, prefilterValue } from '../datapath/prefilter.ts';
import { prefilterPlan } from '../policy/prefilter.ts';
import { policyRefString, ruleRefString } from '../policy/ids.ts';
import type { PalisadePolicyInput, PalisadePolicyKind } from '../policy/types.ts';
import { ruleId } from './datapath-plan.ts';
import type { AgentMetrics } from './metrics.ts';

/** The maps the agent writes, in the order a widening writes them (a narrowing in reverse). */
const WRITTEN = ['pal_prefilter_dst4', 'pal_prefilter4', 'pal_prefilter_config'] as const;
type WrittenMap = (typeof WRITTEN)[number];

/** Map -> (key hex -> value hex). */
export type PrefilterContents = Map<WrittenMap, Map<string, string>>;

const CONFIG_KEY = u32Key.encode(0).toString('hex');
/** After an attach found no uplink or failed, syncs try again at most this often. */
const ATTACH_RETRY_MS = 30_000;

/** What the prefilter's maps must hold, and what was left out. */
export interface PrefilterSnapshot {
  contents: PrefilterContents;
  /** One line for the log: prefixes, rules, world. */
  summary: string;
  problems: string[];
}

/**
 * Pure: the prefilter maps' contents for the Palisade policies and this
 * node's endpoints. Beyond `capacity` prefixes, the shortest (most
 * addresses) are kept and the rest left to tc: a subset of what the rules
 * deny is still never more than tc drops.
 */
export function prefilterContents(policies: readonly PalisadePolicyInput[], endpoints: ReadonlyArray<{ ip: string; ifindex: number }>, capacity = PREFILTER_MAX): PrefilterSnapshot {
  const plan = prefilterPlan(policies);
  const problems: string[] = [];
  let prefixes = plan.prefixes;
  if (prefixes.length > capacity) {
    problems.push(`${prefixes.length} denied prefixes, more than pal_prefilter4 holds (${capacity}): the ${prefixes.length - capacity} longest are left to the tc programs`);
    prefixes = [...prefixes].sort((a, b) => Number(a.prefix.split('/')[1]) - Number(b.prefix.split('/')[1])).slice(0, capacity);
  }
  const hex = (b: Buffer) => b.toString('hex');
  const dst = new Map<string, string>();
  for (const e of endpoints) if (isIPv4(e.ip)) dst.set(hex(ipv4Key.encode(e.ip)), hex(prefilterDst.encode({ ifindex: e.ifindex })));
  const flags = (prefixes.length > 0 || plan.world ? PREFILTER_FLAG.ACTIVE : 0) | (plan.world ? PREFILTER_FLAG.WORLD : 0);
  const contents: PrefilterContents = new Map([
    ['pal_prefilter_dst4', dst],
    ['pal_prefilter4', new Map(prefixes.map((p) => [hex(prefilter4Key.encode(p.prefix)), hex(prefilterValue.encode({ ruleId: ruleId(p.rule) }))]))],
    ['pal_prefilter_config', new Map([[CONFIG_KEY, hex(prefilterConfig.encode({ flags, worldRule: plan.world ? ruleId(plan.world) : 0 }))]])],
  ]);
  const rules = new Set(prefixes.map((p) => ruleRefString(p.rule)));
  if (plan.world) rules.add(ruleRefString(plan.world));
  const summary = `${prefixes.length} denied prefixes${plan.world ? ' and world' : ''} from ${rules.size} deny rules${rules.size > 0 ? ` (${[...rules].slice(0, 3).join(', ')}${rules.size > 3 ? ', ...' : ''})` : ''}`;
  return { contents, summary, problems };
}

/** One write of the prefilter's maps. */
export interface PrefilterWrite {
  map: WrittenMap;
  op: 'update' | 'delete';
  entries: Array<{ key: string; value: string }>;
}

/**
 * Pure: the writes that take the maps from `applied` to `desired` in two
 * phases. `narrow` only removes frames from those dropped (world off,
 * prefixes and destinations deleted, or changed: deleted here, written
 * again when widening); after it the maps drop what both the old and the
 * new contents drop, at most. `widen` then adds the rest, destinations
 * first, world last. A config value absent counts as flags 0.
 */
export function prefilterWrites(applied: PrefilterContents, desired: PrefilterContents): { narrow: PrefilterWrite[]; widen: PrefilterWrite[] } {
  const narrow: PrefilterWrite[] = [];
  const widen: PrefilterWrite[] = [];
  const config = (c: PrefilterContents) => {
    const v = c.get('pal_prefilter_config')?.get(CONFIG_KEY);
    return v ? prefilterConfig.decode(Buffer.from(v, 'hex')) : { flags: 0, worldRule: 0 };
  };
  const [was, will] = [config(applied), config(desired)];
  // World stays on through the narrowing only if both have it (under the new rule's name); ACTIVE only gates lookups.
  const world = was.flags & will.flags & PREFILTER_FLAG.WORLD;
  const between = { flags: (was.flags & PREFILTER_FLAG.ACTIVE) | world, worldRule: world ? will.worldRule : 0 };
  const encode = (c: { flags: number; worldRule: number }) => prefilterConfig.encode(c).toString('hex');
  if (encode(between) !== encode(was)) narrow.push({ map: 'pal_prefilter_config', op: 'update', entries: [{ key: CONFIG_KEY, value: encode(between) }] });
  for (const map of ['pal_prefilter4', 'pal_prefilter_dst4'] as const) {
    const have = applied.get(map) ?? new Map<string, string>();
    const want = desired.get(map) ?? new Map<string, string>();
    // A prefix whose rule changed drops the same frames: rewritten in place when widening.
    const gone = [...have].filter(([k, v]) => !want.has(k) || (map === 'pal_prefilter_dst4' && want.get(k) !== v));
    if (gone.length > 0) narrow.push({ map, op: 'delete', entries: gone.map(([key, value]) => ({ key, value })) });
  }
  for (const map of ['pal_prefilter_dst4', 'pal_prefilter4'] as const) {
    const have = applied.get(map) ?? new Map<string, string>();
    const want = desired.get(map) ?? new Map<string, string>();
    const added = [...want].filter(([k, v]) => have.get(k) !== v);
    if (added.length > 0) widen.push({ map, op: 'update', entries: added.map(([key, value]) => ({ key, value })) });
  }
  if (encode(will) !== encode(between)) widen.push({ map: 'pal_prefilter_config', op: 'update', entries: [{ key: CONFIG_KEY, value: encode(will) }] });
  return { narrow, widen };
}

/** Pure: the uplinks, the devices that hold one of the node's addresses (the loopback aside), or the named ones. */
export function uplinks(links: ReadonlyArray<{ ifindex: number; ifname: string; addr_info?: Array<{ family?: string; local?: string }> }>, nodeAddresses: readonly string[], names?: readonly string[]): Array<{ ifindex: number; name: string }> {
  const picked = names
    ? links.filter((l) => names.includes(l.ifname))
    : links.filter((l) => l.ifname !== 'lo' && (l.addr_info ?? []).some((a) => a.local !== undefined && nodeAddresses.includes(a.local)));
  return picked.map((l) => ({ ifindex: l.ifindex, name: l.ifname }));
}

export interface PrefilterOptions {
  loader: Loader;
  /** build/bpf/prefilter.bpf.o. */
  objectPath: string;
  /** The node's bpffs directory: the endpoint programs' maps are shared by their pins. */
  pinDir: string;
  /** The map sizes the endpoint object was loaded with (the flow ring's): the shared pins must be reused, not set aside. */
  mapSizes?: Record<string, number>;
  /** The node's own addresses (its Node's InternalIP): their devices are the uplinks. */
  nodeAddresses: () => readonly string[];
  /** Device names to attach to instead (--prefilter-devices). */
  deviceNames?: readonly string[];
  /** Where the uplinks are listed: the loader's network namespace (default: this process's, where the agent runs it). */
  netns?: Netns;
  log: (line: string) => void;
  metrics?: Pick<AgentMetrics, 'datapathError'>;
}

export class Prefilter {
  readonly #o: PrefilterOptions;
  #policies = new Map<string, PalisadePolicyInput>();
  #applied: PrefilterContents = new Map();
  /** Why the prefilter does nothing (load failed); undefined while it runs. */
  #off: string | undefined = 'not loaded';
  #appliedUnknown = true;
  #attached = new Map<number, { name: string; mode: string }>();
  #logged = '';
  #devicesLogged = '';
  /** No attach is tried before this (performance.now()): set after one found no uplink or failed. */
  #retryAt = 0;
  /** Whether a program an earlier agent may have left was looked for. */
  #swept = false;

  constructor(options: PrefilterOptions) {
    this.#o = options;
  }

  /** Loads the object (after the endpoint object: its pins exist). Never throws: a failure leaves the prefilter off. */
  async load(): Promise<void> {
    try {
      await this.#o.loader.load(this.#o.objectPath, this.#o.pinDir, { mapSizes: this.#o.mapSizes });
      this.#off = undefined;
      await this.#readApplied();
    } catch (error) {
      this.#off = `cannot load ${this.#o.objectPath}: ${(error as Error).message}`;
      this.#o.metrics?.datapathError('load');
      this.#o.log(`prefilter: off, the tc programs enforce everything: ${this.#off}`);
    }
  }

  /** Attaches pal_prefilter to the uplinks (native XDP where the driver has it). Failures are reported; tc enforces regardless. */
  async attach(): Promise<void> {
    if (this.#off) return;
    this.#retryAt = performance.now() + ATTACH_RETRY_MS;
    const devices = await this.#devices().catch((error: unknown) => {
      this.#o.metrics?.datapathError('attach');
      this.#o.log(`prefilter: cannot list the node's devices: ${(error as Error).message}`);
      return [];
    });
    for (const device of devices) {
      try {
        const { mode } = await this.#o.loader.xdpAttach(device.ifindex, PREFILTER_PROGRAM, 'auto');
        if (this.#attached.get(device.ifindex)?.mode !== mode) this.#o.log(`prefilter: attached to ${device.name} (${mode} XDP)`);
        this.#attached.set(device.ifindex, { name: device.name, mode });
      } catch (error) {
        this.#o.metrics?.datapathError('attach');
        this.#o.log(`prefilter: cannot attach to ${device.name}, the tc programs enforce everything there: ${(error as Error).message}`);
      }
    }
    if (this.#attached.size > 0 && this.#attached.size === devices.length) this.#retryAt = 0;
  }

  /** Detaches ours from the uplinks (also a program an earlier agent left, found by name). */
  async detach(): Promise<void> {
    const devices = new Map([...this.#attached].map(([ifindex, d]) => [ifindex, d.name]));
    for (const d of await this.#devices().catch(() => [])) devices.set(d.ifindex, d.name);
    for (const [ifindex, name] of devices) {
      const removed = await this.#o.loader.xdpDetach(ifindex, PREFILTER_PROGRAM).catch((error: unknown) => {
        this.#o.log(`prefilter: cannot detach from ${name}: ${(error as Error).message}`);
        return false;
      });
      if (removed) this.#o.log(`prefilter: detached from ${name}`);
    }
    this.#attached.clear();
    this.#retryAt = 0;
    this.#swept = true;
  }

  /** The devices it runs on, and in which mode. */
  attachments(): Array<{ device: string; mode: string }> {
    return [...this.#attached.values()].map((a) => ({ device: a.name, mode: a.mode }));
  }

  setPolicy(input: PalisadePolicyInput): void {
    this.#policies.set(policyRefString(input), input);
  }

  deletePolicy(kind: PalisadePolicyKind, namespace: string, name: string): void {
    this.#policies.delete(policyRefString({ kind, namespace, name }));
  }

  /** What the maps must hold now (taken with the compiled policy the sync writes, so both follow the same events). */
  snapshot(endpoints: ReadonlyArray<{ ip: string; ifindex: number }>): PrefilterSnapshot {
    return prefilterContents([...this.#policies.values()], endpoints);
  }

  /** Before the policy maps are written: drop nothing the snapshot does not drop. */
  async narrow(snapshot: PrefilterSnapshot): Promise<void> {
    if (this.#off) return;
    try {
      if (this.#appliedUnknown) await this.#readApplied();
      await this.#apply(prefilterWrites(this.#applied, snapshot.contents).narrow);
    } catch (error) {
      this.#o.metrics?.datapathError('write');
      this.#appliedUnknown = true;
      this.#o.log(`prefilter: cannot narrow its maps: ${(error as Error).message}; switching it off until the next sync`);
      const off = prefilterConfig.encode({ flags: 0, worldRule: 0 });
      await this.#o.loader.update('pal_prefilter_config', [{ key: u32Key.encode(0), value: off }]).catch(async (failed: unknown) => {
        this.#o.log(`prefilter: cannot switch it off either (${(failed as Error).message}): detaching it`);
        await this.detach();
      });
    }
  }

  /** After the policy maps were written and the revision bumped: everything the snapshot drops. */
  async widen(snapshot: PrefilterSnapshot): Promise<void> {
    if (this.#off) return;
    const line = [snapshot.summary, ...snapshot.problems].join('; ');
    if (line !== this.#logged) {
      this.#logged = line;
      this.#o.log(`prefilter: ${line}`);
    }
    try {
      if (this.#appliedUnknown) await this.#readApplied();
      const { narrow, widen } = prefilterWrites(this.#applied, snapshot.contents);
      // Anything still to narrow (a failed narrowing, maps changed behind us) goes first.
      await this.#apply([...narrow, ...widen]);
    } catch (error) {
      this.#o.metrics?.datapathError('write');
      this.#appliedUnknown = true;
      this.#o.log(`prefilter: cannot widen its maps (it drops less until the next sync): ${(error as Error).message}`);
    }
    // Attached while it has something to drop; detached (once, also a program an earlier agent left) while not.
    const active = (prefilterConfig.decode(Buffer.from(snapshot.contents.get('pal_prefilter_config')!.get(CONFIG_KEY)!, 'hex')).flags & PREFILTER_FLAG.ACTIVE) !== 0;
    if (active && this.#attached.size === 0 && performance.now() >= this.#retryAt) await this.attach();
    else if (!active && (this.#attached.size > 0 || !this.#swept)) await this.detach();
  }

  async #apply(writes: PrefilterWrite[]): Promise<void> {
    for (const w of writes) {
      const applied = this.#applied.get(w.map) ?? new Map<string, string>();
      this.#applied.set(w.map, applied);
      if (w.op === 'delete') {
        await this.#o.loader.delete(w.map, w.entries.map((e) => Buffer.from(e.key, 'hex')));
        for (const e of w.entries) applied.delete(e.key);
      } else {
        await this.#o.loader.update(w.map, w.entries.map((e) => ({ key: Buffer.from(e.key, 'hex'), value: Buffer.from(e.value, 'hex') })));
        for (const e of w.entries) applied.set(e.key, e.value);
      }
    }
  }

  async #readApplied(): Promise<void> {
    for (const map of WRITTEN) {
      const entries = await this.#o.loader.dump(map);
      this.#applied.set(map, new Map(entries.map((e) => [e.key.toString('hex'), e.value.toString('hex')])));
    }
    this.#appliedUnknown = false;
  }

  async #devices(): Promise<Array<{ ifindex: number; name: string }>> {
    const links = await ipJson<{ ifindex: number; ifname: string; addr_info?: Array<{ local?: string }> }>(this.#o.netns ?? SELF, ['address', 'show']);
    const found = uplinks(links, this.#o.nodeAddresses(), this.#o.deviceNames);
    if (found.length === 0) {
      const why = this.#o.deviceNames ? `no device named ${this.#o.deviceNames.join(', ')}` : `no device holds the node's address (${this.#o.nodeAddresses().join(', ') || 'none known'})`;
      if (this.#devicesLogged !== why) this.#o.log(`prefilter: not attached: ${why}`);
      this.#devicesLogged = why;
    }
    return found;
  }
}
