// Flow events from the real endpoint programs (bpf/lib/flows.h), read the
// way the agent reads them: palisade-flow-reader on the pinned ring buffer,
// decoded by flow-records.ts. Packets are run with BPF_PROG_TEST_RUN; each
// check waits for the events the packets must have written, and that no
// other event came.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CT_FORGET_PROGRAM,
  CT_REVOKED,
  ct4Key,
  ctValue,
  datapathConfig,
  DIRECTION,
  dropAgg,
  ENDPOINT_FLAG,
  endpointInfo,
  FLOW_FLAG,
  FLOW_TYPE,
  policyKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  REASON,
  u32Key,
  type FlowEvent,
} from './abi.ts';
import { planFrontends } from '../agent/datapath-plan.ts';
import { FlowReader } from './flow-reader.ts';
import type { Loader } from './loader-client.ts';
import { ipv4Packet, TCP_ACK, TCP_SYN, type PacketSpec } from './packet.ts';
import { clearMaps, putIdentities, putTestEndpoint, scratchDatapath, TEST_IFINDEX, type ScratchDatapath } from './scratch-datapath.ts';

const POD = '10.0.1.5';
const POD_ID = 300;
const PEER = '10.0.2.9';
const PEER_ID = 400;
const STRANGER = '10.0.3.9';
const STRANGER_ID = 500;
const ALLOW_RULE = 11;
const DEFAULT_IN = 901;
const DEFAULT_OUT = 902;
const TCP_FIN = 0x01;

let datapath: ScratchDatapath;
let loader: Loader;
let reader: FlowReader;
const received: FlowEvent[] = [];
let malformed = 0;

before(async () => {
  // Connections report their counts every ~2 ms here (the default is a minute).
  datapath = await scratchDatapath('flows', { globals: { hostReachesPods: true, flowUpdateSeconds: 0.002 } });
  loader = datapath.loader;
  reader = new FlowReader({ ringPath: `${datapath.pinDir}/pal_flows`, onEvents: (events, bad) => (received.push(...events), (malformed += bad)) });
});

after(async () => {
  await reader?.stop();
  await datapath?.dispose();
});

/** The pod: ingress enforced, allowing PEER on TCP 80 (rule 11); egress not enforced. */
beforeEach(async () => {
  await clearMaps(loader, ['pal_ct4', 'pal_ct_budget', 'pal_policy', 'pal_endpoints', 'pal_ipcache4', 'pal_drop_agg']);
  await putIdentities(loader, [[POD, POD_ID], [PEER, PEER_ID], [STRANGER, STRANGER_ID]]);
  await putTestEndpoint(loader, { endpointId: 7, identity: POD_ID, flags: ENDPOINT_FLAG.INGRESS_ENFORCED, ingressDefaultRule: DEFAULT_IN, egressDefaultRule: DEFAULT_OUT, ipv4: POD });
  const key = (protocol: number, dport: number) => policyKey.encode({ endpointId: 7, identity: PEER_ID, direction: DIRECTION.INGRESS, protocol, dport });
  await loader.update('pal_policy', [
    { key: key(0, 0), value: policyValue.encode({ ruleId: 0, flags: POLICY_FLAG.TCP_PORTS }) },
    { key: key(PROTOCOL.TCP, 80), value: policyValue.encode({ ruleId: ALLOW_RULE, flags: 0 }) },
  ]);
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: 1, flags: 0 }) }]);
  await settle();
  received.length = 0;
});

async function run(program: 'pal_from_pod' | 'pal_to_pod', spec: PacketSpec): Promise<void> {
  await loader.testRun(program, ipv4Packet(spec));
}

/** Waits until the reader has delivered at least `n` events since the last check (and a little more, for strays); returns them. */
async function events(n: number): Promise<FlowEvent[]> {
  for (let waited = 0; received.length < n && waited < 2000; waited += 10) await sleep(10);
  await sleep(60);
  return received.splice(0);
}

async function settle(): Promise<void> {
  await sleep(80);
}

const brief = (e: FlowEvent) => ({
  type: e.type, reason: e.reason, direction: e.direction, saddr: e.saddr, daddr: e.daddr, sport: e.sport, dport: e.dport,
  src: e.srcIdentity, dst: e.dstIdentity, rule: e.ruleId, flags: e.flags, packets: Number(e.packets),
});

test('an allowed new connection writes one NEW event with its tuple, identities and rule; its established packets only their periodic UPDATE', async () => {
  const t0 = Date.now();
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40000, dport: 80, tcpFlags: TCP_SYN });
  for (let i = 0; i < 5; i++) await run('pal_from_pod', { saddr: POD, daddr: PEER, protocol: 'TCP', sport: 80, dport: 40000, tcpFlags: TCP_ACK });
  const all = await events(1);
  // This datapath reports live connections every ~2 ms: the replies may carry UPDATEs, nothing else.
  const seen = all.filter((e) => e.type !== FLOW_TYPE.UPDATE);
  assert.ok(all.filter((e) => e.type === FLOW_TYPE.UPDATE).every((e) => e.reason === REASON.ALLOW_REPLY && e.saddr === PEER && e.sport === 40000));
  assert.deepEqual(seen.map(brief), [{
    type: FLOW_TYPE.NEW, reason: REASON.ALLOW_POLICY, direction: DIRECTION.INGRESS, saddr: PEER, daddr: POD, sport: 40000, dport: 80,
    src: PEER_ID, dst: POD_ID, rule: ALLOW_RULE, flags: 0, packets: 1,
  }]);
  assert.equal(seen[0]!.tcpFlags, TCP_SYN);
  const ms = Number(seen[0]!.timeNs / 1_000_000n);
  assert.ok(ms >= t0 - 1000 && ms <= Date.now() + 1000, `the reader gives Unix time: ${ms} vs ${t0}`);
});

test('a connection\'s FIN writes its END with the packets and bytes of both ways, and an UPDATE comes for a connection that lives on', async () => {
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40001, dport: 80, tcpFlags: TCP_SYN });
  await events(1);
  await sleep(25); // more than the ~2 ms update interval of this datapath, on the coarse clock (a tick is 1 to 10 ms)
  await run('pal_from_pod', { saddr: POD, daddr: PEER, protocol: 'TCP', sport: 80, dport: 40001, tcpFlags: TCP_ACK });
  const update = await events(1);
  assert.deepEqual(update.map((e) => [e.type, Number(e.packets), e.direction, e.saddr]), [[FLOW_TYPE.UPDATE, 2, DIRECTION.INGRESS, PEER]]);
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40001, dport: 80, tcpFlags: TCP_ACK });
  await run('pal_from_pod', { saddr: POD, daddr: PEER, protocol: 'TCP', sport: 80, dport: 40001, tcpFlags: TCP_ACK | TCP_FIN });
  const end = (await events(1)).filter((e) => e.type !== FLOW_TYPE.UPDATE);
  assert.deepEqual(end.map(brief), [{
    type: FLOW_TYPE.END, reason: REASON.ALLOW_REPLY, direction: DIRECTION.INGRESS, saddr: PEER, daddr: POD, sport: 40001, dport: 80, // ended by the pod's FIN
    src: PEER_ID, dst: POD_ID, rule: ALLOW_RULE, flags: 0, packets: 4, // the SYN that opened it and three more
  }]);
  assert.equal(end[0]!.bytes, BigInt(4 * ipv4Packet({ saddr: PEER, daddr: POD, protocol: 'TCP', sport: 1, dport: 1 }).length));
});

test('a default-deny drop names the default rule; a flood of one kind is one event carrying its running total, the rest counted in pal_drop_agg', async () => {
  for (let i = 0; i < 50; i++) await run('pal_to_pod', { saddr: STRANGER, daddr: POD, protocol: 'TCP', sport: 41000 + i, dport: 80, tcpFlags: TCP_SYN });
  const seen = await events(1);
  assert.deepEqual(seen.map(brief), [{
    type: FLOW_TYPE.DROP, reason: REASON.DROP_POLICY, direction: DIRECTION.INGRESS, saddr: STRANGER, daddr: POD, sport: 41000, dport: 80,
    src: STRANGER_ID, dst: POD_ID, rule: DEFAULT_IN, flags: FLOW_FLAG.DEFAULT_DENY | FLOW_FLAG.RUNNING_TOTAL, packets: 1,
  }]);
  const [agg] = await loader.dump('pal_drop_agg');
  assert.equal(dropAgg.decode(agg!.value).total, 50n, 'every drop is counted under its key');
  // Another kind of drop is not held back by the flood.
  await run('pal_from_pod', { saddr: STRANGER, daddr: PEER, protocol: 'TCP', sport: 42000, dport: 80, tcpFlags: TCP_SYN });
  assert.deepEqual((await events(1)).map((e) => [e.type, e.reason]), [[FLOW_TYPE.DROP, REASON.DROP_SPOOFED]]);
});

test('a new connection in a direction no policy enforces is a NEW event too (PASS_UNSELECTED, no rule)', async () => {
  await run('pal_from_pod', { saddr: POD, daddr: STRANGER, protocol: 'UDP', sport: 5000, dport: 53 });
  assert.deepEqual((await events(1)).map(brief), [{
    type: FLOW_TYPE.NEW, reason: REASON.PASS_UNSELECTED, direction: DIRECTION.EGRESS, saddr: POD, daddr: STRANGER, sport: 5000, dport: 53,
    src: POD_ID, dst: STRANGER_ID, rule: 0, flags: 0, packets: 1,
  }]);
});

test('a connection collected idle writes its END (IDLE) with its counts', async () => {
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40002, dport: 80, tcpFlags: TCP_SYN });
  await run('pal_from_pod', { saddr: POD, daddr: PEER, protocol: 'TCP', sport: 80, dport: 40002, tcpFlags: TCP_ACK | 0x02 });
  await events(1);
  const [entry] = await loader.dump('pal_ct4');
  const header = Buffer.alloc(14);
  const record = Buffer.concat([entry!.key, u32Key.encode(ctValue.decode(entry!.value).lastSeen)]);
  assert.equal((await loader.testRun(CT_FORGET_PROGRAM, Buffer.concat([header, record]))).retval, 1);
  assert.equal(ct4Key.decode(entry!.key).peerAddr, PEER);
  assert.deepEqual((await events(1)).map((e) => [e.type, e.flags, Number(e.packets), e.saddr, e.daddr, e.ruleId]), [[FLOW_TYPE.END, FLOW_FLAG.IDLE, 2, PEER, POD, ALLOW_RULE]]);
});

test('a connection cut by a revocation writes a DROP_REVOKED event naming the default rule', async () => {
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40003, dport: 80, tcpFlags: TCP_SYN });
  await events(1);
  await clearMaps(loader, ['pal_policy']);
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: 2, flags: 0 }) }]);
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40003, dport: 80, tcpFlags: TCP_ACK });
  assert.deepEqual((await events(1)).map((e) => [e.type, e.reason, e.ruleId, e.flags & FLOW_FLAG.DEFAULT_DENY, e.saddr, e.sport]), [
    [FLOW_TYPE.DROP, REASON.DROP_REVOKED, DEFAULT_IN, FLOW_FLAG.DEFAULT_DENY, PEER, 40003],
  ]);
});

test('a deny rule\'s drop is DROP_POLICY_DENY naming the deny rule, no default deny; a connection a new deny rule cuts is DROP_REVOKED naming it too', async () => {
  const DENY_RULE = 77;
  const deny = (protocol: number, dport: number) => policyKey.encode({ endpointId: 7, identity: PEER_ID, direction: DIRECTION.INGRESS_DENY, protocol, dport });
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40004, dport: 80, tcpFlags: TCP_SYN });
  await events(1);
  // The deny lane: PEER on TCP 80 and 81, the endpoint's deny flag, a new revision.
  await loader.update('pal_policy', [
    { key: deny(0, 0), value: policyValue.encode({ ruleId: 0, flags: POLICY_FLAG.TCP_PORTS }) },
    { key: deny(PROTOCOL.TCP, 80), value: policyValue.encode({ ruleId: DENY_RULE, flags: 0 }) },
  ]);
  await putTestEndpoint(loader, { endpointId: 7, identity: POD_ID, flags: ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.INGRESS_DENY, ingressDefaultRule: DEFAULT_IN, egressDefaultRule: DEFAULT_OUT, ipv4: POD });
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: 2, flags: 0 }) }]);
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40005, dport: 80, tcpFlags: TCP_SYN });
  assert.deepEqual((await events(1)).map(brief), [{
    type: FLOW_TYPE.DROP, reason: REASON.DROP_POLICY_DENY, direction: DIRECTION.INGRESS, saddr: PEER, daddr: POD, sport: 40005, dport: 80,
    src: PEER_ID, dst: POD_ID, rule: DENY_RULE, flags: FLOW_FLAG.RUNNING_TOTAL, packets: 1,
  }]);
  await run('pal_to_pod', { saddr: PEER, daddr: POD, protocol: 'TCP', sport: 40004, dport: 80, tcpFlags: TCP_ACK });
  assert.deepEqual((await events(1)).map((e) => [e.type, e.reason, e.ruleId, e.flags & FLOW_FLAG.DEFAULT_DENY, e.sport]), [[FLOW_TYPE.DROP, REASON.DROP_REVOKED, DENY_RULE, 0, 40004]]);
  const [entry] = (await loader.dump('pal_ct4')).filter((e) => ct4Key.decode(e.key).peerPort === 40004);
  assert.deepEqual([ctValue.decode(entry!.value).revoked, ctValue.decode(entry!.value).ruleId], [CT_REVOKED.DENY, DENY_RULE]);
});

test('other drops are events too: a spoofed source, an ICMP error about no connection, a fragment without its first', async () => {
  await run('pal_from_pod', { saddr: STRANGER, daddr: PEER, protocol: 'UDP', sport: 7, dport: 7 });
  const icmp = ipv4Packet({ saddr: PEER, daddr: POD, protocol: 'TCP', sport: 1, dport: 1 });
  icmp[14 + 9] = 1; // protocol ICMP
  icmp[14 + 20] = 3; // destination unreachable, quoting: an IPv4 header and 8 bytes
  icmp[14 + 21] = 3;
  const quoted = ipv4Packet({ saddr: POD, daddr: PEER, protocol: 'UDP', sport: 5555, dport: 53 }).subarray(14, 14 + 28);
  const error = Buffer.concat([icmp.subarray(0, 14 + 28), quoted]);
  error.writeUInt16BE(error.length - 14, 14 + 2);
  await loader.testRun('pal_to_pod', error);
  const fragment = ipv4Packet({ saddr: PEER, daddr: POD, protocol: 'UDP', sport: 9, dport: 9 });
  fragment.writeUInt16BE(100, 14 + 6); // offset 800 bytes, a later fragment
  await loader.testRun('pal_to_pod', fragment);
  const seen = (await events(3)).map((e) => [e.type, e.reason]);
  assert.deepEqual(seen.sort(), [[FLOW_TYPE.DROP, REASON.DROP_SPOOFED], [FLOW_TYPE.DROP, REASON.DROP_ICMP_ERROR], [FLOW_TYPE.DROP, REASON.DROP_FRAGMENT]].sort());
});

test('a connection to a Service names its frontend: the flow goes to the backend, FLOW_FLAG.SERVICE with the ClusterIP', async () => {
  const lb = planFrontends([{ service: 's/web', ip: '10.96.0.10', port: 80, protocol: 'TCP', clientAffinity: false, backends: [{ ip: PEER, port: 8080 }] }], () => Infinity, []);
  for (const [map, entries] of lb) await loader.update(map, [...entries].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: Buffer.from(v, 'hex') })));
  try {
    await run('pal_from_pod', { saddr: POD, daddr: '10.96.0.10', protocol: 'TCP', sport: 41234, dport: 80, tcpFlags: TCP_SYN });
    assert.deepEqual((await events(1)).map((e) => [e.type, e.reason, e.daddr, e.dport, e.flags & FLOW_FLAG.SERVICE, e.natAddr, e.natPort]), [
      [FLOW_TYPE.NEW, REASON.PASS_UNSELECTED, PEER, 8080, FLOW_FLAG.SERVICE, '10.96.0.10', 80],
    ]);
  } finally {
    await clearMaps(loader, ['pal_lb4', 'pal_lb4_backends']);
  }
});

test('no record was malformed', () => {
  assert.equal(malformed, 0);
});

test('what a full ring cannot take is counted in pal_flow_lost by type: delivered + lost = written', async () => {
  const small = await scratchDatapath('flows-small', { globals: { hostReachesPods: true }, mapSizes: { pal_flows: 4096 } });
  try {
    const l = small.loader;
    await l.update('pal_endpoints', [{
      key: u32Key.encode(TEST_IFINDEX),
      value: endpointInfo.encode({ endpointId: 7, identity: POD_ID, flags: 0, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4: POD }),
    }]);
    const n = 300;
    for (let i = 0; i < n; i++) await l.testRun('pal_to_pod', ipv4Packet({ saddr: PEER, daddr: POD, protocol: 'UDP', sport: 10000 + i, dport: 53 }));
    const [lost] = (await l.dump('pal_flow_lost')).filter((e) => e.key.readUInt32LE(0) === FLOW_TYPE.NEW);
    let lostNew = 0n;
    for (let at = 0; at < lost!.value.length; at += 8) lostNew += lost!.value.readBigUInt64LE(at);
    const delivered: FlowEvent[] = [];
    const late = new FlowReader({ ringPath: `${small.pinDir}/pal_flows`, onEvents: (events) => delivered.push(...events) });
    for (let waited = 0; delivered.length + Number(lostNew) < n && waited < 2000; waited += 10) await sleep(10);
    await late.stop();
    assert.ok(lostNew > 0n, 'a 4 KiB ring cannot hold 300 events');
    assert.equal(delivered.length + Number(lostNew), n);
    assert.ok(delivered.every((e) => e.type === FLOW_TYPE.NEW && e.reason === REASON.PASS_UNSELECTED));
  } finally {
    await small.dispose();
  }
});
