// Service translation in the kernel (bpf/lib/lb.h, docs/adr/0005-service-egress.md):
// the real endpoint programs, run by BPF_PROG_TEST_RUN on maps written from
// planFrontends, translate a pod's packet to a Service frontend into one of its
// backends, judge the pod's egress policy against that backend, and translate
// the backend's replies back. Each check reads the packet the program let out
// (addresses, ports, valid checksums), the reason it was counted under, and
// the conntrack entries it left.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import {
  ct4Key,
  ctValue,
  datapathConfig,
  DIRECTION,
  ENDPOINT_FLAG,
  NAT_KIND,
  policyKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  REASON,
  sumMetrics,
  u32Key,
} from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { ipv4Packet, TCP_ACK, TCP_SYN, type PacketSpec } from '../datapath/packet.ts';
import { clearMaps, putIdentities, putTestEndpoint, scratchDatapath, type ScratchDatapath } from '../datapath/scratch-datapath.ts';
import { planFrontends, type LbFrontend } from './datapath-plan.ts';

const CLIENT = '10.0.1.5';
const CLIENT_ID = 300;
const SERVER_A = '10.0.2.9';
const SERVER_B = '10.0.3.9';
const SERVER_ID = 400;
const OTHER = '10.0.4.9';
const OTHER_ID = 500;
const CLUSTER_IP = '10.96.0.10';
const EMPTY_IP = '10.96.0.11';
const SELF_IP = '10.96.0.12';
const TWO_IP = '10.96.0.13';

let datapath: ScratchDatapath;
let loader: Loader;
let revision = 1;

before(async () => {
  datapath = await scratchDatapath('services');
  loader = datapath.loader;
});

after(async () => {
  await datapath?.dispose();
});

const frontends: LbFrontend[] = [
  { service: 's/web', ip: CLUSTER_IP, port: 80, protocol: 'TCP', clientAffinity: false, backends: [{ ip: SERVER_A, port: 8080 }] },
  { service: 's/web', ip: CLUSTER_IP, port: 53, protocol: 'UDP', clientAffinity: false, backends: [{ ip: SERVER_A, port: 5353 }] },
  { service: 's/empty', ip: EMPTY_IP, port: 80, protocol: 'TCP', clientAffinity: false, backends: [] },
  { service: 's/self', ip: SELF_IP, port: 80, protocol: 'TCP', clientAffinity: false, backends: [{ ip: CLIENT, port: 8080 }] },
  { service: 's/two', ip: TWO_IP, port: 80, protocol: 'TCP', clientAffinity: false, backends: [{ ip: SERVER_A, port: 8080 }, { ip: SERVER_B, port: 8080 }, { ip: CLIENT, port: 8080 }] },
];

/** Egress (and ingress) enforced for the client; its egress allows `allowed` on TCP 8080 and UDP 5353. */
async function seed(allowed: number): Promise<void> {
  await clearMaps(loader, ['pal_ct4', 'pal_ct_budget', 'pal_policy', 'pal_endpoints', 'pal_ipcache4', 'pal_lb4', 'pal_lb4_backends']);
  const hex = (h: string) => Buffer.from(h, 'hex');
  const problems: Array<{ endpoint: string; message: string }> = [];
  const lb = planFrontends(frontends, () => Infinity, problems);
  assert.deepEqual(problems, []);
  for (const [map, entries] of lb) {
    await loader.update(map, [...entries].map(([key, value]) => ({ key: hex(key), value: hex(value) })));
  }
  await putIdentities(loader, [[CLIENT, CLIENT_ID], [SERVER_A, SERVER_ID], [SERVER_B, SERVER_ID], [OTHER, OTHER_ID]]);
  const flags = ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED;
  await putTestEndpoint(loader, { endpointId: 7, identity: CLIENT_ID, flags, ingressDefaultRule: 901, egressDefaultRule: 902, ipv4: CLIENT });
  await writeEgress(allowed);
}

async function writeEgress(allowed: number): Promise<void> {
  for (const old of await loader.dump('pal_policy')) await loader.delete('pal_policy', [old.key]);
  const key = (protocol: number, dport: number) => policyKey.encode({ endpointId: 7, identity: allowed, direction: DIRECTION.EGRESS, protocol, dport });
  await loader.update('pal_policy', [
    { key: key(0, 0), value: policyValue.encode({ ruleId: 0, flags: POLICY_FLAG.TCP_PORTS | POLICY_FLAG.UDP_PORTS }) },
    { key: key(PROTOCOL.TCP, 8080), value: policyValue.encode({ ruleId: 11, flags: 0 }) },
    { key: key(PROTOCOL.UDP, 5353), value: policyValue.encode({ ruleId: 12, flags: 0 }) },
  ]);
  revision++;
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: revision, flags: 0 }) }]);
}

beforeEach(async () => {
  await seed(SERVER_ID);
});

// ---- packets with real checksums (packet.ts leaves them zero)

function sum16(bytes: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  if (bytes.length % 2) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The transport checksum over the pseudo-header and segment of an Ethernet+IPv4 frame: 0xffff when valid. */
function transportSum(frame: Buffer): number {
  const ip = frame.subarray(14);
  const segment = ip.subarray(20, ip.readUInt16BE(2));
  const pseudo = Buffer.alloc(12);
  ip.copy(pseudo, 0, 12, 20);
  pseudo[9] = ip[9]!;
  pseudo.writeUInt16BE(segment.length, 10);
  return sum16(segment, sum16(pseudo));
}

/** A frame with valid IPv4 and transport checksums (and 8 bytes of payload, so the sums cover data). */
function packet(spec: PacketSpec & { zeroUdpChecksum?: boolean }): Buffer {
  const bare = ipv4Packet(spec);
  const frame = Buffer.concat([bare, Buffer.from('palisade')]);
  const ip = frame.subarray(14);
  ip.writeUInt16BE(ip.readUInt16BE(2) + 8, 2);
  if (spec.protocol === 'UDP') ip.writeUInt16BE(16, 24);
  ip.writeUInt16BE(~sum16(ip.subarray(0, 20)) & 0xffff, 10);
  const csumAt = 14 + 20 + (spec.protocol === 'TCP' ? 16 : 6);
  if (!spec.zeroUdpChecksum) frame.writeUInt16BE(~transportSum(frame) & 0xffff, csumAt);
  return frame;
}

interface Seen {
  reason: string;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  ipChecksumOk: boolean;
  transportChecksum: number;
}

const address = (b: Buffer, at: number) => [...b.subarray(at, at + 4)].join('.');

/** Runs one frame through a hook: the reason it was counted under and the frame it let out. */
async function run(program: 'pal_from_pod' | 'pal_to_pod', frame: Buffer): Promise<Seen> {
  const before = await counts();
  const result = await loader.testRun(program, frame);
  const after = await counts();
  const reasons = Object.entries(REASON).filter(([, code]) => (after.get(code) ?? 0n) !== (before.get(code) ?? 0n)).map(([name]) => name);
  assert.equal(reasons.length, 1, `counted under exactly one reason: ${reasons.join(', ')}`);
  const out = result.data;
  const ip = out.subarray(14);
  return {
    reason: reasons[0]!,
    saddr: address(ip, 12),
    daddr: address(ip, 16),
    sport: ip.readUInt16BE(20),
    dport: ip.readUInt16BE(22),
    ipChecksumOk: sum16(ip.subarray(0, 20)) === 0xffff,
    transportChecksum: transportSum(out),
  };
}

async function counts(): Promise<Map<number, bigint>> {
  return new Map((await loader.dump('pal_metrics')).map((e) => [e.key.readUInt32LE(0), sumMetrics(e.value).packets]));
}

async function conntrack(): Promise<string[]> {
  const kinds = ['', 'SERVICE', 'REVERSE'];
  return (await loader.dump('pal_ct4'))
    .map((e) => ({ k: ct4Key.decode(e.key), v: ctValue.decode(e.value) }))
    .map(({ k, v }) => `${k.addr}:${k.port} ${k.peerAddr}:${k.peerPort}${v.nat ? ` ${kinds[v.nat]} ${v.natAddr}:${v.natPort}` : ''}${v.revoked ? ' revoked' : ''}`)
    .sort();
}

test('a SYN to a ClusterIP goes out to the backend, judged by the egress rule for the backend, checksums valid; the reply comes back from the ClusterIP', async () => {
  const out = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40000, dport: 80, tcpFlags: TCP_SYN }));
  assert.deepEqual(out, { reason: 'ALLOW_POLICY', saddr: CLIENT, daddr: SERVER_A, sport: 40000, dport: 8080, ipChecksumOk: true, transportChecksum: 0xffff });
  assert.deepEqual(await conntrack(), [
    `${CLIENT}:40000 ${SERVER_A}:8080 REVERSE ${CLUSTER_IP}:80`,
    `${CLIENT}:40000 ${CLUSTER_IP}:80 SERVICE ${SERVER_A}:8080`,
  ]);
  const reply = await run('pal_to_pod', packet({ saddr: SERVER_A, daddr: CLIENT, protocol: 'TCP', sport: 8080, dport: 40000, tcpFlags: TCP_SYN | TCP_ACK }));
  assert.deepEqual(reply, { reason: 'ALLOW_REPLY', saddr: CLUSTER_IP, daddr: CLIENT, sport: 80, dport: 40000, ipChecksumOk: true, transportChecksum: 0xffff });
  const next = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40000, dport: 80, tcpFlags: TCP_ACK }));
  assert.deepEqual([next.reason, next.daddr, next.dport], ['ALLOW_ESTABLISHED', SERVER_A, 8080]);
});

test('UDP to a ClusterIP is translated both ways; a zero (absent) UDP checksum stays zero', async () => {
  const out = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'UDP', sport: 41000, dport: 53 }));
  assert.deepEqual([out.reason, out.daddr, out.dport, out.ipChecksumOk, out.transportChecksum], ['ALLOW_POLICY', SERVER_A, 5353, true, 0xffff]);
  const reply = await run('pal_to_pod', packet({ saddr: SERVER_A, daddr: CLIENT, protocol: 'UDP', sport: 5353, dport: 41000, zeroUdpChecksum: true }));
  assert.deepEqual([reply.reason, reply.saddr, reply.sport, reply.ipChecksumOk], ['ALLOW_REPLY', CLUSTER_IP, 53, true]);
  const frame = packet({ saddr: SERVER_A, daddr: CLIENT, protocol: 'UDP', sport: 5353, dport: 41000, zeroUdpChecksum: true });
  const raw = await loader.testRun('pal_to_pod', frame);
  assert.equal(raw.data.readUInt16BE(14 + 20 + 6), 0, 'no checksum was invented');
});

test('egress to a ClusterIP is denied when the policy does not allow its backend, whatever it allows', async () => {
  await writeEgress(OTHER_ID);
  const out = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40001, dport: 80, tcpFlags: TCP_SYN }));
  assert.equal(out.reason, 'DROP_POLICY');
  assert.deepEqual(await conntrack(), []);
  // The same policy allows the other pod directly: the verdict is the backend's, not the frontend's.
  const direct = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: OTHER, protocol: 'TCP', sport: 40001, dport: 8080, tcpFlags: TCP_SYN }));
  assert.equal(direct.reason, 'ALLOW_POLICY');
});

test('revoking the backend cuts an established Service connection both ways', async () => {
  await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40002, dport: 80, tcpFlags: TCP_SYN }));
  await writeEgress(OTHER_ID);
  const forward = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40002, dport: 80, tcpFlags: TCP_ACK }));
  assert.equal(forward.reason, 'DROP_REVOKED');
  const reply = await run('pal_to_pod', packet({ saddr: SERVER_A, daddr: CLIENT, protocol: 'TCP', sport: 8080, dport: 40002, tcpFlags: TCP_ACK }));
  assert.equal(reply.reason, 'DROP_REVOKED');
  await writeEgress(SERVER_ID);
  const again = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40002, dport: 80, tcpFlags: TCP_ACK }));
  assert.deepEqual([again.reason, again.daddr], ['ALLOW_ESTABLISHED', SERVER_A]);
});

test('a frontend without backends drops, never passes untranslated', async () => {
  const out = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: EMPTY_IP, protocol: 'TCP', sport: 40003, dport: 80, tcpFlags: TCP_SYN }));
  assert.equal(out.reason, 'DROP_NO_BACKEND');
});

test('connections spread over the backends, each keeps its own, and the client is never its own backend while another exists', async () => {
  const chosen = new Map<string, number>();
  for (let sport = 42000; sport < 42060; sport++) {
    const out = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: TWO_IP, protocol: 'TCP', sport, dport: 80, tcpFlags: TCP_SYN }));
    assert.equal(out.reason, 'ALLOW_POLICY');
    chosen.set(out.daddr, (chosen.get(out.daddr) ?? 0) + 1);
    const again = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: TWO_IP, protocol: 'TCP', sport, dport: 80, tcpFlags: TCP_ACK }));
    assert.equal(again.daddr, out.daddr, 'a connection stays on its backend');
  }
  assert.deepEqual([...chosen.keys()].sort(), [SERVER_A, SERVER_B]);
  assert.ok(Math.min(...chosen.values()) >= 10, `spread: ${JSON.stringify([...chosen])}`);
});

test('a client that is its Service\'s only backend is left to kube-proxy, untranslated and judged as before', async () => {
  const out = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: SELF_IP, protocol: 'TCP', sport: 40004, dport: 80, tcpFlags: TCP_SYN }));
  assert.deepEqual([out.reason, out.daddr, out.dport], ['DROP_POLICY', SELF_IP, 80]); // the ClusterIP is world, which the policy does not allow
});

test('a packet from the ClusterIP itself is no reply of the Service connection', async () => {
  await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40005, dport: 80, tcpFlags: TCP_SYN }));
  const spoofed = await run('pal_to_pod', packet({ saddr: CLUSTER_IP, daddr: CLIENT, protocol: 'TCP', sport: 80, dport: 40005, tcpFlags: TCP_ACK }));
  assert.equal(spoofed.reason, 'DROP_POLICY');
});

test('a direct packet on the translated tuple does not ride the Service connection\'s entry', async () => {
  await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40006, dport: 80, tcpFlags: TCP_SYN }));
  await writeEgress(OTHER_ID);
  await run('pal_from_pod', packet({ saddr: CLIENT, daddr: CLUSTER_IP, protocol: 'TCP', sport: 40006, dport: 80, tcpFlags: TCP_ACK })); // revokes the entry
  const direct = await run('pal_from_pod', packet({ saddr: CLIENT, daddr: SERVER_A, protocol: 'TCP', sport: 40006, dport: 8080, tcpFlags: TCP_ACK }));
  assert.equal(direct.reason, 'DROP_POLICY', 'judged as a new direct connection to a pod the policy no longer allows');
});
