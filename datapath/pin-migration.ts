// Pinned maps across a change of their layout (docs/adr/0007-pinned-map-migration.md).
//
// When a new datapath (an upgrade) or a new setting (a map's size) makes a
// pinned map unusable as it is, the loader's LOAD moves the old pin to
// `<pinDir>/migrate/<map>` and creates the map anew. The old map lives on
// while programs still attached use it. The agent then:
//
//   1. copies the old entries into the new map (converted: see convert()),
//      before its first sync, so that the sync starts from what was enforced;
//   2. after the first sync, attaches the new programs (the caller);
//   3. copies again, for connection state only (STATEFUL), the entries the
//      old programs made meanwhile, then unlinks the old pins.
//
// A copy never replaces an entry a new hash map already has: the new map is
// newer (and after a crash mid-migration, the copy simply runs again).
// Arrays (counters, settings) are copied whole, in the first pass only.
import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LoaderError, type LoadedMap, type LoadedObject, type Loader, type MapEntry } from './loader-client.ts';

/** Maps the programs write state to (connections, fragments), copied a second time after the new programs attach. */
export const STATEFUL_MAPS: readonly string[] = ['pal_ct4', 'pal_ct_budget', 'pal_frag4'];

const PERCPU_TYPES = new Set([5, 6, 10]); // BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
const ARRAY_TYPES = new Set([2, 6]); // BPF_MAP_TYPE_ARRAY, PERCPU_ARRAY
const RINGBUF = 27;

export interface MapCopy {
  map: string;
  /** Entries written into the new map. */
  copied: number;
  /** Entries that could not be carried over, and why. */
  dropped: number;
  why?: string;
}

/** The maps LOAD set aside in `<pinDir>/migrate/` that the loaded object has a map of the same name for. */
export async function setAsideMaps(pinDir: string): Promise<string[]> {
  return (await readdir(join(pinDir, 'migrate')).catch(() => [])).sort();
}

/**
 * Values of a pinned map as the new map's wire format wants them, or why
 * they cannot be. The one rule, kept by every struct in bpf/lib: a value
 * only ever grows, by fields appended at its end whose zero is "none", so an
 * old value zero-extended is a valid new one. Keys never change size
 * in place (a new key is a new map).
 */
export function convert(
  entries: readonly MapEntry[],
  old: { keySize: number; valueSize: number },
  next: LoadedMap,
  possibleCpus: number,
): { entries: MapEntry[] } | { why: string } {
  if (old.keySize !== next.keySize) return { why: `key of ${old.keySize} bytes, now ${next.keySize}` };
  const perCpu = PERCPU_TYPES.has(next.type);
  const slots = perCpu ? possibleCpus : 1;
  // LoadedMap carries the C value's size; per-CPU values travel rounded up to 8, once per CPU.
  const newSlot = perCpu ? Math.ceil(next.valueSize / 8) * 8 : next.valueSize;
  const oldSlot = old.valueSize / slots;
  if (!Number.isInteger(oldSlot)) return { why: `value of ${old.valueSize} bytes is not ${slots} per-CPU values` };
  if (oldSlot > newSlot) return { why: `value of ${oldSlot} bytes, now ${newSlot}: a value may only grow` };
  if (oldSlot === newSlot) return { entries: [...entries] };
  return {
    entries: entries.map(({ key, value }) => {
      const grown = Buffer.alloc(newSlot * slots);
      for (let slot = 0; slot < slots; slot++) value.copy(grown, slot * newSlot, slot * oldSlot, (slot + 1) * oldSlot);
      return { key, value: grown };
    }),
  };
}

/**
 * Copies the entries of each set-aside map (of `maps`, or all) that the new
 * map does not have yet. Returns what was copied and dropped, per map.
 */
export async function copySetAside(loader: Loader, pinDir: string, loaded: LoadedObject, maps?: readonly string[]): Promise<MapCopy[]> {
  const possibleCpus = (await loader.status()).possibleCpus;
  const out: MapCopy[] = [];
  for (const name of await setAsideMaps(pinDir)) {
    if (maps && !maps.includes(name)) continue;
    const next = loaded.maps.find((m) => m.name === name);
    // A ring buffer holds events in flight, not state: nothing to carry over.
    if (next?.type === RINGBUF) {
      out.push({ map: name, copied: 0, dropped: 0 });
      continue;
    }
    const old = await loader.dumpPinned(join(pinDir, 'migrate', name));
    if (!next) {
      out.push({ map: name, copied: 0, dropped: old.entries.length, why: 'the new datapath has no such map' });
      continue;
    }
    const converted = convert(old.entries, old, next, possibleCpus);
    if ('why' in converted) {
      out.push({ map: name, copied: 0, dropped: old.entries.length, why: converted.why });
      continue;
    }
    // An array has every key from the start (zeros): it takes the old values whole. A hash
    // takes the keys it lacks.
    const present = ARRAY_TYPES.has(next.type) ? new Set<string>() : new Set((await loader.dump(name)).map((e) => e.key.toString('hex')));
    const missing = converted.entries.filter((e) => !present.has(e.key.toString('hex')));
    out.push({ map: name, ...(await writeAll(loader, name, missing)) });
  }
  return out;
}

/** Unlinks the set-aside pins: the old maps go once no program holds them. */
export async function removeSetAside(pinDir: string): Promise<void> {
  const dir = join(pinDir, 'migrate');
  for (const name of await setAsideMaps(pinDir)) await rm(join(dir, name), { force: true });
  await rmdir(dir).catch(() => undefined);
}

const CHUNK = 10_000;

/** Writes entries in chunks; a full map (E2BIG) ends the copy with the rest counted as dropped. */
async function writeAll(loader: Loader, map: string, entries: MapEntry[]): Promise<{ copied: number; dropped: number; why?: string }> {
  let copied = 0;
  for (let at = 0; at < entries.length; at += CHUNK) {
    const chunk = entries.slice(at, at + CHUNK);
    try {
      copied += await loader.update(map, chunk);
    } catch (error) {
      if (!(error instanceof LoaderError) || !error.batch) throw error;
      copied += error.batch.index;
      return { copied, dropped: entries.length - copied, why: error.message };
    }
  }
  return { copied, dropped: 0 };
}
