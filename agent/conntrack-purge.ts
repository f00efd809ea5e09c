// Removes the conntrack entries of an address that has changed hands, before
// its new owner is admitted.
//
// A pod address outlives its pod: CNI DEL frees it, and the next pod wired
// on that node may get it. pal_ct4 entries naming it (TCP ones live 6 h)
// would then let the new owner pass as the old pod's peer: its packets
// matching the old connection's tuple are "replies" or "established" at
// every endpoint that talked to the old pod, through any ingress policy
// (README, "Enforcement semantics"). Revision re-checks do not help: they
// judge the tuple by the policy of the side that opened it, which may allow
// everything. So each agent, in every sync, finds the addresses whose owner
// changed since the last sync (left the ipcache, changed identity, or are
// now another pod's even with the same identity; not a pod's first identity) and the addresses of its
// endpoints that left, and deletes every entry of its node's pal_ct4 whose
// endpoint address or peer address is one of them, before the sync writes
// the maps that admit the new owner.
//
// Entries are deleted through the object's pal_ct_forget program, as the
// garbage collector deletes them, so that pal_ct_budget's per-endpoint counts
// stay exact (docs/adr/0003-conntrack-budget.md); it skips an entry
// refreshed since the dump, so the purge dumps again and repeats until none
// of the entries is left.
//
// Pure: ownerMarks, changedAddresses, endpointMarks, endpointAddressesGone,
// entriesToPurge, marksFromIpcache. ConntrackPurge does the I/O (a dump and
// a forget pass, only when something changed hands).
import { CT_FORGET_PROGRAM, ct4Key, ctValue, ipcacheValue, ipv4Key, NAT_KIND } from '../datapath/abi.ts';
import type { Loader, MapEntry } from '../datapath/loader-client.ts';
import type { Endpoint } from './cni/handler.ts';
import { forgetBatches } from './conntrack-gc.ts';

/** Dump-and-forget passes before a purge gives up (the sync then fails and is retried, its new owners not admitted). */
const PURGE_ATTEMPTS = 5;

/** An address's owner as the compiler reports it (Compiler.addressOwners). */
export interface AddressOwner {
  pod: string;
  uid: string | undefined;
  identity: number | undefined;
}

/** What is remembered of an address: its owning pod (undefined: unknown, after a restart) and identity. */
export interface OwnerMark {
  owner: string | undefined;
  identity: number | undefined;
}

/** Pod identities (ADR 0001): the only ipcache entries that belong to pod addresses. */
const isPodIdentity = (identity: number) => identity >= 256 && identity < 2 ** 24;

export function ownerMarks(owners: ReadonlyMap<string, AddressOwner>): Map<string, OwnerMark> {
  const marks = new Map<string, OwnerMark>();
  for (const [ip, o] of owners) marks.set(ip, { owner: o.uid ?? o.pod, identity: o.identity });
  return marks;
}

/**
 * The pod addresses of a pinned pal_ipcache4 (identity only, owner unknown):
 * what the datapath enforced before this agent started.
 */
export function marksFromIpcache(entries: readonly MapEntry[]): Map<string, OwnerMark> {
  const marks = new Map<string, OwnerMark>();
  for (const e of entries) {
    const { identity } = ipcacheValue.decode(e.value);
    if (isPodIdentity(identity)) marks.set(ipv4Key.decode(e.key), { owner: undefined, identity });
  }
  return marks;
}

/**
 * Addresses of `before` that changed hands in `after`, sorted: gone, another
 * identity (a number disappearing included), or another owner when both are
 * known. An address new in `after` changed nothing: whatever conntrack holds
 * for it was made while it was nobody's (world), by endpoints that chose to
 * talk to it. So did a pod's first identity number, for the same pod: until
 * then its address was nobody's in the datapath (no ipcache entry), and
 * purging would cut the connections every new pod opens before the operator
 * numbers it (the operator's own watches among them, whose Service
 * translation cannot be rebuilt mid-stream). Those connections are judged
 * again under the new identity by the revision re-check, like any other.
 */
export function changedAddresses(before: ReadonlyMap<string, OwnerMark>, after: ReadonlyMap<string, OwnerMark>): string[] {
  const out: string[] = [];
  for (const [ip, b] of before) {
    const a = after.get(ip);
    const firstIdentity = a !== undefined && b.identity === undefined && b.owner !== undefined && a.owner === b.owner;
    if (firstIdentity) continue;
    if (!a || a.identity !== b.identity || (b.owner !== undefined && a.owner !== b.owner)) out.push(ip);
  }
  return out.sort();
}

/** Local endpoint address -> the wiring that holds it (container, interface, host veth). */
export function endpointMarks(endpoints: readonly Endpoint[]): Map<string, string> {
  return new Map(endpoints.map((e) => [e.ip, `${e.containerId}/${e.ifName}/${e.ifindex}`]));
}

/** Local endpoint addresses of `before` no longer wired as they were, sorted. */
export function endpointAddressesGone(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  return [...before].filter(([ip, mark]) => after.get(ip) !== mark).map(([ip]) => ip).sort();
}

/**
 * The pal_ct4 entries whose endpoint address or peer address is in
 * `addresses`, the SERVICE entries whose backend is (a connection to a
 * Service keeps going to its backend's address, whoever holds it now), and
 * the DNS entries whose upstream is (the DNS proxy's replies would go on
 * coming back from that address).
 */
export function entriesToPurge(entries: readonly MapEntry[], addresses: ReadonlySet<string>): MapEntry[] {
  if (addresses.size === 0) return [];
  return entries.filter((e) => {
    const k = ct4Key.decode(e.key);
    if (addresses.has(k.addr) || addresses.has(k.peerAddr)) return true;
    const v = ctValue.decode(e.value);
    return (v.nat === NAT_KIND.SERVICE || v.nat === NAT_KIND.DNS) && addresses.has(v.natAddr);
  });
}

export class ConntrackPurge {
  /** Owners and endpoints as of the last successful run; undefined before the first. */
  #owners: Map<string, OwnerMark> | undefined;
  #endpoints: Map<string, string> | undefined;

  /**
   * Deletes the conntrack entries of every address that changed hands since
   * the last run. The first run compares with the pinned pal_ipcache4 (so
   * changes made while the agent was down count, by identity only). The
   * state advances only after the deletes succeeded: a failed run is
   * retried whole by the next sync.
   */
  async run(loader: Loader, owners: ReadonlyMap<string, AddressOwner>, endpoints: readonly Endpoint[], log: (line: string) => void): Promise<void> {
    const marks = ownerMarks(owners);
    const wired = endpointMarks(endpoints);
    const before = this.#owners ?? marksFromIpcache(await loader.dump('pal_ipcache4'));
    const changed = new Set([...changedAddresses(before, marks), ...endpointAddressesGone(this.#endpoints ?? wired, wired)]);
    if (changed.size > 0) {
      let deleted = 0;
      for (let attempt = 1; ; attempt++) {
        const doomed = entriesToPurge(await loader.dump('pal_ct4'), changed);
        if (doomed.length === 0) break;
        if (attempt > PURGE_ATTEMPTS) throw new Error(`conntrack: ${doomed.length} entries of addresses that changed hands still there after ${PURGE_ATTEMPTS} passes (refreshed as fast as they are deleted)`);
        for (const batch of forgetBatches(doomed)) deleted += (await loader.testRun(CT_FORGET_PROGRAM, batch)).retval;
      }
      if (deleted > 0) log(`conntrack: ${deleted} entries of ${changed.size} addresses that changed hands removed (${[...changed].slice(0, 5).join(', ')}${changed.size > 5 ? ', ...' : ''})`);
    }
    this.#owners = marks;
    this.#endpoints = wired;
  }
}
