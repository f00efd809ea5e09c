// For tests and benchmarks that need the real kernel maps: build/bpf/endpoint.bpf.o
// loaded by a loader of its own into a bpffs mounted for the purpose, so no pin
// is shared with a running agent or another test. dispose() closes the loader
// and unmounts and removes the bpffs; call it in `after`, whatever failed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { endpointInfo, ipcacheValue, ipv4Key, loadGlobals, u32Key, type EndpointInfo, type MapName } from './abi.ts';
import { Loader, type LoadedObject } from './loader-client.ts';

export const ENDPOINT_OBJECT = fileURLToPath(new URL('../build/bpf/endpoint.bpf.o', import.meta.url));

export interface ScratchDatapath {
  loader: Loader;
  /** Where the maps are pinned (the ring buffer at `${pinDir}/pal_flows`). */
  pinDir: string;
  loaded: LoadedObject;
  /** max_entries of a map of the object. */
  capacity(map: string): number;
  dispose(): Promise<void>;
}

/** `load`: the globals and map sizes to load the object with (default: the host reaches pods, defaults for the rest). */
export async function scratchDatapath(name: string, load: { globals?: Parameters<typeof loadGlobals>[0]; mapSizes?: Record<string, number> } = {}): Promise<ScratchDatapath> {
  const bpffs = await mkdtemp(join(tmpdir(), `pal-${name}-`));
  let mounted = false;
  let loader: Loader | undefined;
  const dispose = async () => {
    await loader?.close();
    if (mounted) await execa('umount', [bpffs], { reject: false });
    await rm(bpffs, { recursive: true, force: true });
  };
  try {
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    mounted = true;
    loader = await Loader.start({ onLog: () => undefined });
    const loaded = await loader.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals(load.globals ?? { hostReachesPods: true }), mapSizes: load.mapSizes });
    const capacity = (map: string) => loaded.maps.find((m) => m.name === map)?.maxEntries ?? Infinity;
    return { loader, loaded, capacity, dispose, pinDir: join(bpffs, 'node') };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** The device test_run gives packets (the loopback device): where tests enter the endpoint under test. */
export const TEST_IFINDEX = 1;

/** Empties maps of a scratch datapath between tests. */
export async function clearMaps(loader: Loader, maps: readonly MapName[]): Promise<void> {
  for (const map of maps) {
    const keys = (await loader.dump(map)).map((e) => e.key);
    if (keys.length > 0) await loader.delete(map, keys);
  }
}

/** pal_ipcache4 entries: each address with its identity. */
export async function putIdentities(loader: Loader, entries: ReadonlyArray<readonly [string, number]>): Promise<void> {
  await loader.update('pal_ipcache4', entries.map(([ip, identity]) => ({ key: ipv4Key.encode(ip), value: ipcacheValue.encode({ identity, flags: 0 }) })));
}

/** The endpoint that test_run packets meet (TEST_IFINDEX). */
export async function putTestEndpoint(loader: Loader, info: EndpointInfo): Promise<void> {
  await loader.update('pal_endpoints', [{ key: u32Key.encode(TEST_IFINDEX), value: endpointInfo.encode(info) }]);
}
