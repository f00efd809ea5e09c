// The TypeScript mirror of the XDP prefilter's ABI (bpf/lib/prefilter.h,
// bpf/prefilter.bpf.c; docs/adr/0013-xdp-prefilter.md): its object, program,
// maps, structs and flags. datapath/prefilter.kernel.test.ts checks the
// layouts against the BTF of build/bpf/prefilter.bpf.o and the constants
// against the header. Byte order as in abi.ts: integers little-endian,
// addresses in network order.
import { fileURLToPath } from 'node:url';
import { frag4Key, frag4Value, ipv4Key, MAP_TYPE, u32Key, type Codec, type StructLayoutSpec } from './abi.ts';

export const PREFILTER_OBJECT = fileURLToPath(new URL('../build/bpf/prefilter.bpf.o', import.meta.url));
/** The XDP program of prefilter.bpf.o, attached to the node's uplinks. */
export const PREFILTER_PROGRAM = 'pal_prefilter';

/** prefilter.h PAL_PREFILTER_*: prefilter_config.flags. */
export const PREFILTER_FLAG = { ACTIVE: 1 << 0, WORLD: 1 << 1 } as const;
/** prefilter.h PAL_PREFILTER_MAX: max_entries of pal_prefilter4. */
export const PREFILTER_MAX = 1 << 16;
/** prefilter.h PAL_PREFILTER_EVENTS: flow events per CPU per drop window. */
export const PREFILTER_EVENTS = 64;

const layout = (name: string, size: number, members: Array<[string, number, number]>): StructLayoutSpec => ({
  name,
  size,
  members: members.map(([member, offset, bytes]) => ({ name: member, offset, size: bytes })),
});

const u32At = (b: Buffer, at: number) => b.readUInt32LE(at);

/** prefilter.h: pal_prefilter4's key, an IPv4 prefix ('203.0.113.0/24'; prefixlen counts address bits only). */
export const prefilter4Key: Codec<string> & { layout: StructLayoutSpec } = {
  size: 8,
  layout: layout('prefilter4_key', 8, [['prefixlen', 0, 4], ['addr', 4, 4]]),
  encode(cidr) {
    const [address = '', bitsText = '32'] = cidr.split('/');
    const bits = Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new RangeError(`not an IPv4 prefix: ${cidr}`);
    const b = Buffer.alloc(8);
    b.writeUInt32LE(bits, 0);
    const addr = ipv4Key.encode(address).readUInt32BE(0);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    b.writeUInt32BE((addr & mask) >>> 0, 4);
    return b;
  },
  decode: (b) => `${ipv4Key.decode(b.subarray(4, 8))}/${u32At(b, 0)}`,
};

/** prefilter.h: pal_prefilter4's value, the deny rule (datapath number) of the prefix. */
export const prefilterValue: Codec<{ ruleId: number }> & { layout: StructLayoutSpec } = {
  size: 4,
  layout: layout('prefilter_value', 4, [['rule_id', 0, 4]]),
  encode: ({ ruleId }) => u32Key.encode(ruleId),
  decode: (b) => ({ ruleId: u32At(b, 0) }),
};

/** prefilter.h: pal_prefilter_dst4's value (key: an endpoint's address, ipv4Key): its host veth. */
export const prefilterDst: Codec<{ ifindex: number }> & { layout: StructLayoutSpec } = {
  size: 4,
  layout: layout('prefilter_dst', 4, [['ifindex', 0, 4]]),
  encode: ({ ifindex }) => u32Key.encode(ifindex),
  decode: (b) => ({ ifindex: u32At(b, 0) }),
};

/** prefilter.h: pal_prefilter_config[0]. */
export const prefilterConfig: Codec<{ flags: number; worldRule: number }> & { layout: StructLayoutSpec } = {
  size: 8,
  layout: layout('prefilter_config', 8, [['flags', 0, 4], ['world_rule', 4, 4]]),
  encode({ flags, worldRule }) {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(flags, 0);
    b.writeUInt32LE(worldRule, 4);
    return b;
  },
  decode: (b) => ({ flags: u32At(b, 0), worldRule: u32At(b, 4) }),
};

/** prefilter.h: one CPU's pal_prefilter_budget[0]. */
export const prefilterBudget: Codec<{ windowStart: bigint; events: bigint }> & { layout: StructLayoutSpec } = {
  size: 16,
  layout: layout('prefilter_budget', 16, [['window_start', 0, 8], ['events', 8, 8]]),
  encode({ windowStart, events }) {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(windowStart, 0);
    b.writeBigUInt64LE(events, 8);
    return b;
  },
  decode: (b) => ({ windowStart: b.readBigUInt64LE(0), events: b.readBigUInt64LE(8) }),
};

/** The prefilter's own maps (it also reads the shared pal_ipcache4, pal_ipcache, pal_ct4 and writes pal_metrics, pal_drop_agg, pal_flows). */
export const PREFILTER_MAPS = {
  pal_prefilter4: { type: MAP_TYPE.LPM_TRIE, key: prefilter4Key, value: prefilterValue },
  pal_prefilter_dst4: { type: MAP_TYPE.HASH, key: ipv4Key, value: prefilterDst },
  pal_prefilter_config: { type: MAP_TYPE.ARRAY, key: u32Key, value: prefilterConfig },
  pal_prefilter_frag4: { type: MAP_TYPE.LRU_HASH, key: frag4Key, value: frag4Value },
  pal_prefilter_budget: { type: MAP_TYPE.PERCPU_ARRAY, key: u32Key, value: prefilterBudget },
} as const;
export type PrefilterMap = keyof typeof PREFILTER_MAPS;

/** The structs of prefilter.h, for the layout test. */
export const PREFILTER_STRUCTS = [prefilter4Key, prefilterValue, prefilterDst, prefilterConfig, prefilterBudget].map((c) => c.layout);
