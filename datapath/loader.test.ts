// palisade-loader driven through its TypeScript client: against the loader's
// own test object (datapath/loader/testdata/test.bpf.c), in a bpffs mounted
// for the test and a network namespace made for it, and against the real
// build/bpf/endpoint.bpf.o when it is built. Runs as root. Every mount,
// namespace and process is removed in `after`, whatever failed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { CLOCK_PROGRAM, CT_FORGET_PROGRAM, DIRECTION, MAPS, PROGRAMS, REASON, endpointInfo, loadGlobals, sumMetrics, u32Key } from './abi.ts';
import {
  DEFAULT_LOADER_BINARY,
  FrameReader,
  Loader,
  LoaderError,
  MAX_FRAME,
  PROTOCOL_VERSION,
  OPS,
  encodeRequest,
  type LoaderOptions,
  type MapEntry,
} from './loader-client.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const TEST_OBJECT = join(REPO, 'build/loader/test.bpf.o');
const REJECTED_OBJECT = join(REPO, 'build/loader/rejected.bpf.o');
const ENDPOINT_OBJECT = join(REPO, 'build/bpf/endpoint.bpf.o');
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const EINVAL = 22;
const E2BIG = 7;

// ---- resources, removed in reverse order by the last `after`

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
});

const quiet: LoaderOptions['onLog'] = () => {};

async function startLoader(options: LoaderOptions = {}): Promise<Loader> {
  const loader = await Loader.start({ onLog: quiet, ...options });
  cleanups.push(() => loader.close());
  return loader;
}

/** A fresh bpffs instance: unmounting it drops every pin made in it. */
async function mountBpffs(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pal-loader-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await execa('mount', ['-t', 'bpf', 'bpffs', dir]);
  cleanups.push(() => execa('umount', [dir]));
  return dir;
}

async function addNetns(): Promise<string> {
  const name = `pal-loader-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await execa('ip', ['netns', 'add', name]);
  cleanups.push(() => execa('ip', ['netns', 'del', name]));
  return name;
}

async function ifindexOf(netns: string, dev: string): Promise<number> {
  const { stdout } = await execa('ip', ['-n', netns, '-j', 'link', 'show', 'dev', dev]);
  return (JSON.parse(stdout) as Array<{ ifindex: number }>)[0]!.ifindex;
}

/** The program ids of the bpf filters on a tc hook, one per filter. */
async function tcFilterIds(netns: string, dev: string, hook: 'ingress' | 'egress'): Promise<number[]> {
  const { stdout } = await execa('tc', ['-n', netns, 'filter', 'show', 'dev', dev, hook]);
  return [...stdout.matchAll(/ handle \S+ .* id (\d+)/g)].map((m) => Number(m[1]));
}

// ---- data

/** An Ethernet + IPv4 packet to `daddr` (no payload beyond the header). */
function ipv4Packet(daddr: string, etherType = 0x0800): Buffer {
  const p = Buffer.alloc(14 + 20 + 26);
  p.writeUInt16BE(etherType, 12);
  p.writeUInt8(0x45, 14); // version 4, 5 words
  p.writeUInt16BE(p.length - 14, 16);
  p.writeUInt8(64, 22); // ttl
  p.writeUInt8(17, 23); // udp
  Buffer.from([10, 0, 0, 1]).copy(p, 26);
  Buffer.from(daddr.split('.').map(Number)).copy(p, 30);
  return p;
}

/** struct test_key { u32 id; u16 port; u8 proto; u8 dir; } -> struct test_value { u64 stamp; u32 rule; } */
function hashEntry(i: number): MapEntry {
  const key = Buffer.alloc(8);
  key.writeUInt32LE(i, 0);
  key.writeUInt16LE(i & 0xffff, 4);
  key.writeUInt8(6, 6);
  key.writeUInt8(i & 1, 7);
  const value = Buffer.alloc(16);
  value.writeBigUInt64LE(BigInt(i) * 1000n, 0);
  value.writeUInt32LE(i + 7, 8);
  return { key, value };
}

/** struct test_lpm_key { u32 prefixlen; u8 addr[4]; } -> u32: 10.x.y.0/24 for even i, 10.x.y.1/32 for odd. */
function lpmEntry(i: number, prefixlen = i % 2 === 0 ? 24 : 32): MapEntry {
  const key = Buffer.alloc(8);
  key.writeUInt32LE(prefixlen, 0);
  Buffer.from([10, (i >> 8) & 0xff, i & 0xff, prefixlen === 32 ? 1 : 0]).copy(key, 4);
  const value = Buffer.alloc(4);
  value.writeUInt32LE(i, 0);
  return { key, value };
}

function sorted(entries: MapEntry[]): string[] {
  return entries.map((e) => `${e.key.toString('hex')}=${e.value.toString('hex')}`).sort();
}

function rate(n: number, ms: number): string {
  return `${n} entries in ${ms.toFixed(1)} ms (${Math.round(n / (ms / 1000)).toLocaleString('en')} entries/s)`;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

before(() => {
  assert.equal(process.getuid?.(), 0, 'these tests load eBPF programs and need root');
  for (const file of [DEFAULT_LOADER_BINARY, TEST_OBJECT, REJECTED_OBJECT]) assert.ok(existsSync(file), `${file} is missing: run make`);
});

describe('maps and programs of the test object', () => {
  let bpffs: string;
  let pinDir: string;
  let loader: Loader;

  before(async () => {
    bpffs = await mountBpffs();
    pinDir = join(bpffs, 'node');
    loader = await startLoader();
  });

  test('LOAD pins every map by name and every program under progs/', async () => {
    const object = await loader.load(TEST_OBJECT, pinDir);
    assert.deepEqual(object.programs.map((p) => p.name), ['test_tc']);
    assert.deepEqual(object.maps.map((m) => [m.name, m.pinned]).sort(), [
      ['test_config', true], ['test_counters', true], ['test_hash', true], ['test_lpm', true],
    ]);
    assert.deepEqual((await readdir(pinDir)).sort(), ['progs', 'progs-staged', 'test_config', 'test_counters', 'test_hash', 'test_lpm']);
    assert.deepEqual(await readdir(join(pinDir, 'progs')), ['test_tc']);
    assert.deepEqual(await readdir(join(pinDir, 'progs-staged')), []);
  });

  test('a program the verifier refuses: the error carries the log tail, the new map pin is removed', async () => {
    const error = await loader.load(REJECTED_OBJECT, pinDir).then(
      () => assert.fail('the load should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof LoaderError);
    assert.match(error.loaderMessage, /rejected\.bpf\.o: Permission denied/);
    assert.match(error.loaderMessage, /bytes of libbpf log dropped/); // the walk through the loop is long
    assert.match(error.loaderMessage, /invalid access to packet/); // the verifier's verdict, at the end
    assert.ok(error.loaderMessage.length < 9000, `${error.loaderMessage.length} bytes`);
    assert.ok(!(await readdir(pinDir)).includes('rejected_map'));
    assert.deepEqual((await loader.status()).objects.map((o) => o.path), [TEST_OBJECT]);
  });

  test('hash map: 10,000 entries updated, dumped and deleted, one request each', async (t) => {
    const entries = Array.from({ length: 10_000 }, (_, i) => hashEntry(i));
    const [applied, updateMs] = await timed(() => loader.update('test_hash', entries));
    assert.equal(applied, 10_000);
    const [dumped, dumpMs] = await timed(() => loader.dump('test_hash'));
    assert.deepEqual(sorted(dumped), sorted(entries));
    // Half the keys, plus keys that were never there: those count as done, not deleted.
    const gone = entries.filter((_, i) => i % 2 === 0).map((e) => e.key);
    const absent = [hashEntry(50_000).key, hashEntry(50_001).key];
    const [deleted, deleteMs] = await timed(() => loader.delete('test_hash', [absent[0]!, ...gone, absent[1]!]));
    assert.equal(deleted, 5_000);
    assert.deepEqual(sorted(await loader.dump('test_hash')), sorted(entries.filter((_, i) => i % 2 === 1)));
    t.diagnostic(`hash update (batch): ${rate(10_000, updateMs)}`);
    t.diagnostic(`hash dump (batch): ${rate(10_000, dumpMs)}`);
    t.diagnostic(`hash delete (batch, 2 absent keys): ${rate(5_002, deleteMs)}`);
  });

  test('LPM trie (no batch ops in the kernel): the same, element by element', async (t) => {
    const entries = Array.from({ length: 10_000 }, (_, i) => lpmEntry(i));
    const [applied, updateMs] = await timed(() => loader.update('test_lpm', entries));
    assert.equal(applied, 10_000);
    const [dumped, dumpMs] = await timed(() => loader.dump('test_lpm'));
    assert.deepEqual(sorted(dumped), sorted(entries));
    const [deleted, deleteMs] = await timed(() => loader.delete('test_lpm', entries.slice(0, 9_990).map((e) => e.key)));
    assert.equal(deleted, 9_990);
    assert.deepEqual(sorted(await loader.dump('test_lpm')), sorted(entries.slice(9_990)));
    t.diagnostic(`lpm update (per element): ${rate(10_000, updateMs)}`);
    t.diagnostic(`lpm dump (per element): ${rate(10_000, dumpMs)}`);
    t.diagnostic(`lpm delete (per element): ${rate(9_990, deleteMs)}`);
  });

  // Each row: a batch that fails part way, where, and what the map holds after.
  const failing = [
    {
      what: 'array, kernel batch: an index past max_entries',
      map: 'test_config',
      entries: [u32Key.encode(0), u32Key.encode(7), u32Key.encode(0)].map((key, i) => ({ key, value: Buffer.alloc(8, i + 1) })),
      batch: { index: 1, errno: E2BIG, applied: 1 },
      after: [{ key: u32Key.encode(0), value: Buffer.alloc(8, 1) }], // the third entry (value 3) was not attempted
    },
    {
      what: 'LPM trie, per element: a prefix longer than the key',
      map: 'test_lpm',
      entries: [lpmEntry(20_000, 32), lpmEntry(20_001, 99), lpmEntry(20_002, 32)],
      batch: { index: 1, errno: EINVAL, applied: 1 },
      after: [lpmEntry(20_000, 32)],
    },
  ];
  for (const row of failing) {
    test(`a failed batch stops at the failing entry and says where: ${row.what}`, async () => {
      const before = await loader.dump(row.map);
      const error = await loader.update(row.map, row.entries).then(
        () => assert.fail('the update should have failed'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof LoaderError);
      assert.equal(error.op, 'UPDATE');
      assert.equal(error.map, row.map);
      assert.deepEqual(error.batch, row.batch);
      assert.match(error.message, new RegExp(`${row.map}: entry ${row.batch.index} failed`));
      const expected = new Map([...before, ...row.after].map((e) => [e.key.toString('hex'), e.value.toString('hex')]));
      assert.deepEqual(sorted(await loader.dump(row.map)), [...expected].map(([k, v]) => `${k}=${v}`).sort());
    });
  }

  test('DELETE on a map that cannot delete reports the first key', async () => {
    await assert.rejects(loader.delete('test_config', [u32Key.encode(0)]), (e: LoaderError) => {
      assert.deepEqual(e.batch, { index: 0, errno: EINVAL, applied: 0 });
      return true;
    });
  });

  test('entries of the wrong size are refused before anything is applied', async () => {
    const before = await loader.dump('test_hash');
    await assert.rejects(loader.update('test_hash', [{ key: Buffer.alloc(4), value: Buffer.alloc(16) }]), {
      name: 'LoaderError',
      message: /test_hash: entries of 4\+16 bytes, the map's are 8\+16/,
    });
    assert.throws(() => loader.update('test_hash', [hashEntry(1), { key: Buffer.alloc(9), value: Buffer.alloc(16) }]), RangeError);
    assert.equal((await loader.dump('test_hash')).length, before.length);
  });

  test('unknown map and program names are errors that name them', async () => {
    // Each row: a call on a name the loader does not have.
    const calls: Array<[string, () => Promise<unknown>, RegExp]> = [
      ['DUMP', () => loader.dump('no_such_map'), /no loaded map named no_such_map/],
      ['UPDATE', () => loader.update('no_such_map', [hashEntry(1)]), /no loaded map named no_such_map/],
      ['DELETE', () => loader.delete('no_such_map', []), /no loaded map named no_such_map/],
      ['TEST_RUN', () => loader.testRun('no_such_prog', ipv4Packet('10.0.0.2')), /no loaded program named no_such_prog/],
      ['ATTACH', () => loader.attach(1, 'no_such_prog', 'ingress'), /no loaded program named no_such_prog/],
      ['LOAD', () => loader.load(join(REPO, 'build/loader/missing.o'), pinDir), /missing\.o: No such file/],
    ];
    for (const [op, call, message] of calls) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof LoaderError);
        assert.equal(e.op, op);
        assert.match(e.loaderMessage, message);
        return true;
      });
    }
  });

  test('TEST_RUN returns the verdict the map contents call for, and the kernel timing', async () => {
    const packet = ipv4Packet('10.9.9.9');
    const before = sumMetrics((await loader.dump('test_counters'))[TC_ACT_SHOT]!.value);
    assert.equal((await loader.testRun('test_tc', packet)).retval, TC_ACT_OK);
    await loader.update('test_lpm', [{ key: Buffer.from([32, 0, 0, 0, 10, 9, 9, 9]), value: Buffer.alloc(4) }]);
    const shot = await loader.testRun('test_tc', packet, { repeat: 1000 });
    assert.equal(shot.retval, TC_ACT_SHOT);
    assert.ok(shot.durationNs > 0 && shot.durationNs < 100_000, `duration ${shot.durationNs} ns`);
    assert.deepEqual(shot.data, packet);
    assert.equal((await loader.testRun('test_tc', ipv4Packet('10.9.9.9', 0x86dd))).retval, TC_ACT_OK);
    // Per-CPU values: one struct per possible CPU, summed.
    const { possibleCpus } = await loader.status();
    const counters = (await loader.dump('test_counters'))[TC_ACT_SHOT]!.value;
    assert.equal(counters.length, 16 * possibleCpus);
    assert.equal(sumMetrics(counters).packets - before.packets, 1000n);
  });

  test('LAYOUT reads sizes and member offsets from the BTF', async () => {
    const layouts = await loader.layout(['test_key', 'test_value', 'no_such_struct']);
    assert.deepEqual(layouts.get('test_key'), {
      name: 'test_key',
      size: 8,
      members: [
        { name: 'id', offset: 0, size: 4 },
        { name: 'port', offset: 4, size: 2 },
        { name: 'proto', offset: 6, size: 1 },
        { name: 'dir', offset: 7, size: 1 },
      ],
    });
    assert.equal(layouts.get('test_value')?.size, 16); // u64 + u32, padded
    assert.equal(layouts.get('no_such_struct'), undefined);
  });

  test('pipelined requests are matched to their answers', async () => {
    const [status, ...dumps] = await Promise.all([
      loader.status(),
      ...Array.from({ length: 50 }, () => loader.dump('test_config')),
    ]);
    assert.equal(status?.objects.length, 1);
    for (const d of dumps) assert.equal((d as MapEntry[]).length, 1);
  });

  test('a new loader process LOADing the same pins keeps the map contents and replaces the program pin', async () => {
    const hash = await loader.dump('test_hash');
    const lpm = await loader.dump('test_lpm');
    assert.deepEqual(await loader.close(), { code: 0, signal: null });
    await assert.rejects(loader.status(), /exited with code 0/);

    loader = await startLoader();
    const object = await loader.load(TEST_OBJECT, pinDir);
    assert.deepEqual(sorted(await loader.dump('test_hash')), sorted(hash));
    assert.deepEqual(sorted(await loader.dump('test_lpm')), sorted(lpm));
    const { stdout } = await execa('bpftool', ['-j', 'prog', 'show', 'pinned', join(pinDir, 'progs/test_tc')]);
    assert.equal((JSON.parse(stdout) as { id: number }).id, object.programs[0]!.id);
  });

  test('malformed frames, unknown ops and oversized frames get errors; the loader carries on', async () => {
    const child = spawn(DEFAULT_LOADER_BINARY, [], { stdio: ['pipe', 'pipe', 'ignore'] });
    cleanups.push(async () => child.kill('SIGKILL'));
    const frames = new FrameReader();
    const answers: Array<{ id: number; status: number; text: string }> = [];
    child.stdout.on('data', (chunk: Buffer) => {
      for (const f of frames.push(chunk)) answers.push({ id: f.readUInt32LE(0), status: f[4]!, text: f.subarray(5).toString() });
    });
    const closed = once(child, 'close');
    const oversized = Buffer.alloc(9);
    oversized.writeUInt32LE(MAX_FRAME + 1, 0);
    oversized.writeUInt32LE(6, 4);
    oversized.writeUInt8(OPS.STATUS, 8);
    child.stdin.write(encodeRequest(1, 77, Buffer.alloc(0))); // unknown op
    child.stdin.write(encodeRequest(2, OPS.LOAD, Buffer.from([5, 0, 65]))); // string longer than the payload
    child.stdin.write(encodeRequest(3, OPS.STATUS, Buffer.from([1]))); // trailing byte
    child.stdin.write(encodeRequest(4, OPS.ATTACH, Buffer.alloc(4))); // missing fields
    child.stdin.write(Buffer.from([2, 0, 0, 0, 9, 9])); // too short to hold an id
    child.stdin.write(oversized);
    child.stdin.write(Buffer.alloc(MAX_FRAME + 1 - 5)); // its body, discarded
    child.stdin.write(encodeRequest(7, OPS.STATUS, Buffer.alloc(0)));
    child.stdin.end();
    const [code] = await closed;
    assert.equal(code, 0);
    assert.deepEqual(
      answers.map((a) => [a.id, a.status, a.status === 0 ? 'ok' : a.text]),
      [
        [1, 1, 'unknown op 77'],
        [2, 1, 'malformed LOAD request'],
        [3, 1, 'malformed STATUS request'],
        [4, 1, 'malformed ATTACH request'],
        [0, 1, 'frame of 2 bytes is shorter than its header'],
        [6, 1, `frame of ${MAX_FRAME + 1} bytes exceeds the limit of ${MAX_FRAME}`],
        [7, 0, 'ok'],
      ],
    );
  });

  test('raw requests through the client: unknown ops reject, the client stays usable', async () => {
    await assert.rejects(loader.request(200, Buffer.alloc(3)), { name: 'LoaderError', op: 'RAW', loaderMessage: 'unknown op 200' });
    assert.equal((await loader.status()).protocolVersion, PROTOCOL_VERSION);
  });

  test('when the loader dies, pending calls reject with its exit and later calls fail at once', async () => {
    const doomed = await startLoader();
    await doomed.load(TEST_OBJECT, pinDir);
    const long = doomed.testRun('test_tc', ipv4Packet('10.0.0.2'), { repeat: 200_000_000 });
    setTimeout(() => process.kill(doomed.pid!, 'SIGKILL'), 100);
    await assert.rejects(long, { name: 'LoaderError', op: 'TEST_RUN', message: /was killed by SIGKILL/ });
    await assert.rejects(doomed.dump('test_hash'), { name: 'LoaderError', op: 'DUMP', message: /was killed by SIGKILL/ });
  });

  test('a loader that cannot start fails start() clearly', async () => {
    await assert.rejects(Loader.start({ binary: join(REPO, 'build/bin/no-such-loader'), onLog: quiet }), {
      name: 'LoaderError',
      message: /cannot run .*no-such-loader: spawn .* ENOENT/,
    });
    await assert.rejects(Loader.start({ netns: '/var/run/netns/pal-loader-test-none', onLog: quiet }), {
      name: 'LoaderError',
      message: /exited with code 1; its last words: nsenter: .*pal-loader-test-none/,
    });
  });
});

describe('tc attachments in a network namespace', () => {
  let netns: string;
  let pinDir: string;
  let loader: Loader;
  let ifindex: number;

  before(async () => {
    pinDir = join(await mountBpffs(), 'node');
    netns = await addNetns();
    await execa('ip', ['-n', netns, 'link', 'add', 'pal0', 'type', 'veth', 'peer', 'name', 'pod0']);
    await execa('ip', ['-n', netns, 'link', 'set', 'pal0', 'up']);
    ifindex = await ifindexOf(netns, 'pal0');
    loader = await startLoader({ netns: `/var/run/netns/${netns}` });
    await loader.load(TEST_OBJECT, pinDir);
  });

  test('ATTACH creates clsact and one filter; ATTACH again replaces it in place', async () => {
    const first = await loader.attach(ifindex, 'test_tc', 'ingress');
    assert.deepEqual(await tcFilterIds(netns, 'pal0', 'ingress'), [first]);
    // Reloading makes a new program; attaching it must not add a second filter.
    const reloaded = await loader.load(TEST_OBJECT, pinDir);
    const second = await loader.attach(ifindex, 'test_tc', 'ingress');
    assert.equal(second, reloaded.programs[0]!.id);
    assert.notEqual(second, first);
    assert.deepEqual(await tcFilterIds(netns, 'pal0', 'ingress'), [second]);
    const egress = await loader.attach(ifindex, 'test_tc', 'egress');
    assert.deepEqual(await tcFilterIds(netns, 'pal0', 'egress'), [egress]);
    assert.deepEqual((await loader.status()).attachments.sort((a, b) => a.hook.localeCompare(b.hook)), [
      { ifindex, hook: 'egress', program: 'test_tc', programId: egress },
      { ifindex, hook: 'ingress', program: 'test_tc', programId: second },
    ]);
  });

  test('TEST_RUN with an ifindex of the loader namespace', async () => {
    const result = await loader.testRun('test_tc', ipv4Packet('10.0.0.2'), { ifindex });
    assert.equal(result.retval, TC_ACT_OK);
  });

  test('attachments outlive the loader; a restarted loader re-attaches without a second filter', async () => {
    await loader.close();
    const kept = await tcFilterIds(netns, 'pal0', 'ingress');
    assert.equal(kept.length, 1);
    loader = await startLoader({ netns: `/var/run/netns/${netns}` });
    await loader.load(TEST_OBJECT, pinDir);
    const id = await loader.attach(ifindex, 'test_tc', 'ingress');
    assert.deepEqual(await tcFilterIds(netns, 'pal0', 'ingress'), [id]);
  });

  test('DETACH removes our filter, and tolerates a missing filter or device', async () => {
    assert.equal(await loader.detach(ifindex, 'ingress'), true);
    assert.deepEqual(await tcFilterIds(netns, 'pal0', 'ingress'), []);
    assert.equal(await loader.detach(ifindex, 'ingress'), false);
    await execa('ip', ['-n', netns, 'link', 'del', 'pal0']);
    assert.equal(await loader.detach(ifindex, 'egress'), false);
    assert.deepEqual((await loader.status()).attachments, []);
    await assert.rejects(loader.attach(ifindex, 'test_tc', 'ingress'), { name: 'LoaderError', message: /No such device/ });
  });
});

describe('the real endpoint object', { skip: !existsSync(ENDPOINT_OBJECT) && `${ENDPOINT_OBJECT} is not built yet` }, () => {
  let netns: string;
  let pinDir: string;
  let loader: Loader;

  before(async () => {
    pinDir = join(await mountBpffs(), 'node');
    netns = await addNetns();
    await execa('ip', ['-n', netns, 'link', 'add', 'pal0', 'type', 'veth', 'peer', 'name', 'pod0']);
    await execa('ip', ['-n', netns, 'link', 'set', 'pal0', 'up']);
    loader = await startLoader({ netns: `/var/run/netns/${netns}` });
  });

  test('loads with its load-time globals, every ADR map pinned', async () => {
    const object = await loader.load(ENDPOINT_OBJECT, pinDir, { globals: loadGlobals({ hostReachesPods: true }) });
    assert.deepEqual(object.programs.map((p) => p.name).sort(), [...Object.keys(PROGRAMS), CLOCK_PROGRAM, CT_FORGET_PROGRAM].sort());
    for (const name of Object.keys(MAPS)) assert.ok(object.maps.find((m) => m.name === name)?.pinned, `${name} pinned`);
    await assert.rejects(
      loader.load(ENDPOINT_OBJECT, pinDir, { globals: { pal_host_reaches_pods: Buffer.alloc(2) } }),
      /global pal_host_reaches_pods is 4 bytes, not 2/,
    );
  });

  test('a packet of a device that has the programs but no endpoint entry is dropped and counted as DROP_NO_ENDPOINT', async () => {
    const ifindex = await ifindexOf(netns, 'pal0');
    const key = u32Key.encode(REASON.DROP_NO_ENDPOINT);
    const count = async () => sumMetrics((await loader.dump('pal_metrics')).find((e) => e.key.equals(key))!.value).packets;
    const before = await count();
    for (const program of Object.keys(PROGRAMS)) {
      const result = await loader.testRun(program, ipv4Packet('10.200.1.5'), { ifindex });
      assert.equal(result.retval, TC_ACT_SHOT, program);
    }
    assert.equal((await count()) - before, 2n);
  });

  test('attaches both programs to a host-side veth at their ADR hooks', async () => {
    const ifindex = await ifindexOf(netns, 'pal0');
    for (const [program, { hook }] of Object.entries(PROGRAMS)) {
      const id = await loader.attach(ifindex, program, hook);
      assert.deepEqual(await tcFilterIds(netns, 'pal0', hook), [id]);
    }
    await loader.update('pal_endpoints', [
      {
        key: u32Key.encode(ifindex),
        value: endpointInfo.encode({ endpointId: 1, identity: 256, flags: 1 << DIRECTION.INGRESS, ingressDefaultRule: 9, egressDefaultRule: 0, ipv4: '10.200.1.5' }),
      },
    ]);
    const [entry] = await loader.dump('pal_endpoints');
    assert.equal(endpointInfo.decode(entry!.value).ipv4, '10.200.1.5');
  });
});
