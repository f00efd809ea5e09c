// The conntrack garbage collector: its pure choice of expired entries, and a
// pass over the real pal_ct4 of build/bpf/endpoint.bpf.o (loaded into a
// bpffs mounted for the test and removed after it), on the kernel's clock.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  CLOCK_PROGRAM,
  CT_FORGET_PROGRAM,
  ct4Key,
  ctBudget,
  ctValue,
  datapathConfig,
  DIRECTION,
  ENDPOINT_FLAG,
  endpointInfo,
  ipcacheValue,
  ipv4Key,
  POLICY_FLAG,
  policyKey,
  policyValue,
  PROTOCOL,
  u32Key,
} from '../datapath/abi.ts';
import type { MapEntry } from '../datapath/loader-client.ts';
import { scratchDatapath } from '../datapath/scratch-datapath.ts';
import { ConntrackGc, DEFAULT_CT_TIMEOUTS, expiredKeys, forgetBatches, nearestHz } from './conntrack-gc.ts';


const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
});

/** A pal_ct4 entry of the pod 10.1.0.10 with peer port `peerPort`. */
function entry(protocol: number, peerPort: number, lastSeen: number, closing = 0): MapEntry {
  return {
    key: ct4Key.encode({ addr: '10.1.0.10', peerAddr: '10.1.0.20', port: 80, peerPort, protocol }),
    value: ctValue.encode({ revision: 1, ruleId: 7, lastSeen: lastSeen >>> 0, ifindex: 3, origin: DIRECTION.INGRESS, revoked: 0, closing, nat: 0, natAddr: '0.0.0.0', natPort: 0, lastReport: 0, packets: 0n, bytes: 0n }),
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
  const datapath = await scratchDatapath('ct-gc-test');
  cleanups.push(() => datapath.dispose());
  const { loader } = datapath;

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

test('pal_ct_forget deletes only entries whose last_seen is still the one judged idle, and uncounts them', async () => {
  const datapath = await scratchDatapath('ct-gc-test');
  cleanups.push(() => datapath.dispose());
  const { loader } = datapath;

  const entries = Array.from({ length: 300 }, (_, i) => entry(PROTOCOL.UDP, i + 1, 1000)); // 3 batches of up to 128
  await loader.update('pal_ct4', entries);
  // As the datapath would have counted them: 300 for device 3 (entry()'s ifindex), 300 in all.
  await loader.update('pal_ct_budget', [
    { key: u32Key.encode(3), value: ctBudget.encode({ entries: 300 }) },
    { key: u32Key.encode(0), value: ctBudget.encode({ entries: 300 }) },
  ]);
  // Entry 7 is refreshed after the collector's dump: it must stay.
  await loader.update('pal_ct4', [entry(PROTOCOL.UDP, 7, 2000)]);
  let deleted = 0;
  for (const batch of forgetBatches(entries)) deleted += (await loader.testRun(CT_FORGET_PROGRAM, batch)).retval;
  assert.equal(deleted, 299);
  assert.deepEqual(peerPorts((await loader.dump('pal_ct4')).map((e) => e.key)), [7]);
  const budget = new Map((await loader.dump('pal_ct_budget')).map((e) => [u32Key.decode(e.key), ctBudget.decode(e.value).entries]));
  assert.deepEqual(budget, new Map([[0, 1], [3, 1]]));
});

/** Ethernet + IPv4 (no options) + UDP + 8 bytes, the way a pod's datagram crosses its veth. */
function udpFrame(src: string, sport: number, dst: string, dport: number): Buffer {
  const frame = Buffer.alloc(14 + 20 + 8 + 8);
  frame.writeUInt16BE(0x0800, 12);
  const ip = frame.subarray(14);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 16, 2);
  ip[8] = 64;
  ip[9] = PROTOCOL.UDP;
  ipv4Key.encode(src).copy(ip, 12);
  ipv4Key.encode(dst).copy(ip, 16);
  ip.writeUInt16BE(sport, 20);
  ip.writeUInt16BE(dport, 22);
  ip.writeUInt16BE(16, 24);
  return frame;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a revoked UDP flow stays cut past the collector timeout while either side keeps sending, and is collected (its count with it) once both are silent', async () => {
  const datapath = await scratchDatapath('ct-gc-test');
  cleanups.push(() => datapath.dispose());
  const { loader } = datapath;

  // The pod behind ifindex 1 (test_run's skb is on loopback), ingress enforced,
  // allowing UDP 53 from the peer's identity.
  const [pod, peer, podId, peerId, rule] = ['10.1.0.10', '10.1.0.20', 300, 400, 77];
  await loader.update('pal_ipcache4', [{ key: ipv4Key.encode(peer), value: ipcacheValue.encode({ identity: peerId, flags: 0 }) }]);
  await loader.update('pal_endpoints', [{
    key: u32Key.encode(1),
    value: endpointInfo.encode({ endpointId: 9, identity: podId, flags: ENDPOINT_FLAG.INGRESS_ENFORCED, ingressDefaultRule: 901, egressDefaultRule: 902, ipv4: pod }),
  }]);
  const allow = [
    { key: policyKey.encode({ endpointId: 9, identity: peerId, direction: DIRECTION.INGRESS, protocol: 0, dport: 0 }), value: policyValue.encode({ ruleId: rule, flags: POLICY_FLAG.UDP_PORTS }) },
    { key: policyKey.encode({ endpointId: 9, identity: peerId, direction: DIRECTION.INGRESS, protocol: PROTOCOL.UDP, dport: 53 }), value: policyValue.encode({ ruleId: rule, flags: 0 }) },
  ];
  await loader.update('pal_policy', allow);
  const setRevision = (policyRevision: number) => loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision, flags: 0 }) }]);
  await setRevision(1);

  const TC_ACT_OK = 0;
  const TC_ACT_SHOT = 2;
  const fromPeer = () => loader.testRun('pal_to_pod', udpFrame(peer, 33333, pod, 53)).then((r) => r.retval);
  const fromPod = () => loader.testRun('pal_from_pod', udpFrame(pod, 53, peer, 33333)).then((r) => r.retval);
  const budget = async () => new Map((await loader.dump('pal_ct_budget')).map((e) => [u32Key.decode(e.key), ctBudget.decode(e.value).entries]));
  const entries = async () => (await loader.dump('pal_ct4')).map((e) => ctValue.decode(e.value));

  assert.equal(await fromPeer(), TC_ACT_OK, 'the flow opens');
  assert.equal(await fromPod(), TC_ACT_OK, 'the answer passes');
  assert.deepEqual(await budget(), new Map([[0, 1], [1, 1]]), 'one entry, counted for the device and the node');
  await loader.delete('pal_policy', allow.map((e) => e.key));
  await setRevision(2);
  assert.equal(await fromPeer(), TC_ACT_SHOT, 'revoked');

  // Timeout 4 s: longer than the refresh granularity (256 jiffies, 2.56 s at HZ 100) plus the send interval.
  const otherSeconds = 4;
  const gc = await ConntrackGc.start({ loader, intervalMs: 0, timeouts: { tcpSeconds: 3600, tcpClosingSeconds: 2, otherSeconds }, log: () => {} });
  const keepSendingUntil = performance.now() + (otherSeconds + 2) * 1000;
  for (let i = 0; performance.now() < keepSendingUntil; i++) {
    // The two sides take turns: either side alone must keep the flow cut.
    assert.equal(await (i % 4 < 2 ? fromPeer() : fromPod()), TC_ACT_SHOT, `packet ${i} of the revoked flow is dropped`);
    const pass = await gc.runOnce();
    assert.equal(pass.deleted, 0, `the revoked entry is not collected while packets keep coming (pass ${i})`);
    await sleep(400);
  }
  const [entry] = await entries();
  assert.equal(entry?.revoked, 1, 'the entry is still there, revoked');
  assert.equal(await fromPod(), TC_ACT_SHOT, "the pod's packet does not reopen the flow the other way");

  // Both sides silent for the whole timeout: collected, and uncounted.
  await sleep((otherSeconds + 3) * 1000);
  assert.deepEqual(await gc.runOnce(), { scanned: 1, deleted: 1 });
  assert.deepEqual(await entries(), []);
  assert.deepEqual(await budget(), new Map([[0, 0], [1, 0]]), 'the device and node counts are back to 0');
  await gc.stop();
});
