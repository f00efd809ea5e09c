// The conntrack garbage collector: its pure choice of expired entries, and a
// pass over the real pal_ct4 of build/bpf/endpoint.bpf.o (loaded into a
// bpffs mounted for the test and removed after it), on the kernel's clock.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { CLOCK_PROGRAM, ct4Key, ctValue, DIRECTION, loadGlobals, PROTOCOL } from '../datapath/abi.ts';
import { Loader, type MapEntry } from '../datapath/loader-client.ts';
import { ConntrackGc, DEFAULT_CT_TIMEOUTS, expiredKeys, nearestHz } from './conntrack-gc.ts';

const ENDPOINT_OBJECT = fileURLToPath(new URL('../build/bpf/endpoint.bpf.o', import.meta.url));

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
});

/** A pal_ct4 entry of the pod 10.1.0.10 with peer port `peerPort`. */
function entry(protocol: number, peerPort: number, lastSeen: number, closing = 0): MapEntry {
  return {
    key: ct4Key.encode({ addr: '10.1.0.10', peerAddr: '10.1.0.20', port: 80, peerPort, protocol }),
    value: ctValue.encode({ revision: 1, ruleId: 7, lastSeen: lastSeen >>> 0, ifindex: 3, origin: DIRECTION.INGRESS, revoked: 0, closing }),
  };
}

const peerPorts = (keys: readonly Buffer[]) => keys.map((k) => ct4Key.decode(k).peerPort).sort((a, b) => a - b);

test('an entry expires once idle longer than its protocol timeout (TCP 6 h, TCP after FIN/RST 10 s, others 60 s)', () => {
  const hz = 250;
  const now = 1_000_000;
  const ago = (seconds: number) => now - seconds * hz;
  const entries = [
    entry(PROTOCOL.TCP, 1, ago(3600)), // established, idle 1 h: kept
    entry(PROTOCOL.TCP, 2, ago(21_601)), // established, idle over 6 h: expired
    entry(PROTOCOL.TCP, 3, ago(9), 1), // closing, idle 9 s: kept
    entry(PROTOCOL.TCP, 4, ago(11), 1), // closing, idle 11 s: expired
    entry(PROTOCOL.UDP, 5, ago(59)), // kept
    entry(PROTOCOL.UDP, 6, ago(61)), // expired
    entry(PROTOCOL.SCTP, 7, ago(61)), // expired
    entry(1 /* ICMP */, 8, ago(61)), // expired
    entry(PROTOCOL.UDP, 9, now + 5), // stamped after `now` was read: not idle
  ];
  assert.deepEqual(peerPorts(expiredKeys(entries, now, hz, DEFAULT_CT_TIMEOUTS)), [2, 4, 6, 7, 8]);
});

test('idle time is taken modulo 2^32, across a wrap of the 32-bit jiffies', () => {
  const hz = 1000;
  const now = 500; // just after the wrap
  const entries = [entry(PROTOCOL.UDP, 1, 2 ** 32 - 61_000), entry(PROTOCOL.UDP, 2, 2 ** 32 - 59_000)];
  assert.deepEqual(peerPorts(expiredKeys(entries, now, hz, DEFAULT_CT_TIMEOUTS)), [1]);
});

test('HZ is the kernel value nearest to the measured tick rate', () => {
  assert.equal(nearestHz(63, 0.25), 250);
  assert.equal(nearestHz(251, 0.251), 1000);
  assert.equal(nearestHz(26, 0.26), 100);
  assert.equal(nearestHz(77, 0.255), 300);
});

test('a pass over the kernel map deletes exactly the expired entries, on the clock the datapath stamps with', async () => {
  const bpffs = await mkdtemp(join(tmpdir(), 'pal-ct-gc-test-'));
  cleanups.push(() => rm(bpffs, { recursive: true, force: true }));
  await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
  cleanups.push(() => execa('umount', [bpffs]));
  const loader = await Loader.start({ onLog: () => {} });
  cleanups.push(() => loader.close());
  await loader.load(ENDPOINT_OBJECT, bpffs, { globals: loadGlobals({ hostReachesPods: true }) });

  const gc = await ConntrackGc.start({ loader, intervalMs: 0, timeouts: { tcpSeconds: 3600, tcpClosingSeconds: 2, otherSeconds: 5 }, log: () => {} });
  assert.ok([100, 250, 300, 1000].includes(gc.hz), `HZ ${gc.hz}`);
  const now = (await loader.testRun(CLOCK_PROGRAM, Buffer.alloc(64))).retval >>> 0;
  const ago = (seconds: number) => now - seconds * gc.hz;
  await loader.update('pal_ct4', [
    entry(PROTOCOL.TCP, 1, ago(60)), // kept (1 h)
    entry(PROTOCOL.TCP, 2, ago(60), 1), // closing: expired (2 s)
    entry(PROTOCOL.UDP, 3, ago(1)), // kept (5 s)
    entry(PROTOCOL.UDP, 4, ago(30)), // expired
  ]);

  assert.deepEqual(await gc.runOnce(), { scanned: 4, deleted: 2 });
  assert.deepEqual(peerPorts((await loader.dump('pal_ct4')).map((e) => e.key)), [1, 3]);
  assert.deepEqual(await gc.runOnce(), { scanned: 2, deleted: 0 }, 'a second pass finds nothing more');
  await gc.stop();
});
