// Pinned maps across a layout change (datapath/pin-migration.ts, ADR 0007),
// on the real loader and kernel: the test object and its next version
// (test-v2.bpf.o, built from the same source with TEST_V2, whose hash and
// per-CPU values grow by a field).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Loader, type LoadedMap, type MapEntry } from './loader-client.ts';
import { convert, copySetAside, removeSetAside, setAsideMaps } from './pin-migration.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const V1 = join(REPO, 'build/loader/test.bpf.o');
const V2 = join(REPO, 'build/loader/test-v2.bpf.o');

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

before(() => {
  for (const file of [V1, V2]) assert.ok(existsSync(file), `${file} is missing: run make`);
});

async function pinDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pal-migration-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await execa('mount', ['-t', 'bpf', 'bpffs', dir]);
  cleanups.push(() => execa('umount', [dir]));
  return join(dir, 'node');
}

async function loader(): Promise<Loader> {
  const l = await Loader.start({ onLog: () => undefined });
  cleanups.push(() => l.close());
  return l;
}

const key = (i: number) => {
  const k = Buffer.alloc(8);
  k.writeUInt32LE(i, 0);
  return k;
};
/** struct test_value of version 1: u64 stamp, u32 rule (16 bytes with padding). */
const v1Value = (i: number) => {
  const v = Buffer.alloc(16);
  v.writeBigUInt64LE(BigInt(i) * 1000n, 0);
  v.writeUInt32LE(i + 7, 8);
  return v;
};
const byKey = (entries: MapEntry[]) => new Map(entries.map((e) => [e.key.readUInt32LE(0), e.value]));

test('an upgrade whose values grow: the old pins are set aside, their entries carried over zero-extended, the connections of the meantime too, then unpinned', async () => {
  const dir = await pinDir();
  const old = await loader();
  await old.load(V1, dir);
  const cpus = (await old.status()).possibleCpus;
  await old.update('test_hash', Array.from({ length: 1000 }, (_, i) => ({ key: key(i), value: v1Value(i) })));
  // Per-CPU counters: {packets, bytes} on each CPU.
  const counters = Buffer.alloc(16 * cpus);
  for (let cpu = 0; cpu < cpus; cpu++) counters.writeBigUInt64LE(BigInt(cpu + 1), cpu * 16);
  await old.update('test_counters', [{ key: Buffer.alloc(4), value: counters }]);

  // Without the set-aside, libbpf refuses the pin of the other layout.
  const next = await loader();
  const loaded = await next.load(V2, dir);
  assert.deepEqual(await setAsideMaps(dir), ['test_counters', 'test_hash']); // test_lpm and test_config are unchanged: reused
  assert.deepEqual(await next.dump('test_hash'), []);

  const first = await copySetAside(next, dir, loaded);
  assert.deepEqual(first.map((c) => [c.map, c.copied, c.dropped]), [['test_counters', 8, 0], ['test_hash', 1000, 0]]);
  const hash = byKey(await next.dump('test_hash'));
  assert.equal(hash.size, 1000);
  assert.deepEqual(hash.get(41), Buffer.concat([v1Value(41), Buffer.alloc(8)]));
  const [counter] = (await next.dump('test_counters')).filter((e) => e.key.readUInt32LE(0) === 0);
  for (let cpu = 0; cpu < cpus; cpu++) {
    assert.equal(counter!.value.readBigUInt64LE(cpu * 24), BigInt(cpu + 1), `packets of CPU ${cpu}`);
    assert.equal(counter!.value.readBigUInt64LE(cpu * 24 + 16), 0n, `the new field of CPU ${cpu}`);
  }

  // The old programs go on writing to the old map until the new ones attach: a second pass
  // takes what is new there, and never overwrites what the new map already holds.
  await old.update('test_hash', [{ key: key(5000), value: v1Value(5000) }, { key: key(7), value: v1Value(9999) }]);
  const second = await copySetAside(next, dir, loaded, ['test_hash']);
  assert.deepEqual(second.map((c) => [c.map, c.copied]), [['test_hash', 1]]);
  const after2 = byKey(await next.dump('test_hash'));
  assert.deepEqual(after2.get(5000)?.subarray(0, 16), v1Value(5000));
  assert.deepEqual(after2.get(7)?.subarray(0, 16), v1Value(7));

  await removeSetAside(dir);
  assert.ok(!(await readdir(dir)).includes('migrate'));
  assert.deepEqual(await setAsideMaps(dir), []);
});

test('a changed size: the map is made anew with the old entries, and what no longer fits is counted, not silently lost', async () => {
  const dir = await pinDir();
  const old = await loader();
  await old.load(V1, dir, { mapSizes: { test_hash: 2000 } });
  await old.update('test_hash', Array.from({ length: 1500 }, (_, i) => ({ key: key(i), value: v1Value(i) })));
  const next = await loader();
  const loaded = await next.load(V1, dir, { mapSizes: { test_hash: 1000 } });
  const [copy] = await copySetAside(next, dir, loaded);
  assert.deepEqual([copy!.map, copy!.copied, copy!.dropped], ['test_hash', 1000, 500]);
  assert.match(copy!.why!, /Argument list too long|No space/);
  assert.equal((await next.dump('test_hash')).length, 1000);
});

test('convert: only a value that grows is carried over; a smaller value or another key size is refused with why', () => {
  const map = (over: Partial<LoadedMap>): LoadedMap => ({ name: 'm', type: 1, keySize: 8, valueSize: 24, maxEntries: 10, pinned: true, ...over });
  const entries = [{ key: key(1), value: v1Value(1) }];
  assert.deepEqual(convert(entries, { keySize: 8, valueSize: 32 }, map({}), 2), { why: 'value of 32 bytes, now 24: a value may only grow' });
  assert.deepEqual(convert(entries, { keySize: 4, valueSize: 16 }, map({}), 2), { why: 'key of 4 bytes, now 8' });
  const grown = convert(entries, { keySize: 8, valueSize: 16 }, map({}), 2);
  assert.ok('entries' in grown);
  assert.deepEqual(grown.entries[0]!.value, Buffer.concat([v1Value(1), Buffer.alloc(8)]));
});
