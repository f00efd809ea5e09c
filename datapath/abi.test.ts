// datapath/abi.ts against the C it mirrors: byte-exact encodings, the
// constants and reason table of bpf/lib/*.h (read from the headers), and the
// struct layouts and map definitions of the built build/bpf/endpoint.bpf.o
// (read from its BTF through the loader; skipped until the object is built).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  CT_FORGET_BATCH,
  CT_REVOKED,
  DENY_FLAGS_SHIFT,
  DIRECTION,
  DNS_PORT,
  dnsProxy,
  dnsUpstream,
  DROP_FIRST,
  ENDPOINT_FLAG,
  FAMILY_IPV4,
  FLOW_FLAG,
  IDENTITY,
  jiffies64FromClock,
  MAPS,
  NAT_KIND,
  POLICY_FLAG,
  REASON,
  REASON_LIMIT,
  STRUCTS,
  cidrIdentity,
  ct4Key,
  ctForget,
  ctValue,
  dropAgg,
  dropAggKey,
  flowEvent,
  frag4Key,
  lb4Backend,
  lb4BackendKey,
  lb4Key,
  lb4Service,
  datapathConfig,
  endpointInfo,
  ipcacheKey,
  ipcacheValue,
  ipv4Key,
  isDrop,
  loadGlobals,
  metricsValue,
  policyCidrKey,
  policyPortKey,
  policyCidrValue,
  policyKey,
  policyValue,
  PROTOCOL,
  reasonName,
  sumMetrics,
  u32Key,
  type Codec,
} from './abi.ts';
import { Loader } from './loader-client.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const BPF_LIB = join(REPO, 'bpf/lib');
const ENDPOINT_OBJECT = join(REPO, 'build/bpf/endpoint.bpf.o');

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

test('the nodes are little-endian, as the u16/u32/u64 fields assume', () => {
  assert.equal(endianness(), 'LE');
});

interface EncodingRow {
  what: string;
  codec: Codec<unknown>;
  value: unknown;
  bytes: string;
}
/** A row whose value is type-checked against its codec. */
function encodes<V>(what: string, codec: Codec<V>, value: V, bytes: string): EncodingRow {
  return { what, codec, value, bytes };
}

// Each row: what it covers, the codec, a value, and its bytes as C lays them out.
const encodings: EncodingRow[] = [
  encodes(
    'ct_forget: a ct4_key, then last_seen in host order (struct ct_forget of conntrack.h)',
    ctForget,
    { key: Buffer.from('0a0000010a000002500000c911000000', 'hex'), lastSeen: 0x01020304 },
    '0a000001 0a000002 500000c9 11000000 04030201',
  ),
  encodes(
    'frag4_key: addresses and the IP id in network order, ifindex in host order',
    frag4Key,
    { saddr: '10.0.0.1', daddr: '10.0.0.2', ifindex: 5, id: 0x3412, protocol: 17 },
    '0a000001 0a000002 05000000 1234 11 00',
  ),
  encodes(
    'endpoint_info: u32s in host order, the pod address in network order',
    endpointInfo,
    { endpointId: 1, identity: 256, flags: 3, ingressDefaultRule: 7, egressDefaultRule: 0x01020304, ipv4: '10.200.1.5' },
    '01000000 00010000 03000000 07000000 04030201 0ac80105',
  ),
  encodes(
    'pal_endpoints / pal_config / pal_metrics key: a host-order u32',
    u32Key,
    0x11223344,
    '44332211',
  ),
  encodes(
    'pal_ipcache4 key: the address in network order',
    ipv4Key,
    '192.168.1.2',
    'c0a80102',
  ),
  encodes(
    'ipcache_value',
    ipcacheValue,
    { identity: 6, flags: 1 },
    '06000000 01000000',
  ),
  encodes(
    'ipcache_key: prefixlen counts family+pad (32) first; pad is zero; address in the first 4 of 16 bytes',
    ipcacheKey,
    '10.0.0.0/8',
    '28000000 02 000000 0a000000 00000000 00000000 00000000',
  ),
  encodes(
    'ipcache_key of a bare address is a /32 (prefixlen 64)',
    ipcacheKey,
    '10.1.2.3/32',
    '40000000 02 000000 0a010203 00000000 00000000 00000000',
  ),
  encodes(
    'policy_key: dport in host order, protocol and direction bytes',
    policyKey,
    { endpointId: 5, identity: 256, direction: DIRECTION.EGRESS, protocol: 6, dport: 8080 },
    '05000000 00010000 01 06 901f',
  ),
  encodes(
    'policy_key summary entry: protocol 0, port 0, class ANY',
    policyKey,
    { endpointId: 5, identity: IDENTITY.ANY, direction: DIRECTION.INGRESS, protocol: 0, dport: 0 },
    '05000000 00000000 00 00 0000',
  ),
  encodes(
    'policy_value',
    policyValue,
    { ruleId: 42, flags: POLICY_FLAG.TCP_PORTS | POLICY_FLAG.ALL },
    '2a000000 11000000',
  ),
  encodes(
    'policy_port_key: prefixlen counts 80 fixed bits, then the port (network order) as far as the block is aligned',
    policyPortKey,
    { endpointId: 9, identity: 400, direction: DIRECTION.EGRESS, protocol: PROTOCOL.TCP, port: 8192, portBits: 3 },
    '53000000 09000000 90010000 01 06 2000',
  ),
  encodes(
    'policy_cidr_key: prefixlen counts 64 fixed bits first',
    policyCidrKey,
    { endpointId: 9, direction: DIRECTION.INGRESS, cidr: '172.16.0.0/12' },
    '4c000000 09000000 00 02 0000 ac100000 00000000 00000000 00000000',
  ),
  encodes(
    'policy_cidr_value: a CIDR region identity',
    policyCidrValue,
    { identity: cidrIdentity(3) },
    '03000080',
  ),
  encodes(
    'ct4_key: addresses in network order, ports in host order, zero pad',
    ct4Key,
    { addr: '10.0.0.1', peerAddr: '10.0.0.2', port: 40000, peerPort: 80, protocol: 6 },
    '0a000001 0a000002 409c 5000 06 000000',
  ),
  encodes(
    'ct_value',
    ctValue,
    { revision: 2, ruleId: 3, lastSeen: 0x01020304, ifindex: 9, origin: 1, revoked: 1, closing: 1, nat: 2, natAddr: '10.96.0.10', natPort: 53, lastReport: 5, packets: 6n, bytes: 0x0102n },
    '02000000 03000000 04030201 09000000 01 01 01 02 0a60000a 3500 0000 05000000 0600000000000000 0201000000000000',
  ),
  encodes(
    'flow_event',
    flowEvent,
    {
      timeNs: 1n, packets: 2n, bytes: 3n, ifindex: 4, saddr: '10.0.1.5', daddr: '10.96.0.10', sport: 40000, dport: 80, srcIdentity: 300, dstIdentity: 400,
      ruleId: 0x01020304, natAddr: '10.96.0.10', natPort: 80, protocol: 6, direction: 1, type: 2, reason: 128, tcpFlags: 0x02, flags: 0x03,
    },
    '0100000000000000 0200000000000000 0300000000000000 04000000 0a000105 0a60000a 409c 5000 2c010000 90010000 04030201 0a60000a 5000 06 01 02 80 02 03',
  ),
  encodes('drop_agg_key', dropAggKey, { ifindex: 4, peer: '10.0.2.9', dport: 80, protocol: 6, reason: 128, direction: 0 }, '04000000 0a000209 5000 06 80 00 000000'),
  encodes('drop_agg', dropAgg, { total: 7n, lastEvent: 8n }, '0700000000000000 0800000000000000'),
  encodes('lb4_key', lb4Key, { addr: '10.96.0.10', port: 8080, protocol: 6 }, '0a60000a 901f 06 00'),
  encodes('lb4_service', lb4Service, { count: 3, flags: 1 }, '03000000 01000000'),
  encodes('lb4_backend_key', lb4BackendKey, { addr: '10.96.0.10', port: 53, protocol: 17, slot: 2 }, '0a60000a 3500 11 00 02000000'),
  encodes('lb4_backend', lb4Backend, { addr: '10.0.1.5', port: 80 }, '0a000105 5000 0000'),
  encodes('dns_upstream: the proxy port in network order, zero pad', dnsUpstream, { proxyPort: 5300 }, '14b4 0000'),
  encodes(
    'dns_proxy: the address in network order, zero pad, alive_until a host-order u64 of jiffies',
    dnsProxy,
    { addr: '10.0.0.1', aliveUntil: 0x1_0000_0002n },
    '0a000001 00000000 0200000001000000',
  ),
  encodes(
    'datapath_config',
    datapathConfig,
    { policyRevision: 77, flags: 0 },
    '4d000000 00000000',
  ),
  encodes(
    'metrics_value: one CPU',
    metricsValue,
    { packets: 3n, bytes: 180n },
    '0300000000000000 b400000000000000',
  ),
];

for (const row of encodings) {
  test(`encodes ${row.what}`, () => {
    const bytes = row.codec.encode(row.value);
    assert.equal(bytes.toString('hex'), hex(row.bytes).toString('hex'));
    assert.equal(bytes.length, row.codec.size);
    assert.deepEqual(row.codec.decode(bytes), row.value);
  });
}

test('CIDR keys clear host bits, so one prefix has one key', () => {
  assert.deepEqual(ipcacheKey.encode('10.1.2.3/8'), ipcacheKey.encode('10.0.0.0/8'));
  assert.equal(ipcacheKey.decode(ipcacheKey.encode('10.1.2.3/8')), '10.0.0.0/8');
  assert.equal(ipcacheKey.decode(ipcacheKey.encode('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(ipcacheKey.decode(ipcacheKey.encode('10.1.2.3')), '10.1.2.3/32');
});

// Each row: an input a codec must refuse rather than encode wrongly.
const refused: Array<[string, () => unknown]> = [
  ['an IPv6 CIDR (not in the datapath yet)', () => ipcacheKey.encode('fd00::/8')],
  ['a prefix longer than 32', () => ipcacheKey.encode('10.0.0.0/33')],
  ['a non-numeric prefix', () => ipcacheKey.encode('10.0.0.0/8x')],
  ['a malformed address', () => ipv4Key.encode('10.0.0')],
  ['a port that does not fit a u16', () => policyKey.encode({ endpointId: 1, identity: 0, direction: 0, protocol: 6, dport: 65536 })],
  ['a negative identity', () => ipcacheValue.encode({ identity: -1, flags: 0 })],
  ['a value of the wrong size', () => endpointInfo.decode(Buffer.alloc(23))],
  ['a CIDR region index of 2^31', () => cidrIdentity(2 ** 31)],
];
for (const [what, call] of refused) {
  test(`refuses ${what}`, () => assert.throws(call, RangeError));
}

test("pal_clock's packet: the 64-bit jiffies in host order", () => {
  const data = Buffer.alloc(64);
  data.writeBigUInt64LE(0x1_2345_6789n);
  assert.equal(jiffies64FromClock(data), 0x1_2345_6789n);
  assert.throws(() => jiffies64FromClock(Buffer.alloc(7)), RangeError);
});

test('per-CPU metrics are summed over every CPU', () => {
  const perCpu = Buffer.concat([metricsValue.encode({ packets: 1n, bytes: 60n }), metricsValue.encode({ packets: 2n, bytes: 1500n })]);
  assert.deepEqual(sumMetrics(perCpu), { packets: 3n, bytes: 1560n });
  assert.throws(() => sumMetrics(Buffer.alloc(17)), RangeError);
});

test('reason helpers', () => {
  assert.equal(reasonName(128), 'DROP_POLICY');
  assert.equal(reasonName(140), 'DROP_POLICY_DENY');
  assert.equal(isDrop(REASON.DROP_POLICY_DENY), true);
  assert.equal(reasonName(6), 'ALLOW_RELATED');
  assert.equal(reasonName(7), 'PASS_DNS_REDIRECT');
  assert.equal(isDrop(REASON.PASS_DNS_REDIRECT), false);
  assert.equal(isDrop(REASON.DROP_DNS_NO_PROXY), true);
  assert.equal(reasonName(8), undefined);
  assert.equal(isDrop(REASON.DROP_REVOKED), true);
  assert.equal(isDrop(REASON.ALLOW_REPLY), false);
});

describe('constants equal the #defines of bpf/lib/*.h', () => {
  /** PAL_* #defines whose value is a literal, a shift or a sum of literals. */
  async function defines(): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const file of (await readdir(BPF_LIB)).filter((f) => f.endsWith('.h'))) {
      const text = await readFile(join(BPF_LIB, file), 'utf8');
      for (const [, name, expr] of text.matchAll(/^#define[ \t]+(PAL_\w+)[ \t]+(.*?)[ \t]*(?:\/\*.*)?$/gm)) {
        const m = expr!.replace(/(\d+)u\b/g, '$1').match(/^\(?\s*(\d+)\s*(?:(<<|\+)\s*(\d+))?\s*\)?$/);
        if (!m) continue;
        const [a, op, b] = [Number(m[1]), m[2], Number(m[3])];
        found.set(name!, op === '<<' ? a * 2 ** b : op === '+' ? a + b : a);
      }
    }
    return found;
  }

  /** Every C name with the prefix is mirrored with the same value, and nothing else is. */
  function assertMirrors(c: Map<string, number>, prefix: string, ts: Record<string, number>, cOnly: string[] = []) {
    const fromC = [...c].filter(([name]) => name.startsWith(prefix) && !cOnly.includes(name));
    assert.deepEqual(Object.fromEntries(fromC.map(([name, v]) => [name.slice(prefix.length), v])), ts);
  }

  test('reasons: the append-only table of reasons.h', async () => {
    const c = await defines();
    const reasons = [...c].filter(([name]) => /^PAL_(ALLOW|PASS|DROP)_/.test(name) && name !== 'PAL_DROP_FIRST');
    assert.deepEqual(Object.fromEntries(reasons.map(([name, v]) => [name.slice(4), v])), REASON);
    assert.equal(DROP_FIRST, c.get('PAL_DROP_FIRST'));
    assert.equal(REASON_LIMIT, c.get('PAL_METRICS_MAX'));
    for (const code of Object.values(REASON)) assert.ok(code > 0 && code < REASON_LIMIT);
  });

  test('conntrack: the batch of pal_ct_forget', async () => {
    const c = await defines();
    assert.equal(CT_FORGET_BATCH, c.get('PAL_CT_FORGET_BATCH'));
    assert.deepEqual(CT_REVOKED, { DEFAULT: c.get('PAL_CT_REVOKED_DEFAULT'), DENY: c.get('PAL_CT_REVOKED_DENY') });
    assertMirrors(c, 'PAL_NAT_', NAT_KIND);
  });

  test('flow event flags and the DNS port', async () => {
    const c = await defines();
    assertMirrors(c, 'PAL_FLOWF_', FLOW_FLAG);
    assert.equal(DNS_PORT, c.get('PAL_DNS_PORT'));
  });

  test('policy summary flags, endpoint flags, directions', async () => {
    const c = await defines();
    assertMirrors(c, 'PAL_POL_', POLICY_FLAG);
    assertMirrors(c, 'PAL_EP_', ENDPOINT_FLAG);
    assertMirrors(c, 'PAL_DIR_', DIRECTION);
    assert.equal(DENY_FLAGS_SHIFT, c.get('PAL_DENY_FLAGS_SHIFT'));
    // The deny lane is the allow lane, shifted.
    for (const [name, bit] of Object.entries(ENDPOINT_FLAG)) {
      const allow = name.replace('_DENY_', '_').replace(/_DENY$/, '_ENFORCED');
      if (allow !== name) assert.equal(bit, ENDPOINT_FLAG[allow as keyof typeof ENDPOINT_FLAG] << DENY_FLAGS_SHIFT, name);
    }
  });

  test('identities, family and the fixed bits of LPM prefixes', async () => {
    const c = await defines();
    const { POD_MAX: _max, ...inC } = IDENTITY;
    assertMirrors(c, 'PAL_ID_', inC);
    assert.equal(FAMILY_IPV4, c.get('PAL_AF_INET'));
    assert.equal(ipcacheKey.encode('10.0.0.1').readUInt32LE(0), c.get('PAL_IPCACHE_V4_FULL'));
    const full = policyCidrKey.encode({ endpointId: 1, direction: 0, cidr: '10.0.0.1' });
    assert.equal(full.readUInt32LE(0), c.get('PAL_POLICY_CIDR_V4_FULL'));
  });
});

describe('layouts equal the BTF of build/bpf/endpoint.bpf.o', { skip: !existsSync(ENDPOINT_OBJECT) && `${ENDPOINT_OBJECT} is not built yet (make -s all)` }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
  });

  async function loaded() {
    const bpffs = await mkdtemp(join(tmpdir(), 'pal-abi-test-'));
    cleanups.push(() => rm(bpffs, { recursive: true, force: true }));
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    cleanups.push(() => execa('umount', [bpffs]));
    const loader = await Loader.start({ onLog: () => {} });
    cleanups.push(() => loader.close());
    const object = await loader.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals({ hostReachesPods: true }) });
    return { loader, object };
  }

  test('every struct: size, member names, offsets and sizes', async () => {
    const { loader } = await loaded();
    const btf = await loader.layout(STRUCTS.map((s) => s.name));
    for (const spec of STRUCTS) assert.deepEqual(btf.get(spec.name), spec, `struct ${spec.name}`);
  });

  test('every map: type, key size and value size', async () => {
    const { object } = await loaded();
    for (const [name, spec] of Object.entries(MAPS)) {
      const map = object.maps.find((m) => m.name === name);
      assert.deepEqual(
        map && { type: map.type, keySize: map.keySize, valueSize: map.valueSize },
        { type: spec.type, keySize: spec.key.size, valueSize: spec.value.size },
        `map ${name}`,
      );
    }
  });
});
