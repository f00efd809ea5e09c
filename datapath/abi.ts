// THE TypeScript mirror of the datapath's C ABI: the structs, map names,
// constants and reason table of bpf/lib/*.h (see docs/adr/0001-datapath-maps.md).
// It MUST stay in sync with those headers. datapath/abi.test.ts checks every
// struct layout here against the BTF of build/bpf/endpoint.bpf.o, and every
// map's type and key/value sizes against the loaded object.
//
// Byte order: integer fields are little-endian (the host order of the nodes
// we run on, x86-64 and arm64; the test asserts it); IPv4 addresses are in
// network order (the bytes as written, 10.0.0.1 = 0a 00 00 01); ports in keys
// are in host order. Padding is written as zeroes.
import { isIPv4 } from 'node:net';

/** One member as C lays it out: the shape LAYOUT reports from BTF. */
export interface MemberLayout {
  name: string;
  offset: number;
  size: number;
}

export interface StructLayoutSpec {
  name: string;
  size: number;
  members: MemberLayout[];
}

/** Encoder and decoder of one C type; `layout` is set for structs. */
export interface Codec<V> {
  readonly size: number;
  readonly layout?: StructLayoutSpec;
  encode(value: V): Buffer;
  decode(bytes: Buffer): V;
}

// ---- field kinds

interface Field<T> {
  offset: number;
  size: number;
  /** C member name when it is not the snake_case of the TypeScript name. */
  c?: string;
  read(b: Buffer, at: number): T;
  write(b: Buffer, at: number, v: T): void;
}

const u8 = (offset: number, c?: string): Field<number> => ({
  offset, size: 1, c,
  read: (b, at) => b.readUInt8(at),
  write: (b, at, v) => b.writeUInt8(v, at),
});
const u16 = (offset: number, c?: string): Field<number> => ({
  offset, size: 2, c,
  read: (b, at) => b.readUInt16LE(at),
  write: (b, at, v) => b.writeUInt16LE(v, at),
});
/** A u16 in network byte order (big-endian), as a number. */
const be16 = (offset: number, c?: string): Field<number> => ({
  offset, size: 2, c,
  read: (b, at) => b.readUInt16BE(at),
  write: (b, at, v) => b.writeUInt16BE(v, at),
});
const u32 = (offset: number, c?: string): Field<number> => ({
  offset, size: 4, c,
  read: (b, at) => b.readUInt32LE(at),
  write: (b, at, v) => b.writeUInt32LE(v, at),
});
const u64 = (offset: number, c?: string): Field<bigint> => ({
  offset, size: 8, c,
  read: (b, at) => b.readBigUInt64LE(at),
  write: (b, at, v) => b.writeBigUInt64LE(v, at),
});
/** An IPv4 address in network byte order, as dotted text. */
const ipv4 = (offset: number, c?: string): Field<string> => ({
  offset, size: 4, c,
  read: (b, at) => formatIpv4(b.subarray(at, at + 4)),
  write: (b, at, v) => ipv4Bytes(v).copy(b, at),
});
/** A byte array (u8 name[n]). */
const bytes = (offset: number, size: number, c?: string): Field<Buffer> => ({
  offset, size, c,
  read: (b, at) => Buffer.from(b.subarray(at, at + size)),
  write: (b, at, v) => {
    if (v.length !== size) throw new RangeError(`expected ${size} bytes, got ${v.length}`);
    v.copy(b, at);
  },
});

type Values<F> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never };

/**
 * A struct codec from its fields (named in TypeScript camelCase; the C member
 * is the snake_case of the name unless given) and its padding members, which
 * are part of the layout but not of the value.
 */
function struct<F extends Record<string, Field<unknown>>>(
  name: string,
  size: number,
  fields: F,
  padding: Array<{ c: string; offset: number; size: number }> = [],
): Codec<Values<F>> {
  const entries = Object.entries(fields) as Array<[keyof F & string, Field<unknown>]>;
  const members = [
    ...entries.map(([key, f]) => ({ name: f.c ?? key.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`), offset: f.offset, size: f.size })),
    ...padding.map((p) => ({ name: p.c, offset: p.offset, size: p.size })),
  ].sort((a, b) => a.offset - b.offset);
  return {
    size,
    layout: { name, size, members },
    encode(value) {
      const b = Buffer.alloc(size);
      for (const [key, f] of entries) f.write(b, f.offset, value[key]);
      return b;
    },
    decode(b) {
      if (b.length !== size) throw new RangeError(`struct ${name} is ${size} bytes, got ${b.length}`);
      const value = {} as Values<F>;
      for (const [key, f] of entries) value[key] = f.read(b, f.offset) as Values<F>[typeof key];
      return value;
    },
  };
}

// ---- addresses

function ipv4Bytes(text: string): Buffer {
  if (!isIPv4(text)) throw new RangeError(`not an IPv4 address: ${text}`);
  return Buffer.from(text.split('.').map(Number));
}

function formatIpv4(b: Buffer): string {
  return Array.from(b).join('.');
}

/** Linux AF_INET (PAL_AF_INET): the family byte of LPM keys. IPv6 is not in the datapath yet. */
export const FAMILY_IPV4 = 2;

/** '10.1.0.0/16' (a bare address is /32) as family, address bytes (host bits cleared) and prefix length. */
function parseCidr(cidr: string): { addr: Buffer; bits: number } {
  const [address = '', bitsText = '32', extra] = cidr.split('/');
  const bits = Number(bitsText);
  if (extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > 32 || !/^\d+$/.test(bitsText)) {
    throw new RangeError(`not an IPv4 CIDR: ${cidr}`);
  }
  const addr = Buffer.alloc(16);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  addr.writeUInt32BE((ipv4Bytes(address).readUInt32BE(0) & mask) >>> 0, 0);
  return { addr, bits };
}

function formatCidr(family: number, addr: Buffer, bits: number): string {
  if (family !== FAMILY_IPV4) throw new RangeError(`LPM key of family ${family}; only IPv4 (${FAMILY_IPV4}) is mirrored`);
  return `${formatIpv4(addr.subarray(0, 4))}/${bits}`;
}

// ---- scalar keys

/** A u32 in host order: the key of pal_endpoints (ifindex), pal_config (0) and pal_metrics (reason). */
export const u32Key: Codec<number> = {
  size: 4,
  encode: (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  },
  decode: (b) => b.readUInt32LE(0),
};

/** pal_ipcache4's key: an IPv4 address in network order. */
export const ipv4Key: Codec<string> = {
  size: 4,
  encode: ipv4Bytes,
  decode: formatIpv4,
};

// ---- structs (bpf/lib/<header> named beside each)

/** endpoints.h: the value of pal_endpoints. `ipv4` is the pod's address. */
export const endpointInfo = struct('endpoint_info', 24, {
  endpointId: u32(0),
  identity: u32(4),
  flags: u32(8),
  ingressDefaultRule: u32(12),
  egressDefaultRule: u32(16),
  ipv4: ipv4(20),
});
export type EndpointInfo = ReturnType<typeof endpointInfo.decode>;

/** ipcache.h: the value of pal_ipcache4 and pal_ipcache. */
export const ipcacheValue = struct('ipcache_value', 8, { identity: u32(0), flags: u32(4) });
export type IpcacheValue = ReturnType<typeof ipcacheValue.decode>;

/** ipcache.h: pal_ipcache's key as C has it; use `ipcacheKey`. */
export const ipcacheKeyRaw = struct(
  'ipcache_key',
  24,
  { prefixlen: u32(0), family: u8(4), addr: bytes(8, 16) },
  [{ c: 'pad', offset: 5, size: 3 }],
);

/** prefixlen of pal_ipcache keys counts the 32 bits of family and pad first. */
const IPCACHE_FIXED_BITS = 32;

/** pal_ipcache's key for an IPv4 CIDR ('10.0.0.0/8'; a bare address is /32). */
export const ipcacheKey: Codec<string> = {
  size: ipcacheKeyRaw.size,
  encode(cidr) {
    const { addr, bits } = parseCidr(cidr);
    return ipcacheKeyRaw.encode({ prefixlen: IPCACHE_FIXED_BITS + bits, family: FAMILY_IPV4, addr });
  },
  decode(b) {
    const raw = ipcacheKeyRaw.decode(b);
    return formatCidr(raw.family, raw.addr, raw.prefixlen - IPCACHE_FIXED_BITS);
  },
};

/** policy.h: the key of pal_policy. identity is the peer class; 0 protocol / port are wildcards. */
export const policyKey = struct('policy_key', 12, {
  endpointId: u32(0),
  identity: u32(4),
  direction: u8(8),
  protocol: u8(9),
  dport: u16(10),
});
export type PolicyKey = ReturnType<typeof policyKey.decode>;

/** policy.h: the value of pal_policy; flags (POLICY_FLAG) on summary entries only. */
export const policyValue = struct('policy_value', 8, { ruleId: u32(0), flags: u32(4) });
export type PolicyValue = ReturnType<typeof policyValue.decode>;

/** policy.h: pal_policy_ports's key as C has it; use `policyPortKey`. */
export const policyPortKeyRaw = struct('policy_port_key', 16, {
  prefixlen: u32(0),
  endpointId: u32(4),
  identity: u32(8),
  direction: u8(12),
  protocol: u8(13),
  dport: be16(14),
});

/** prefixlen of pal_policy_ports keys counts endpoint_id, identity, direction and protocol first. */
const POLICY_PORTS_FIXED_BITS = 80;

export interface PolicyPortKey {
  endpointId: number;
  identity: number;
  direction: number;
  protocol: number;
  /** The first port of an aligned block of 2^(16 - portBits) ports. */
  port: number;
  /** How many high bits of the port the prefix fixes (0..16). */
  portBits: number;
}

/** pal_policy_ports's key: one aligned port block of a class's range. */
export const policyPortKey: Codec<PolicyPortKey> = {
  size: policyPortKeyRaw.size,
  encode({ endpointId, identity, direction, protocol, port, portBits }) {
    const mask = portBits === 0 ? 0 : (0xffff << (16 - portBits)) & 0xffff;
    return policyPortKeyRaw.encode({ prefixlen: POLICY_PORTS_FIXED_BITS + portBits, endpointId, identity, direction, protocol, dport: port & mask });
  },
  decode(b) {
    const raw = policyPortKeyRaw.decode(b);
    return { endpointId: raw.endpointId, identity: raw.identity, direction: raw.direction, protocol: raw.protocol, port: raw.dport, portBits: raw.prefixlen - POLICY_PORTS_FIXED_BITS };
  },
};

/** policy.h: pal_policy_cidr's key as C has it; use `policyCidrKey`. */
export const policyCidrKeyRaw = struct(
  'policy_cidr_key',
  28,
  { prefixlen: u32(0), endpointId: u32(4), direction: u8(8), family: u8(9), addr: bytes(12, 16) },
  [{ c: 'pad', offset: 10, size: 2 }],
);

/** prefixlen of pal_policy_cidr keys counts endpoint_id, direction, family and pad first. */
const POLICY_CIDR_FIXED_BITS = 64;

export interface PolicyCidrKey {
  endpointId: number;
  direction: number;
  /** IPv4 CIDR; host bits are cleared. */
  cidr: string;
}

export const policyCidrKey: Codec<PolicyCidrKey> = {
  size: policyCidrKeyRaw.size,
  encode({ endpointId, direction, cidr }) {
    const { addr, bits } = parseCidr(cidr);
    return policyCidrKeyRaw.encode({ prefixlen: POLICY_CIDR_FIXED_BITS + bits, endpointId, direction, family: FAMILY_IPV4, addr });
  },
  decode(b) {
    const raw = policyCidrKeyRaw.decode(b);
    const cidr = formatCidr(raw.family, raw.addr, raw.prefixlen - POLICY_CIDR_FIXED_BITS);
    return { endpointId: raw.endpointId, direction: raw.direction, cidr };
  },
};

/** policy.h: the value of pal_policy_cidr: a CIDR-region class (cidrIdentity). */
export const policyCidrValue = struct('policy_cidr_value', 4, { identity: u32(0) });

/** conntrack.h: pal_ct4's key, a connection as one endpoint sees it (its own address and port first). */
export const ct4Key = struct(
  'ct4_key',
  16,
  { addr: ipv4(0), peerAddr: ipv4(4), port: u16(8), peerPort: u16(10), protocol: u8(12) },
  [{ c: 'pad', offset: 13, size: 3 }],
);
export type Ct4Key = ReturnType<typeof ct4Key.decode>;

/**
 * conntrack.h: pal_ct4's value; lastSeen is jiffies (low 32 bits), origin the direction the connection was opened in,
 * revoked (CT_REVOKED) when denied at `revision`: 1 by the default deny, 2 by a deny rule; closing 1 once a TCP FIN or RST was seen; nat (NAT_KIND) with natAddr and natPort
 * tie the two entries of a connection to a Service together.
 */
export const ctValue = struct(
  'ct_value',
  48,
  {
    revision: u32(0), ruleId: u32(4), lastSeen: u32(8), ifindex: u32(12), origin: u8(16), revoked: u8(17), closing: u8(18), nat: u8(19),
    natAddr: ipv4(20), natPort: u16(24), lastReport: u32(28), packets: u64(32), bytes: u64(40),
  },
  [{ c: 'pad', offset: 26, size: 2 }],
);
export type CtValue = ReturnType<typeof ctValue.decode>;

/** conntrack.h PAL_CT_REVOKED_*: ct_value.revoked, why an entry's connection was denied (0: live). */
export const CT_REVOKED = { DEFAULT: 1, DENY: 2 } as const;

/** conntrack.h: pal_ct_budget's value, the pal_ct4 entries of one device (key: its ifindex) or, under key 0, of the node. */
export const ctBudget = struct('ct_budget', 4, { entries: u32(0) });

/** conntrack.h: one record of pal_ct_forget's input: delete `key` (an encoded ct4_key) if its last_seen is still `lastSeen`. Not in the object's BTF (only a local pointer uses it): checked by its encoding test and the C _Static_assert. */
export const ctForget = struct('ct_forget', 20, { key: bytes(0, 16), lastSeen: u32(16) });

/** frag.h: pal_frag4's key, a fragmented datagram at one device; `id` is iphdr.id as on the wire (network order). */
export const frag4Key = struct(
  'frag4_key',
  16,
  { saddr: ipv4(0), daddr: ipv4(4), ifindex: u32(8), id: u16(12), protocol: u8(14) },
  [{ c: 'pad', offset: 15, size: 1 }],
);

/** frag.h: pal_frag4's value, the first fragment's ports. */
export const frag4Value = struct('frag4_value', 4, { sport: u16(0), dport: u16(2) });

/** config.h: pal_config[0]. */
export const datapathConfig = struct('datapath_config', 8, { policyRevision: u32(0), flags: u32(4) });
export type DatapathConfig = ReturnType<typeof datapathConfig.decode>;

/** metrics.h: one CPU's counters of pal_metrics[reason]; see sumMetrics. */
export const metricsValue = struct('metrics_value', 16, { packets: u64(0), bytes: u64(8) });

export type MetricsValue = ReturnType<typeof metricsValue.decode>;

/** Sums a pal_metrics value as the loader returns it: one metrics_value per possible CPU. */
export function sumMetrics(perCpu: Buffer): MetricsValue {
  if (perCpu.length % metricsValue.size !== 0) throw new RangeError(`per-CPU value of ${perCpu.length} bytes`);
  const total = { packets: 0n, bytes: 0n };
  for (let at = 0; at < perCpu.length; at += metricsValue.size) {
    const one = metricsValue.decode(perCpu.subarray(at, at + metricsValue.size));
    total.packets += one.packets;
    total.bytes += one.bytes;
  }
  return total;
}

/** lb.h: a Service frontend, the key of pal_lb4 (address in network order, port in host order). */
export const lb4Key = struct('lb4_key', 8, { addr: ipv4(0), port: u16(4), protocol: u8(6) }, [{ c: 'pad', offset: 7, size: 1 }]);
export type Lb4Key = ReturnType<typeof lb4Key.decode>;

/** lb.h: the value of pal_lb4: how many backends the frontend has (slots 0 .. count - 1), LB_FLAG bits. */
export const lb4Service = struct('lb4_service', 8, { count: u32(0), flags: u32(4) });

/** lb.h: pal_lb4_backends's key as C has it; use `lb4BackendKey`. */
export const lb4BackendKeyRaw = struct('lb4_backend_key', 12, { frontend: bytes(0, 8), slot: u32(8) });

/** lb.h: the key of pal_lb4_backends: one backend slot of a frontend. */
export const lb4BackendKey: Codec<Lb4Key & { slot: number }> = {
  size: lb4BackendKeyRaw.size,
  encode: ({ slot, ...frontend }) => lb4BackendKeyRaw.encode({ frontend: lb4Key.encode(frontend), slot }),
  decode(b) {
    const raw = lb4BackendKeyRaw.decode(b);
    return { ...lb4Key.decode(raw.frontend), slot: raw.slot };
  },
};

/** lb.h: the value of pal_lb4_backends: a backend's address and target port. */
export const lb4Backend = struct('lb4_backend', 8, { addr: ipv4(0), port: u16(4) }, [{ c: 'pad', offset: 6, size: 2 }]);

/** lb.h: lb4_service.flags. */
export const LB_FLAG = { CLIENT_AFFINITY: 1 << 0 } as const;

/** conntrack.h PAL_NAT_*: ct_value.nat. DNS: a pod's DNS query redirected to the node's DNS proxy (docs/adr/0012-dns-redirect.md), keyed by the flow as redirected; natAddr:natPort is the upstream. */
export const NAT_KIND = { NONE: 0, SERVICE: 1, REVERSE: 2, DNS: 3 } as const;

/** dns.h: the value of pal_dns_upstreams (key: the upstream's IPv4 address, ipv4Key): the port of the DNS proxy that stands in for it, network order on the wire. */
export const dnsUpstream = struct('dns_upstream', 4, { proxyPort: be16(0) }, [{ c: 'pad', offset: 2, size: 2 }]);
export type DnsUpstream = ReturnType<typeof dnsUpstream.decode>;

/** dns.h: pal_dns_proxy[0]: the DNS proxy's address, alive while the kernel's 64-bit jiffies are below aliveUntil (0n: not alive). */
export const dnsProxy = struct('dns_proxy', 16, { addr: ipv4(0), aliveUntil: u64(8) }, [{ c: 'pad', offset: 4, size: 4 }]);
export type DnsProxy = ReturnType<typeof dnsProxy.decode>;

/** dns.h PAL_DNS_PORT: the port whose queries are redirected. */
export const DNS_PORT = 53;

/**
 * flows.h: one record of the pal_flows ring buffer. timeNs is CLOCK_BOOTTIME as the kernel writes it (the flow reader
 * rewrites it to Unix time before the agent sees it); saddr/daddr are the connection as opened (NEW, END, UPDATE) or
 * the dropped packet's (DROP); packets is the key's running total for a DROP with FLOW_FLAG.RUNNING_TOTAL.
 */
export const flowEvent = struct('flow_event', 64, {
  timeNs: u64(0),
  packets: u64(8),
  bytes: u64(16),
  ifindex: u32(24),
  saddr: ipv4(28),
  daddr: ipv4(32),
  sport: u16(36),
  dport: u16(38),
  srcIdentity: u32(40),
  dstIdentity: u32(44),
  ruleId: u32(48),
  natAddr: ipv4(52),
  natPort: u16(56),
  protocol: u8(58),
  direction: u8(59),
  type: u8(60),
  reason: u8(61),
  tcpFlags: u8(62),
  flags: u8(63),
});
export type FlowEvent = ReturnType<typeof flowEvent.decode>;

/** flows.h: the key of pal_drop_agg, under which drops are summarised. */
export const dropAggKey = struct(
  'drop_agg_key',
  16,
  { ifindex: u32(0), peer: ipv4(4), dport: u16(8), protocol: u8(10), reason: u8(11), direction: u8(12) },
  [{ c: 'pad', offset: 13, size: 3 }],
);
/** flows.h: the value of pal_drop_agg: the key's drops so far and the (coarse monotonic) time of its last event. */
export const dropAgg = struct('drop_agg', 16, { total: u64(0), lastEvent: u64(8) });

/** flows.h PAL_FLOW_*: flow_event.type. DROP_SUMMARY is written by the agent only (the drops after a key's last event). */
export const FLOW_TYPE = { NEW: 1, DROP: 2, END: 3, UPDATE: 4, DROP_SUMMARY: 5 } as const;
/** flows.h PAL_FLOW_TYPES: the size of pal_flow_lost (events lost, per CPU, by type). */
export const FLOW_TYPES = 8;
/** flows.h PAL_FLOWF_*: flow_event.flags. DNS_PROXY: a NEW connection whose packets go to the node's DNS proxy (daddr is still the upstream the pod addressed). */
export const FLOW_FLAG = { DEFAULT_DENY: 1 << 0, SERVICE: 1 << 1, IDLE: 1 << 2, RUNNING_TOTAL: 1 << 3, DNS_PROXY: 1 << 4 } as const;

/** Every struct mirrored here, for the layout test. */
export const STRUCTS = [
  endpointInfo, ipcacheValue, ipcacheKeyRaw, policyKey, policyValue, policyPortKeyRaw, policyCidrKeyRaw,
  policyCidrValue, ct4Key, ctValue, ctBudget, frag4Key, frag4Value, datapathConfig, metricsValue,
  lb4Key, lb4Service, lb4BackendKeyRaw, lb4Backend, flowEvent, dropAggKey, dropAgg, dnsUpstream, dnsProxy,
].map((c) => c.layout!);

// ---- maps and programs

/** enum bpf_map_type values of the maps below. */
export const MAP_TYPE = { HASH: 1, ARRAY: 2, PERCPU_ARRAY: 6, LRU_HASH: 9, LPM_TRIE: 11, RINGBUF: 27 } as const;

/** A ring buffer has neither keys nor values: records are read through its reader (datapath/flow-reader.ts). */
const none: Codec<never> = {
  size: 0,
  encode: () => {
    throw new Error('a ring buffer has no keys or values');
  },
  decode: () => {
    throw new Error('a ring buffer has no keys or values');
  },
};
/** A per-CPU u64 counter (one value per CPU in dumps). */
const u64Value: Codec<bigint> = {
  size: 8,
  encode: (v) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  },
  decode: (b) => b.readBigUInt64LE(0),
};

/** The datapath's maps, pinned by name in the node's bpffs directory. */
export const MAPS = {
  pal_endpoints: { type: MAP_TYPE.HASH, key: u32Key, value: endpointInfo },
  pal_ipcache4: { type: MAP_TYPE.HASH, key: ipv4Key, value: ipcacheValue },
  pal_ipcache: { type: MAP_TYPE.LPM_TRIE, key: ipcacheKey, value: ipcacheValue },
  pal_policy: { type: MAP_TYPE.HASH, key: policyKey, value: policyValue },
  pal_policy_ports: { type: MAP_TYPE.LPM_TRIE, key: policyPortKey, value: policyValue },
  pal_policy_cidr: { type: MAP_TYPE.LPM_TRIE, key: policyCidrKey, value: policyCidrValue },
  pal_ct4: { type: MAP_TYPE.HASH, key: ct4Key, value: ctValue },
  pal_ct_budget: { type: MAP_TYPE.HASH, key: u32Key, value: ctBudget },
  pal_frag4: { type: MAP_TYPE.LRU_HASH, key: frag4Key, value: frag4Value },
  pal_config: { type: MAP_TYPE.ARRAY, key: u32Key, value: datapathConfig },
  pal_lb4: { type: MAP_TYPE.HASH, key: lb4Key, value: lb4Service },
  pal_lb4_backends: { type: MAP_TYPE.HASH, key: lb4BackendKey, value: lb4Backend },
  pal_flows: { type: MAP_TYPE.RINGBUF, key: none, value: none },
  pal_flow_lost: { type: MAP_TYPE.PERCPU_ARRAY, key: u32Key, value: u64Value },
  pal_drop_agg: { type: MAP_TYPE.LRU_HASH, key: dropAggKey, value: dropAgg },
  pal_metrics: { type: MAP_TYPE.PERCPU_ARRAY, key: u32Key, value: metricsValue },
  pal_dns_upstreams: { type: MAP_TYPE.HASH, key: ipv4Key, value: dnsUpstream },
  pal_dns_proxy: { type: MAP_TYPE.ARRAY, key: u32Key, value: dnsProxy },
  /** The datapath's per-CPU scratch value (conntrack.h); nothing to read. */
  pal_ct_scratch: { type: MAP_TYPE.PERCPU_ARRAY, key: u32Key, value: ctValue },
} as const;
export type MapName = keyof typeof MAPS;

/** Programs of endpoint.bpf.o and the tc hook of the pod's HOST-SIDE veth each attaches to. */
export const PROGRAMS = {
  pal_from_pod: { hook: 'ingress' },
  pal_to_pod: { hook: 'egress' },
} as const;
/**
 * endpoint.bpf.o's never-attached program that returns the kernel's jiffies (low 32 bits) through test_run: the clock
 * of ct_value.lastSeen. It also writes the whole 64-bit jiffies into the first 8 bytes of its packet (host order,
 * read back from test_run's data): the clock of dnsProxy.aliveUntil (agent/dns-redirect.ts).
 */
export const CLOCK_PROGRAM = 'pal_clock';

/** The kernel's 64-bit jiffies from a pal_clock test_run's packet (the run's `data`, at least 8 bytes). */
export function jiffies64FromClock(data: Buffer): bigint {
  if (data.length < 8) throw new RangeError(`pal_clock's packet is ${data.length} bytes`);
  return data.readBigUInt64LE(0);
}
/** endpoint.bpf.o's never-attached program through which the conntrack garbage collector deletes idle entries (test_run on an Ethernet header's 14 bytes, then up to CT_FORGET_BATCH ctForget records; returns how many it deleted), keeping pal_ct_budget exact. */
export const CT_FORGET_PROGRAM = 'pal_ct_forget';
/** conntrack.h PAL_CT_FORGET_BATCH: records per run of pal_ct_forget. */
export const CT_FORGET_BATCH = 128;
/** passthrough.bpf.o's program: the benchmark's baseline. */
export const PASSTHROUGH_PROGRAM = 'pal_passthrough';

/** Load-time settings (`const volatile` globals of config.h), encoded for Loader.load. */
export function loadGlobals(settings: { hostReachesPods: boolean; ctEndpointMax?: number; flowEvents?: boolean; flowUpdateSeconds?: number }): Record<string, Buffer> {
  return {
    pal_host_reaches_pods: u32Key.encode(settings.hostReachesPods ? 1 : 0),
    ...(settings.ctEndpointMax === undefined ? {} : { pal_ct_endpoint_max: u32Key.encode(settings.ctEndpointMax) }),
    ...(settings.flowEvents === undefined ? {} : { pal_flow_events: u32Key.encode(settings.flowEvents ? 1 : 0) }),
    // flows.h counts in units of 2^20 ns.
    ...(settings.flowUpdateSeconds === undefined ? {} : { pal_flow_update_units: u32Key.encode(Math.max(1, Math.round((settings.flowUpdateSeconds * 1e9) / 2 ** 20))) }),
  };
}

// ---- constants

/**
 * Direction in every key: 0 to the pod (its ingress policy), 1 from the pod (egress); in policy keys
 * (pal_policy, pal_policy_ports, pal_policy_cidr) 2 and 3 are the deny lanes of ingress and egress (ADR 0010).
 */
export const DIRECTION = { INGRESS: 0, EGRESS: 1, INGRESS_DENY: 2, EGRESS_DENY: 3 } as const;

/** IANA protocol numbers; 0 in a policy key is any protocol. */
export const PROTOCOL = { ANY: 0, TCP: 6, UDP: 17, SCTP: 132 } as const;

/**
 * ipcache.h identities. Pods use POD_MIN..POD_MAX; CIDR regions 2^31 | h. CLUSTER is a policy class only (every
 * peer in the cluster: isClusterIdentity); INIT a pod address whose pod has no identity yet; the API server's
 * addresses are KUBE_APISERVER, or combined with a node's (ADR 0010).
 */
export const IDENTITY = {
  ANY: 0,
  HOST: 1,
  WORLD: 2,
  CLUSTER: 3,
  INIT: 5,
  REMOTE_NODE: 6,
  KUBE_APISERVER: 7,
  HOST_KUBE_APISERVER: 8,
  REMOTE_NODE_KUBE_APISERVER: 9,
  POD_MIN: 256,
  POD_MAX: 2 ** 24 - 1,
  CIDR_BIT: 2 ** 31,
} as const;

/** The pseudo identity of CIDR region h (h < 2^31). */
export function cidrIdentity(h: number): number {
  if (!Number.isInteger(h) || h < 0 || h >= IDENTITY.CIDR_BIT) throw new RangeError(`CIDR region ${h}`);
  return IDENTITY.CIDR_BIT + h;
}

/** policy.h: flags of a SUMMARY entry (protocol 0, port 0). */
export const POLICY_FLAG = {
  ALL: 1 << 0,
  TCP_ANY_PORT: 1 << 1,
  UDP_ANY_PORT: 1 << 2,
  SCTP_ANY_PORT: 1 << 3,
  TCP_PORTS: 1 << 4,
  UDP_PORTS: 1 << 5,
  SCTP_PORTS: 1 << 6,
  TCP_RANGES: 1 << 7,
  UDP_RANGES: 1 << 8,
  SCTP_RANGES: 1 << 9,
} as const;

/**
 * endpoints.h: endpoint_info.flags. The allow lane in bits 0..7 (bit = base << direction: ENFORCED 1, CIDR 4, ANY 16,
 * CLUSTER 64), the deny lane in bits 8..15, the same layout shifted by DENY_FLAGS_SHIFT (DENY: has deny entries).
 * DNS_REDIRECT: the pod's DNS queries go to the node's DNS proxy while its lease runs; DNS_NO_FALLBACK: and are dropped
 * while none runs, instead of going to the upstream (docs/adr/0012-dns-redirect.md).
 */
export const ENDPOINT_FLAG = {
  INGRESS_ENFORCED: 1 << 0,
  EGRESS_ENFORCED: 1 << 1,
  INGRESS_CIDR: 1 << 2,
  EGRESS_CIDR: 1 << 3,
  INGRESS_ANY: 1 << 4,
  EGRESS_ANY: 1 << 5,
  INGRESS_CLUSTER: 1 << 6,
  EGRESS_CLUSTER: 1 << 7,
  INGRESS_DENY: 1 << 8,
  EGRESS_DENY: 1 << 9,
  INGRESS_DENY_CIDR: 1 << 10,
  EGRESS_DENY_CIDR: 1 << 11,
  INGRESS_DENY_ANY: 1 << 12,
  EGRESS_DENY_ANY: 1 << 13,
  INGRESS_DENY_CLUSTER: 1 << 14,
  EGRESS_DENY_CLUSTER: 1 << 15,
  DNS_REDIRECT: 1 << 16,
  DNS_NO_FALLBACK: 1 << 17,
} as const;

/** endpoints.h PAL_DENY_FLAGS_SHIFT: the deny lane's flags are the allow lane's shifted left by this. */
export const DENY_FLAGS_SHIFT = 8;

/**
 * Verdict reasons: the keys of pal_metrics. APPEND-ONLY, and must stay in
 * sync with bpf/lib/reasons.h: a released number is never reused or
 * renumbered, even once retired. Codes from DROP_FIRST drop the packet.
 */
export const REASON = {
  ALLOW_POLICY: 1,
  ALLOW_ESTABLISHED: 2,
  ALLOW_REPLY: 3,
  PASS_UNSELECTED: 4,
  PASS_NON_IP: 5,
  ALLOW_RELATED: 6,
  PASS_DNS_REDIRECT: 7,
  DROP_POLICY: 128,
  DROP_MALFORMED: 129,
  DROP_FRAGMENT: 130,
  DROP_REVOKED: 131,
  DROP_SPOOFED: 132,
  DROP_VLAN: 133,
  DROP_NOT_IPV4: 134,
  DROP_ICMP_ERROR: 135,
  DROP_CT_FULL: 136,
  DROP_NO_ENDPOINT: 137,
  DROP_NO_BACKEND: 138,
  DROP_NAT: 139,
  DROP_POLICY_DENY: 140,
  DROP_DNS_NO_PROXY: 141,
  DROP_PREFILTER: 142,
} as const;
export type ReasonName = keyof typeof REASON;
export const DROP_FIRST = 128;
/** Reason codes are below this (the size of pal_metrics). */
export const REASON_LIMIT = 256;

export function reasonName(code: number): ReasonName | undefined {
  return (Object.keys(REASON) as ReasonName[]).find((name) => REASON[name] === code);
}

export function isDrop(code: number): boolean {
  return code >= DROP_FIRST;
}
