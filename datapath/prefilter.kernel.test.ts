// The XDP prefilter in the kernel: its ABI mirror (datapath/prefilter.ts)
// against the built object and header; the loader's XDP_ATTACH and
// XDP_DETACH on a veth; and, on real namespaces and veths
// (datapath/prefilter-lab.ts), a sender on the node's uplink whose UDP from
// a denied source never reaches the tc programs (DROP_PREFILTER counts,
// their DROP_POLICY_DENY does not move) while an allowed source's arrives,
// a reply of the pod's own connection from the denied source arrives too,
// and with the prefilter detached the tc programs drop the denied source
// themselves. Everything is created under this run's names and removed at
// the end, also on failure.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { createNetns, deleteNetns, netnsPath, newRunId } from '../e2e/cluster/netns.ts';
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { PalisadePolicyInput } from '../policy/types.ts';
import { dropAgg, dropAggKey, loadGlobals, REASON } from './abi.ts';
import { Loader } from './loader-client.ts';
import { PREFILTER_EVENTS, PREFILTER_FLAG, PREFILTER_MAPS, PREFILTER_MAX, PREFILTER_OBJECT, PREFILTER_PROGRAM, PREFILTER_STRUCTS } from './prefilter.ts';
import { LAB, prefilterLab, type PrefilterLab } from './prefilter-lab.ts';
import { ENDPOINT_OBJECT } from './scratch-datapath.ts';

const built = existsSync(PREFILTER_OBJECT) && existsSync(ENDPOINT_OBJECT);
const skip = !built && 'build/bpf/prefilter.bpf.o is not built yet (make -s all)';
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
});

describe('the ABI mirror', { skip }, () => {
  test('constants equal the #defines of bpf/lib/prefilter.h', async () => {
    const header = await readFile(new URL('../bpf/lib/prefilter.h', import.meta.url), 'utf8');
    const define = (name: string) => {
      const m = new RegExp(`#define ${name}\\s+\\(?(\\d+)u?(?:\\s*<<\\s*(\\d+))?\\)?`).exec(header);
      assert.ok(m, name);
      return Number(m[1]) * 2 ** Number(m[2] ?? 0);
    };
    assert.deepEqual(PREFILTER_FLAG, { ACTIVE: define('PAL_PREFILTER_ACTIVE'), WORLD: define('PAL_PREFILTER_WORLD') });
    assert.equal(PREFILTER_MAX, define('PAL_PREFILTER_MAX'));
    assert.equal(PREFILTER_EVENTS, define('PAL_PREFILTER_EVENTS'));
  });

  test('struct layouts and maps equal the object\'s', async () => {
    const bpffs = await mkdtemp(join(tmpdir(), `${newRunId()}-abi-`));
    cleanups.push(() => rm(bpffs, { recursive: true, force: true }));
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    cleanups.push(() => execa('umount', [bpffs]));
    const loader = await Loader.start({ onLog: () => undefined });
    cleanups.push(() => loader.close());
    await loader.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals({ hostReachesPods: true }) });
    const object = await loader.load(PREFILTER_OBJECT, join(bpffs, 'node'));
    assert.deepEqual(object.programs.map((p) => [p.name, p.type]), [[PREFILTER_PROGRAM, 6]], 'one XDP program');
    const btf = await loader.layout(PREFILTER_STRUCTS.map((s) => s.name));
    for (const spec of PREFILTER_STRUCTS) assert.deepEqual(btf.get(spec.name), spec, `struct ${spec.name}`);
    for (const [name, spec] of Object.entries(PREFILTER_MAPS)) {
      const map = object.maps.find((m) => m.name === name);
      assert.deepEqual(map && { type: map.type, keySize: map.keySize, valueSize: map.valueSize, pinned: map.pinned }, { type: spec.type, keySize: spec.key.size, valueSize: spec.value.size, pinned: true }, name);
    }
    assert.equal(object.maps.find((m) => m.name === 'pal_prefilter4')?.maxEntries, PREFILTER_MAX);
  });
});

describe('XDP_ATTACH and XDP_DETACH', { skip }, () => {
  test('native on a veth, replaced in place, moved to generic, never over another\'s program, detached only when ours', async () => {
    const ns = `${newRunId()}-xdp`;
    cleanups.push(() => deleteNetns(ns));
    await createNetns(ns);
    await execa('ip', ['-n', ns, 'link', 'add', 'xa', 'type', 'veth', 'peer', 'name', 'xb']);
    await execa('ip', ['-n', ns, 'link', 'set', 'xa', 'up']);
    await execa('ip', ['-n', ns, 'link', 'set', 'xb', 'up']);
    const ifindex = async (dev: string) => (JSON.parse(String((await execa('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])).stdout)) as Array<{ ifindex: number }>)[0]!.ifindex;
    const xdpOf = async (dev: string) => {
      const [link] = JSON.parse(String((await execa('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', dev])).stdout)) as Array<{ xdp?: { mode: number; prog?: { id: number; name: string } } }>;
      return link!.xdp && { mode: link!.xdp.mode, id: link!.xdp.prog?.id };
    };
    const [xa, xb] = [await ifindex('xa'), await ifindex('xb')];
    const bpffs = await mkdtemp(join(tmpdir(), `${ns}-bpf-`));
    cleanups.push(() => rm(bpffs, { recursive: true, force: true }));
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    cleanups.push(() => execa('umount', [bpffs]));
    const loader = await Loader.start({ netns: netnsPath(ns), onLog: () => undefined });
    cleanups.push(() => loader.close());
    await loader.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals({ hostReachesPods: true }) });
    const object = await loader.load(PREFILTER_OBJECT, join(bpffs, 'node'));
    const id = object.programs[0]!.id;

    assert.deepEqual(await loader.xdpAttach(xa, PREFILTER_PROGRAM), { programId: id, mode: 'native' });
    assert.deepEqual(await xdpOf('xa'), { mode: 1, id }); // XDP_ATTACHED_DRV
    assert.deepEqual(await loader.xdpAttach(xa, PREFILTER_PROGRAM), { programId: id, mode: 'native' }, 'again: replaced in place');
    // A new loader (a restarted agent) replaces the program an earlier one attached.
    const second = await Loader.start({ netns: netnsPath(ns), onLog: () => undefined });
    cleanups.push(() => second.close());
    await second.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals({ hostReachesPods: true }) });
    const newer = (await second.load(PREFILTER_OBJECT, join(bpffs, 'node'))).programs[0]!.id;
    assert.notEqual(newer, id);
    assert.deepEqual(await second.xdpAttach(xa, PREFILTER_PROGRAM), { programId: newer, mode: 'native' });
    assert.deepEqual(await xdpOf('xa'), { mode: 1, id: newer });
    assert.deepEqual(await second.xdpAttach(xa, PREFILTER_PROGRAM, 'generic'), { programId: newer, mode: 'generic' });
    assert.deepEqual(await xdpOf('xa'), { mode: 2, id: newer }); // XDP_ATTACHED_SKB
    assert.equal(await second.xdpDetach(xa, 'not_ours'), false, 'another name is not ours');
    assert.equal(await second.xdpDetach(xa, PREFILTER_PROGRAM), true);
    assert.equal(await xdpOf('xa'), undefined);
    assert.equal(await second.xdpDetach(xa, PREFILTER_PROGRAM), false, 'nothing left');
    assert.equal(await second.xdpDetach(999_999, PREFILTER_PROGRAM), false, 'no such device');

    // Someone else's XDP program: never replaced, never detached.
    const dir = await mkdtemp(join(tmpdir(), `${ns}-other-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'other.c'), '#include <linux/bpf.h>\n__attribute__((section("xdp"), used)) int someone_else(struct xdp_md *c) { return XDP_PASS; }\nchar l[] __attribute__((section("license"), used)) = "GPL";\n');
    const machine = String((await execa('gcc', ['-dumpmachine'])).stdout).trim();
    await execa('clang', ['-O2', '-target', 'bpf', '-I', `/usr/include/${machine}`, '-c', join(dir, 'other.c'), '-o', join(dir, 'other.o')]);
    await execa('ip', ['-n', ns, 'link', 'set', 'dev', 'xb', 'xdpgeneric', 'obj', join(dir, 'other.o'), 'sec', 'xdp']);
    const theirs = (await xdpOf('xb'))!.id;
    await assert.rejects(second.xdpAttach(xb, PREFILTER_PROGRAM), /has XDP program \d+, not ours: not replacing it/);
    assert.equal(await second.xdpDetach(xb, PREFILTER_PROGRAM), false);
    assert.deepEqual(await xdpOf('xb'), { mode: 2, id: theirs });
    await assert.rejects(second.xdpAttach(xa, 'pal_from_pod'), /pal_from_pod is not an XDP program/);
  });
});

// ---- on the wire ------------------------------------------------------------------

function policy(name: string, spec: Record<string, unknown>): PalisadePolicyInput {
  const v = validatePalisadePolicy({ kind: 'PalisadeClusterNetworkPolicy', spec: { endpointSelector: {}, ...spec } });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name, spec: v.spec };
}

/** A UDP socket in a namespace: bound to address:port, sends `count` datagrams to dst:dport if given, prints what it receives (`from-address:port payload`). */
const UDP_SCRIPT = `
const dgram = require('node:dgram');
const { BIND, PORT, DST, DPORT, COUNT } = process.env;
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => process.stdout.write(r.address + ':' + r.port + ' ' + m + '\\n'));
s.bind({ address: BIND, port: Number(PORT) }, async () => {
  process.stdout.write('ready\\n');
  for (let i = 0; i < Number(COUNT || 0); i++) await new Promise((done) => s.send('d' + i, Number(DPORT), DST, done));
  if (COUNT) process.stdout.write('sent\\n');
});
`;

interface UdpProcess {
  lines: string[];
  child: ResultPromise;
  until(pattern: RegExp, count?: number, ms?: number): Promise<void>;
}

function udp(lab: PrefilterLab, netns: string, env: Record<string, string>): UdpProcess {
  const child = execa('ip', ['netns', 'exec', netns, process.execPath, '-e', UDP_SCRIPT], { env, reject: false, buffer: false });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await child;
  });
  void lab;
  return {
    lines,
    child,
    async until(pattern, count = 1, ms = 5000) {
      const deadline = Date.now() + ms;
      while (lines.filter((l) => pattern.test(l)).length < count) {
        if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${count} x ${pattern}; got ${JSON.stringify(lines)}`);
        await sleep(20);
      }
    },
  };
}

const delta = (before: Map<string, bigint>, after: Map<string, bigint>, reason: string) => Number((after.get(reason) ?? 0n) - (before.get(reason) ?? 0n));

test('on a real uplink: the denied source never reaches tc, the allowed one and the pod\'s replies do; detached, tc drops it', { skip, timeout: 60_000 }, async () => {
  // Every pod denies 203.0.113.0/24 on every port; nothing isolates the pods otherwise.
  const lab = await prefilterLab([policy('deny-doc', { ingressDeny: [{ fromCIDR: ['203.0.113.0/24'] }], enableDefaultDeny: { ingress: false, egress: false } })]);
  cleanups.push(() => lab.dispose());
  assert.equal(await lab.attachPrefilter(), 'native');

  const receiver = udp(lab, lab.podNs, { BIND: '0.0.0.0', PORT: '7000' });
  await receiver.until(/^ready$/);
  const before = await lab.metrics();
  const denied = udp(lab, lab.sender, { BIND: LAB.denied, PORT: '0', DST: LAB.pod.ip, DPORT: '7000', COUNT: '20' });
  await denied.until(/^sent$/);
  const allowed = udp(lab, lab.sender, { BIND: LAB.allowed, PORT: '0', DST: LAB.pod.ip, DPORT: '7000', COUNT: '5' });
  await receiver.until(new RegExp(`^${LAB.allowed.replaceAll('.', '\\.')}:`), 5);
  await allowed.until(/^sent$/);
  await sleep(300);
  const mid = await lab.metrics();
  assert.equal(delta(before, mid, 'DROP_PREFILTER'), 20, 'every denied datagram dropped by the prefilter');
  assert.equal(delta(before, mid, 'DROP_POLICY_DENY'), 0, 'none reached pal_to_pod');
  assert.equal(delta(before, mid, 'PASS_UNSELECTED') + delta(before, mid, 'ALLOW_ESTABLISHED'), 5, 'the allowed ones passed pal_to_pod');
  assert.deepEqual(receiver.lines.filter((l) => l.startsWith(LAB.denied)), [], 'no denied datagram arrived');
  // The flow side: one pal_drop_agg key for the pod's veth under DROP_PREFILTER, holding all 20.
  const keys = (await lab.loader.dump('pal_drop_agg')).map((e) => ({ key: dropAggKey.decode(e.key), total: dropAgg.decode(e.value).total })).filter((e) => e.key.reason === REASON.DROP_PREFILTER);
  assert.deepEqual(keys.map((e) => [e.key.ifindex, e.key.peer, e.key.dport, e.total]), [[lab.podIfindex, LAB.denied, 7000, 20n]]);

  // A connection the pod opens to the denied address: its replies are tc's (ALLOW_REPLY), so the prefilter passes them.
  const client = udp(lab, lab.podNs, { BIND: LAB.pod.ip, PORT: '5000', DST: LAB.denied, DPORT: '5353', COUNT: '1' });
  await client.until(/^sent$/);
  await sleep(200);
  const server = udp(lab, lab.sender, { BIND: LAB.denied, PORT: '5353', DST: LAB.pod.ip, DPORT: '5000', COUNT: '3' });
  await client.until(new RegExp(`^${LAB.denied.replaceAll('.', '\\.')}:5353 `), 3);
  await server.until(/^sent$/);
  const replied = await lab.metrics();
  assert.equal(delta(mid, replied, 'DROP_PREFILTER'), 0, 'replies passed');
  assert.ok(delta(mid, replied, 'ALLOW_REPLY') >= 3, 'and were replies at tc');

  // Detached, the same flood meets the tc programs, which drop it themselves.
  assert.equal(await lab.detachPrefilter(), true);
  const again = udp(lab, lab.sender, { BIND: LAB.denied, PORT: '0', DST: LAB.pod.ip, DPORT: '7000', COUNT: '10' });
  await again.until(/^sent$/);
  await sleep(300);
  const end = await lab.metrics();
  assert.equal(delta(replied, end, 'DROP_PREFILTER'), 0);
  assert.equal(delta(replied, end, 'DROP_POLICY_DENY'), 10, 'tc enforces without the prefilter');
  assert.deepEqual(receiver.lines.filter((l) => l.startsWith(LAB.denied)), []);
});
