// Benchmark `packet`: the per-packet cost of the INGRESS program (pal_to_pod,
// the tc egress hook of a pod's host veth) by BPF_PROG_TEST_RUN, beside the
// empty pass-through program (pal_passthrough) measured interleaved in the
// same run. Targets (issue 3, ADR 0001): the figure with 100,000 entries
// within 1.5x of the figure with 10, and under 60 ns added over pass-through.
//
// Three copies of endpoint.bpf.o, each with its own maps (one loader process
// and one pin directory each), hold 10, 1,000 and 100,000 filler entries in
// pal_policy (other endpoints and identities) and in pal_ipcache4 (other
// addresses), plus the entries the measured packets need; every round runs
// every case of every copy and the pass-through, in a shuffled order, so
// load from other processes falls on all of them alike. Medians over rounds.
//
// Three modes:
// - hot: one packet repeated (test_run repeat, 500,000 by default): the
//   kernel averages over the repeats; every map line touched stays in cache.
//   The established and denied targets are judged on it.
// - new connection: e2e/bench/fresh.bpf.c gives every run a tuple never seen
//   (a repeated SYN would only replace a tracked tuple's entry) and
//   tail-calls a copy of pal_to_pod on the copy's maps, against the same
//   driver tail-calling an empty program. The new-connection target is
//   judged on it.
// - spread: repeat 1, a different peer per run, drawn from all the allowed
//   filler peers, so the lookups touch map memory the previous runs did not
//   (as real traffic from many peers does); the timer's fixed cost is the
//   pass-through's, measured the same way.
//
// Every case is checked first: its verdict reason (pal_metrics) and return
// code must be the expected ones, so a figure never measures a wrong path.
//
// The EGRESS program (pal_from_pod) does one pal_lb4 lookup for every packet
// (is the destination a Service frontend?), so its established case is in
// the hot table too, with pal_lb4 holding a filler frontend (one backend
// each) per filler entry of the other maps, as many as it holds.
//
// Service packets are measured through a harness (RESTORE_SOURCE below):
// test_run repeats ONE skb and the hooks rewrite a Service packet in place,
// so without it every run after the first would see the translated packet
// (an ACK to the backend: judged as a direct connection, which replaces the
// Service connection's REVERSE entry; a reply from the frontend: a new
// incoming connection), and the figure would be that of another path. The
// harness writes the case's frame back before every run; every timed run is
// checked to have counted the case's reason once per repeat and to have let
// out the translated frame.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  cidrIdentity,
  datapathConfig,
  DIRECTION,
  ENDPOINT_FLAG,
  endpointInfo,
  ipcacheKey,
  ipcacheValue,
  ipv4Key,
  loadGlobals,
  PASSTHROUGH_PROGRAM,
  policyCidrKey,
  policyCidrValue,
  policyKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  REASON,
  reasonName,
  sumMetrics,
  u32Key,
  type ReasonName,
  policyPortKey,
} from '../../datapath/abi.ts';
import { planFrontends, portPrefixes, type LbFrontend } from '../../agent/datapath-plan.ts';
import { formatIpv4, parseIpv4 } from '../../agent/ipam/ipv4.ts';
import { Loader, type MapEntry, type TestRunResult } from '../../datapath/loader-client.ts';
import { ipv4Packet, TCP_ACK, TCP_SYN } from '../../datapath/packet.ts';
import { Prng } from './prng.ts';
import { revision } from './revision.ts';
import { median, percentile } from './stats.ts';

const ENDPOINT_OBJECT = fileURLToPath(new URL('../../build/bpf/endpoint.bpf.o', import.meta.url));
const PASSTHROUGH_OBJECT = fileURLToPath(new URL('../../build/bpf/passthrough.bpf.o', import.meta.url));
const PROBE_SOURCE = fileURLToPath(new URL('./probe.bpf.c', import.meta.url));
const BPF_LIB = fileURLToPath(new URL('../../bpf/lib', import.meta.url));
const BPF_DIR = fileURLToPath(new URL('../../bpf', import.meta.url));
const TEST_IFINDEX = 1; // test_run gives the packet the loopback device
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const SIZES = [10, 1_000, 100_000] as const;
const REVISION = 7;

// The endpoint under test and the peers of the measured packets.
const POD = '10.1.0.10';
const EP_ID = parseIpv4(POD); // as agent/datapath-plan.ts numbers endpoints
const PORT = 8080;
const PEER = { allowed: '10.1.0.5', all: '10.1.0.6', denied: '10.1.0.7', range: '10.1.0.8', world: '198.51.100.7', block: '203.0.113.9' };
const ID = { pod: 0x20000, allowed: 0x20001, all: 0x20002, denied: 0x20003, range: 0x20004 };
/** The range PEER.range is allowed on: PORT inside, 17 aligned prefixes in pal_policy_ports. */
const RANGE = { from: 1001, to: 30000 };
const BLOCK = { cidr: '203.0.113.0/24', region: cidrIdentity(5) };
// Filler: identities from FILL_ID, addresses from FILL_ADDR, other endpoints from OTHER_EP.
const FILL_ID = 0x10000;
// Peers of the new-connection harness (fresh.bpf.c): consecutive addresses, all of identity ID.allowed.
const FRESH = { first: '10.3.0.0', peers: 64 };
const FILL_ADDR = parseIpv4('10.64.0.0');
const OTHER_EP = parseIpv4('10.1.1.0');
const OTHER_ENDPOINTS = 1000;
/** The Service connection the pod opens: POD:podPort -> ip:port, translated to backend:backendPort. */
const SERVICE = { ip: '10.96.0.10', port: 80, backend: '10.1.0.9', backendPort: 8080, podPort: 43000 };
// Filler frontends: consecutive cluster IPs from FILL_FRONTEND, each with one filler address as its backend.
const FILL_FRONTEND = parseIpv4('10.96.16.0');

type Program = 'pal_to_pod' | 'pal_from_pod' | typeof PASSTHROUGH_PROGRAM;

interface Case {
  name: string;
  /** The hook; pal_to_pod unless said. */
  program?: Program;
  /** Part of the targets (otherwise a diagnosis variant). */
  main: boolean;
  /** What the case adds to the path, for the reader. */
  path: string;
  packet: Buffer;
  flags: number;
  expect: ReasonName;
}

const ENFORCED = ENDPOINT_FLAG.INGRESS_ENFORCED;
const syn = (saddr: string, sport = 40000) => ipv4Packet({ saddr, daddr: POD, protocol: 'TCP', sport, dport: PORT, tcpFlags: TCP_SYN });
const ack = (saddr: string, sport = 40000) => ipv4Packet({ saddr, daddr: POD, protocol: 'TCP', sport, dport: PORT, tcpFlags: TCP_ACK });
const tcp = (saddr: string, sport: number, daddr: string, dport: number, tcpFlags: number) => ipv4Packet({ saddr, daddr, protocol: 'TCP', sport, dport, tcpFlags });
/** The reply direction of a connection the pod opened (pod:REPLY_PORT -> allowed:9090). */
const REPLY_PORT = 41000;
const podOpens = tcp(POD, REPLY_PORT, PEER.allowed, 9090, TCP_SYN);
/** That connection's next packet from the pod: the established EGRESS case (its destination is no frontend). */
const podAck = tcp(POD, REPLY_PORT, PEER.allowed, 9090, TCP_ACK);
/** The Service connection: its opening SYN, an established ACK to the frontend, and a reply ACK from the backend. */
const serviceSyn = tcp(POD, SERVICE.podPort, SERVICE.ip, SERVICE.port, TCP_SYN);
const serviceAck = tcp(POD, SERVICE.podPort, SERVICE.ip, SERVICE.port, TCP_ACK);
const backendAck = tcp(SERVICE.backend, SERVICE.backendPort, POD, SERVICE.podPort, TCP_ACK);
/** IPv6 (ethertype 0x86dd) from a peer: dropped at every endpoint until IPv6 is enforced. */
const nonIp = (() => {
  const p = syn(PEER.allowed);
  p.writeUInt16BE(0x86dd, 12);
  return p;
})();

const CASES: Case[] = [
  { name: 'established: ACK', main: true, path: 'parse + CT hit + config', packet: ack(PEER.allowed), flags: ENFORCED, expect: 'ALLOW_ESTABLISHED' },
  { name: 'denied: SYN', main: true, path: 'ep + ipcache4 + policy summary miss', packet: syn(PEER.denied), flags: ENFORCED, expect: 'DROP_POLICY' },
  { name: 'SYN of a tracked tuple', main: false, path: 'ep + ipcache4 + policy summary + port, CT replace', packet: syn(PEER.allowed), flags: ENFORCED, expect: 'ALLOW_POLICY' },
  { name: 'IPv6 frame', main: false, path: 'parse + ep', packet: nonIp, flags: ENFORCED, expect: 'DROP_NOT_IPV4' },
  { name: 'reply: ACK', main: false, path: 'parse + CT hit + config (the same entry)', packet: ipv4Packet({ saddr: PEER.allowed, daddr: POD, protocol: 'TCP', sport: 9090, dport: REPLY_PORT, tcpFlags: TCP_ACK }), flags: ENFORCED, expect: 'ALLOW_REPLY' },
  { name: 'SYN via port range', main: false, path: 'ep + ipcache4 + policy summary + LPM pal_policy_ports, CT replace', packet: syn(PEER.range), flags: ENFORCED, expect: 'ALLOW_POLICY' },
  { name: 'SYN, ALL class', main: false, path: 'ep + ipcache4 + policy summary, CT replace', packet: syn(PEER.all), flags: ENFORCED, expect: 'ALLOW_POLICY' },
  { name: 'denied: world peer', main: false, path: 'ep + ipcache4 miss + LPM ipcache + policy miss', packet: syn(PEER.world), flags: ENFORCED, expect: 'DROP_POLICY' },
  { name: 'denied: SYN, ep has ANY rules', main: false, path: 'denied + ANY summary miss', packet: syn(PEER.denied), flags: ENFORCED | ENDPOINT_FLAG.INGRESS_ANY, expect: 'DROP_POLICY' },
  { name: 'denied: SYN, ep has CIDR rules', main: false, path: 'denied + LPM policy_cidr miss', packet: syn(PEER.denied), flags: ENFORCED | ENDPOINT_FLAG.INGRESS_CIDR, expect: 'DROP_POLICY' },
  { name: 'SYN via ipBlock', main: false, path: 'ipcache4 miss + 2 LPM + 3 policy, CT replace', packet: syn(PEER.block), flags: ENFORCED | ENDPOINT_FLAG.INGRESS_CIDR, expect: 'ALLOW_POLICY' },
  { name: 'egress established: ACK', main: false, program: 'pal_from_pod', path: 'pal_from_pod: parse + lb4 miss + CT hit + config', packet: podAck, flags: ENFORCED, expect: 'ALLOW_ESTABLISHED' },
];

interface Tuple {
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
}

/** A case measured through the restore harness (RESTORE_SOURCE): the hook's copy runs on `packet` as sent, every run. */
interface HarnessCase {
  name: string;
  path: string;
  hook: 'pal_from_pod' | 'pal_to_pod';
  packet: Buffer;
  expect: ReasonName;
  /** The tuple of the frame the hook lets out: translated for a Service packet. */
  out: Tuple;
}

const HARNESS_CASES: HarnessCase[] = [
  {
    name: 'egress established (check)',
    path: 'the hot table\'s "egress established: ACK" again: the harness\'s own bias',
    hook: 'pal_from_pod',
    packet: podAck,
    expect: 'ALLOW_ESTABLISHED',
    out: { saddr: POD, sport: REPLY_PORT, daddr: PEER.allowed, dport: 9090 },
  },
  {
    name: 'Service: established ACK',
    path: 'pal_from_pod: parse + lb4 hit + CT hit (SERVICE) + CT hit (REVERSE) + config + destination rewrite',
    hook: 'pal_from_pod',
    packet: serviceAck,
    expect: 'ALLOW_ESTABLISHED',
    out: { saddr: POD, sport: SERVICE.podPort, daddr: SERVICE.backend, dport: SERVICE.backendPort },
  },
  {
    name: 'Service: reply ACK',
    path: 'pal_to_pod: parse + CT hit (REVERSE) + config + source rewrite',
    hook: 'pal_to_pod',
    packet: backendAck,
    expect: 'ALLOW_REPLY',
    out: { saddr: SERVICE.ip, sport: SERVICE.port, daddr: POD, dport: SERVICE.podPort },
  },
];

interface Copy {
  size: number;
  loader: Loader;
  pinDir: string;
  /** pal_endpoints[TEST_IFINDEX].flags as last written. */
  flags: number;
  /** Filler peers allowed to the endpoint under test, and filler peers it denies (for the spread mode). */
  allowedPeers: string[];
  deniedPeers: string[];
  counts: Record<string, number>;
}

export interface PacketBenchOptions {
  repeat?: number;
  rounds?: number;
  spreadRounds?: number;
  spreadPeers?: number;
  /** New connections per run of the fresh harness; rounds x this (11 x 20,000 by default) stays under PAL_CT_MAX, so the LRU never evicts. */
  freshRepeat?: number;
}

export async function benchPacket(options: PacketBenchOptions = {}): Promise<void> {
  const repeat = options.repeat ?? Number(process.env.PAL_BENCH_REPEAT ?? 500_000);
  const rounds = options.rounds ?? Number(process.env.PAL_BENCH_ROUNDS ?? 11);
  const spreadRounds = options.spreadRounds ?? 5;
  const spreadPeers = options.spreadPeers ?? 256;
  const freshRepeat = options.freshRepeat ?? 20_000;
  const rng = new Prng(0x5eed);

  const bpffs = await mkdtemp(join(tmpdir(), 'pal-bench-packet-'));
  const work = await mkdtemp(join(tmpdir(), 'pal-bench-probe-'));
  const loaders: Loader[] = [];
  let mounted = false;
  try {
    await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
    mounted = true;
    const start = async () => {
      const l = await Loader.start({ onLog: () => {} });
      loaders.push(l);
      return l;
    };

    // The pass-through baseline, in its own loader and pin directory.
    const base = await start();
    await mkdir(join(bpffs, 'passthrough'));
    const passObject = await base.load(PASSTHROUGH_OBJECT, join(bpffs, 'passthrough'));

    const copies: Copy[] = [];
    let programIds: Record<string, number> = {};
    for (const size of SIZES) {
      const loader = await start();
      const pinDir = join(bpffs, `n${size}`);
      await mkdir(pinDir);
      const loaded = await loader.load(ENDPOINT_OBJECT, pinDir, { globals: loadGlobals({ hostReachesPods: true }) });
      programIds = Object.fromEntries(loaded.programs.map((p) => [p.name, p.id]));
      const copy: Copy = { size, loader, pinDir, flags: -1, allowedPeers: [], deniedPeers: [], counts: {} };
      const lbCapacity = loaded.maps.find((m) => m.name === 'pal_lb4')!.maxEntries;
      await fill(copy, rng, lbCapacity);
      copies.push(copy);
    }
    programIds[PASSTHROUGH_PROGRAM] = passObject.programs.find((p) => p.name === PASSTHROUGH_PROGRAM)!.id;
    const harness = await loadHarness({ work, copies, start });
    Object.assign(programIds, harness.programIds);

    // Check every case's path once (and create the connections the ACK cases need).
    for (const copy of copies) {
      await expectReason(copy, 'pal_from_pod', podOpens, ENFORCED, 'PASS_UNSELECTED');
      await expectReason(copy, 'pal_to_pod', syn(PEER.allowed), ENFORCED, 'ALLOW_POLICY');
      const opened = await expectReason(copy, 'pal_from_pod', serviceSyn, ENFORCED, 'PASS_UNSELECTED');
      expectTuple(`the Service SYN at ${copy.size}`, opened.data, { saddr: POD, sport: SERVICE.podPort, daddr: SERVICE.backend, dport: SERVICE.backendPort });
      for (const c of CASES) await expectReason(copy, c.program ?? 'pal_to_pod', c.packet, c.flags, c.expect);
      for (const c of HARNESS_CASES) await checkHarnessCase(copy, harness.loaders.get(copy)!, c);
    }
    const check = await base.testRun(PASSTHROUGH_PROGRAM, syn(PEER.allowed));
    if (check.retval !== TC_ACT_OK) throw new Error(`pal_passthrough returned ${check.retval}`);

    // ---- hot: one packet, `repeat` times per run
    const hot = new Map<string, number[]>(); // `${case}@${size}` -> ns per round
    const passHot: number[] = [];
    const viaHarness = new Map<string, number[]>(); // `${harness case}@${size}` -> ns per round
    const harnessBase = new Map<number, number[]>(); // size -> the driver with the empty target, ns per round
    for (let round = 0; round < rounds; round++) {
      const runs: Array<() => Promise<void>> = [];
      for (const copy of copies) {
        for (const c of CASES) {
          runs.push(async () => {
            const ns = await timed(copy, c, repeat);
            push(hot, `${c.name}@${copy.size}`, ns);
          });
        }
        const driver = harness.loaders.get(copy)!;
        for (const c of HARNESS_CASES) runs.push(async () => push(viaHarness, `${c.name}@${copy.size}`, await timedHarness(copy, driver, c, repeat)));
        runs.push(async () => push(harnessBase, copy.size, await harnessBaseline(driver, repeat)));
      }
      const passRuns: number[] = [];
      for (let i = 0; i < 3; i++) runs.push(async () => void passRuns.push((await base.testRun(PASSTHROUGH_PROGRAM, syn(PEER.allowed), { repeat })).durationNs));
      for (const run of rng.shuffle(runs)) await run();
      passHot.push(median(passRuns));
    }

    // ---- fresh: a connection never seen per run (fresh.bpf.c), against the same driver's empty target
    const fresh = await runFresh({ work, copies, start, rounds, repeat: freshRepeat, rng });

    // ---- spread: a different allowed peer per run, repeat 1
    const spread = new Map<string, number[]>();
    const passSpread: number[] = [];
    for (let round = 0; round < spreadRounds; round++) {
      for (const copy of rng.shuffle(copies)) {
        const peers = rng.shuffle(copy.allowedPeers).slice(0, spreadPeers);
        const denied = rng.shuffle(copy.deniedPeers).slice(0, spreadPeers);
        const sport = 42000 + round; // a new tuple per round
        await setFlags(copy, ENFORCED);
        const one = async (kind: string, packet: Buffer, want: number) => {
          const r = await copy.loader.testRun('pal_to_pod', packet);
          if (r.retval !== want) throw new Error(`spread ${kind} ${packet.toString('hex')} at ${copy.size}: retval ${r.retval}`);
          push(spread, `${kind}@${copy.size}`, r.durationNs);
          passSpread.push((await base.testRun(PASSTHROUGH_PROGRAM, packet)).durationNs);
        };
        for (const peer of peers) await one('new', syn(peer, sport), TC_ACT_OK);
        for (const peer of rng.shuffle(peers)) await one('established', ack(peer, sport), TC_ACT_OK);
        for (const peer of denied) await one('denied', syn(peer, sport), TC_ACT_SHOT);
      }
    }

    // ---- probes: one operation each, on the maps of the smallest and largest copies
    const probes = await runProbes({ bpffs, work, copies: [copies[0]!, copies.at(-1)!], start, repeat, rounds, rng });

    const insns = await instructionCounts(programIds, loaders.map((l) => l.pid));
    const code = await revision(['bpf', 'datapath']);
    report({ repeat, rounds, spreadRounds, spreadPeers, copies, hot, passHot, viaHarness, harnessBase, fresh, freshRepeat, spread, passSpread, insns, probes, code });
  } finally {
    for (const l of loaders) await l.close().catch(() => undefined);
    if (mounted) await execa('umount', [bpffs], { reject: false });
    await rm(bpffs, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

// ---- probes (e2e/bench/probe.bpf.c)

const PROBES: Array<{ name: string; about: string }> = [
  { name: 'probe_parse', about: 'pal_parse of a TCP SYN' },
  { name: 'probe_endpoint', about: 'pal_endpoints hash lookup (hit)' },
  { name: 'probe_metrics', about: 'pal_metrics per-CPU counter update' },
  { name: 'probe_config', about: 'pal_config array read' },
  { name: 'probe_ipcache4_hit', about: 'pal_ipcache4 hash lookup (hit)' },
  { name: 'probe_ipcache4_miss', about: 'pal_ipcache4 hash lookup (miss)' },
  { name: 'probe_lpm_ipcache_miss', about: 'pal_ipcache LPM lookup (miss, 4 prefixes)' },
  { name: 'probe_policy_hit', about: 'pal_policy hash lookup (hit)' },
  { name: 'probe_policy_miss', about: 'pal_policy hash lookup (miss)' },
  { name: 'probe_ct_hit', about: 'pal_ct4 LRU lookup (hit)' },
  { name: 'probe_ct_miss', about: 'pal_ct4 LRU lookup (miss)' },
  { name: 'probe_ct_update', about: 'pal_ct4 update of an existing tuple (what a SYN does)' },
  { name: 'probe_ct_lookup_write', about: 'pal_ct4 lookup + write the value in place' },
  { name: 'probe_ct_update_percpu_lru', about: 'same update, LRU_HASH with BPF_F_NO_COMMON_LRU' },
  { name: 'probe_ct_update_hash', about: 'same update, plain preallocated HASH' },
  { name: 'probe_ct_insert_fresh', about: 'LRU (as pal_ct4) insert of a NEW tuple per run, table full: evicting' },
  { name: 'probe_ktime', about: 'bpf_ktime_get_ns' },
  { name: 'probe_ktime_coarse', about: 'bpf_ktime_get_coarse_ns' },
  { name: 'probe_jiffies', about: 'bpf_jiffies64 (inlined)' },
  { name: 'probe_helper_call', about: 'bpf_get_prandom_u32: the floor of one helper call' },
  { name: 'probe_call8', about: '8 BPF-to-BPF calls of a trivial function (total)' },
];

/** The operations each main case performs (endpoint.bpf.c), as probes. */
const MODEL: Record<string, string[]> = {
  'new connection': ['probe_parse', 'probe_endpoint', 'probe_config', 'probe_ipcache4_hit', 'probe_policy_hit', 'probe_policy_hit', 'probe_jiffies', 'probe_ct_insert_fresh_fill', 'probe_metrics'],
  'established: ACK': ['probe_parse', 'probe_ct_hit', 'probe_config', 'probe_jiffies', 'probe_metrics'],
  'denied: SYN': ['probe_parse', 'probe_endpoint', 'probe_config', 'probe_ipcache4_hit', 'probe_policy_miss', 'probe_metrics'],
};

interface ProbeFigures {
  sizes: number[];
  /** `${probe}@${size}` -> ns per round; probe_empty included. */
  runs: Map<string, number[]>;
  error?: string;
}

async function runProbes(o: {
  bpffs: string;
  work: string;
  copies: Copy[];
  start: () => Promise<Loader>;
  repeat: number;
  rounds: number;
  rng: Prng;
}): Promise<ProbeFigures> {
  const sizes = o.copies.map((c) => c.size);
  const runs = new Map<string, number[]>();
  const object = join(o.work, 'probe.bpf.o');
  try {
    await compileBpf(PROBE_SOURCE, object);
  } catch (error) {
    return { sizes, runs, error: `cannot build the probes: ${(error as Error).message.split('\n')[0]}` };
  }
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return b;
  };
  const globals = {
    probe_ep_id: u32Key.encode(EP_ID),
    probe_pod: ipv4Key.encode(POD),
    probe_peer_allowed: ipv4Key.encode(PEER.allowed),
    probe_peer_denied: ipv4Key.encode(PEER.denied),
    probe_peer_world: ipv4Key.encode(PEER.world),
    probe_id_allowed: u32Key.encode(ID.allowed),
    probe_id_denied: u32Key.encode(ID.denied),
    probe_sport: u16(40000),
    probe_dport: u16(PORT),
    ...loadGlobals({ hostReachesPods: true }),
  };
  const loaders: Array<{ size: number; loader: Loader }> = [];
  for (const copy of o.copies) {
    const loader = await o.start();
    await loader.load(object, copy.pinDir, { globals });
    loaders.push({ size: copy.size, loader });
  }
  // The CT tuple the probes use exists (the benchmark's SYNs made it); the checks below fail loudly otherwise.
  const packet = syn(PEER.allowed);
  for (const { size, loader } of loaders) {
    for (const p of [{ name: 'probe_empty' }, ...PROBES]) {
      const r = await loader.testRun(p.name, packet);
      if (r.retval !== TC_ACT_OK) throw new Error(`${p.name} at ${size}: retval ${r.retval} (the probe's map state is not the expected one)`);
    }
  }
  // Fresh inserts while the table fills (2 x 100,000 < PAL_CT_MAX): before the rounds, which go on to evict.
  for (const { size, loader } of loaders) {
    for (let i = 0; i < 2; i++) push(runs, `probe_ct_insert_fresh_fill@${size}`, (await loader.testRun('probe_ct_insert_fresh', packet, { repeat: 100_000 })).durationNs);
  }
  for (let round = 0; round < o.rounds; round++) {
    const list: Array<() => Promise<void>> = [];
    for (const { size, loader } of loaders) {
      for (const p of [{ name: 'probe_empty' }, { name: 'probe_empty' }, ...PROBES]) {
        list.push(async () => push(runs, `${p.name}@${size}`, (await loader.testRun(p.name, packet, { repeat: o.repeat })).durationNs));
      }
    }
    for (const run of o.rng.shuffle(list)) await run();
  }
  return { sizes, runs };
}

// ---- new connections (e2e/bench/fresh.bpf.c)

const FRESH_SOURCE = fileURLToPath(new URL('./fresh.bpf.c', import.meta.url));

interface FreshFigures {
  /** size -> per round: ns per new connection added over the same driver's empty target */
  added: Map<number, number[]>;
  /** size -> per round: the driver with the empty target, ns per run */
  baseline: Map<number, number[]>;
}

/**
 * Loads the harness into every copy's pin directory (its maps), checks that a
 * run of it really opens `n` connections never seen (n ALLOW_POLICY verdicts,
 * n new pal_ct4 entries), then measures it against its empty-target twin.
 */
async function runFresh(o: { work: string; copies: Copy[]; start: () => Promise<Loader>; rounds: number; repeat: number; rng: Prng }): Promise<FreshFigures> {
  const object = join(o.work, 'fresh.bpf.o');
  await compileBpf(FRESH_SOURCE, object);
  const globals = { ...loadGlobals({ hostReachesPods: true }), fresh_first_peer: ipv4Key.encode(FRESH.first), fresh_peers: u32Key.encode(FRESH.peers) };
  const harness = new Map<Copy, Loader>();
  for (const copy of o.copies) {
    const loader = await o.start();
    await loader.load(object, copy.pinDir, { globals });
    harness.set(copy, loader);
    await setFlags(copy, ENFORCED);
    const check = 1000;
    const ctBefore = (await copy.loader.dump('pal_ct4')).length;
    const before = await metrics(copy.loader);
    const r = await loader.testRun('fresh_syn', syn(PEER.allowed), { repeat: check });
    const after = await metrics(copy.loader);
    const ctAfter = (await copy.loader.dump('pal_ct4')).length;
    const allowed = Number((after.get(REASON.ALLOW_POLICY) ?? 0n) - (before.get(REASON.ALLOW_POLICY) ?? 0n));
    if (r.retval !== TC_ACT_OK || allowed !== check || ctAfter - ctBefore !== check) {
      throw new Error(`fresh harness at ${copy.size}: retval ${r.retval}, ${allowed} ALLOW_POLICY and ${ctAfter - ctBefore} new pal_ct4 entries for ${check} runs`);
    }
  }
  const added = new Map<number, number[]>();
  const baseline = new Map<number, number[]>();
  for (let round = 0; round < o.rounds; round++) {
    for (const copy of o.rng.shuffle(o.copies)) {
      const loader = harness.get(copy)!;
      const pair = o.rng.shuffle(['fresh_syn', 'fresh_baseline']);
      const ns: Record<string, number> = {};
      for (const program of pair) ns[program] = (await loader.testRun(program, syn(PEER.allowed), { repeat: o.repeat })).durationNs;
      push(added, copy.size, ns.fresh_syn! - ns.fresh_baseline!);
      push(baseline, copy.size, ns.fresh_baseline!);
    }
  }
  return { added, baseline };
}

// ---- Service cases (the restore harness)

/** The frames the harness restores: Ethernet + IPv4 + TCP, as ipv4Packet builds them. */
const FRAME_LEN = 54;

/**
 * The harness of the Service cases (restore.bpf.c), compiled at run time
 * like fresh.bpf.c. The hooks
 * rewrite a Service packet in place and test_run gives every run the same
 * skb, so a driver first writes the case's frame back (from restore_frame,
 * which the benchmark sets before each run), then tail-calls a copy of the
 * hook compiled from bpf/endpoint.bpf.c itself, on the benchmark copy's
 * pinned maps (loaded into its pin directory, libbpf reuses the pins). The
 * baseline is the same driver tail-calling an empty program, so the
 * driver's own cost (an array lookup, the 54-byte store, the tail call)
 * cancels out of the difference. The datapath's programs are renamed so
 * that their pins do not replace the copy's.
 */
const RESTORE_SOURCE = fileURLToPath(new URL('./restore.bpf.c', import.meta.url));

const DRIVER = { pal_from_pod: 'restore_from_pod', pal_to_pod: 'restore_to_pod' } as const;

/** Builds the harness and loads it into every copy's pin directory; also returns its hooks' program ids (to compare their size with the datapath's). */
async function loadHarness(o: { work: string; copies: Copy[]; start: () => Promise<Loader> }): Promise<{ loaders: Map<Copy, Loader>; programIds: Record<string, number> }> {
  const object = join(o.work, 'restore.bpf.o');
  await compileBpf(RESTORE_SOURCE, object);
  const loaders = new Map<Copy, Loader>();
  let programIds: Record<string, number> = {};
  for (const copy of o.copies) {
    const loader = await o.start();
    const loaded = await loader.load(object, copy.pinDir, { globals: loadGlobals({ hostReachesPods: true }) });
    programIds = Object.fromEntries(loaded.programs.filter((p) => p.name.startsWith('restore_pal_')).map((p) => [`${p.name} (harness)`, p.id]));
    loaders.set(copy, loader);
  }
  return { loaders, programIds };
}

/** A harness case through the hook itself (reason and the frame let out), then through the harness, 1,000 runs. */
async function checkHarnessCase(copy: Copy, driver: Loader, c: HarnessCase): Promise<void> {
  const direct = await expectReason(copy, c.hook, c.packet, ENFORCED, c.expect);
  expectTuple(`${c.name} at ${copy.size} through ${c.hook}`, direct.data, c.out);
  await timedHarness(copy, driver, c, 1000);
}

/**
 * One timed run of a harness case, checked: the `repeat` runs counted the
 * case's reason, each of them and nothing else (without the restore, the
 * second run would count PASS_UNSELECTED: see the header), and the last
 * frame let out is translated as expected (a reply whose REVERSE entry was
 * replaced would still count ALLOW_REPLY, untranslated).
 */
async function timedHarness(copy: Copy, driver: Loader, c: HarnessCase, repeat: number): Promise<number> {
  if (c.packet.length !== FRAME_LEN) throw new Error(`${c.name}: a ${c.packet.length}-byte frame, the harness restores ${FRAME_LEN}`);
  await setFlags(copy, ENFORCED);
  await driver.update('restore_frame', [{ key: u32Key.encode(0), value: c.packet }]);
  const before = await metrics(copy.loader);
  const r = await driver.testRun(DRIVER[c.hook], c.packet, { repeat });
  const counted = countedBetween(before, await metrics(copy.loader));
  const want = `${c.expect} x${repeat}`;
  if (r.retval !== TC_ACT_OK || counted.join(',') !== want) {
    throw new Error(`${c.name} at ${copy.size} through the harness: retval ${r.retval}, counted ${counted.join(',') || 'nothing'}, expected ${want}`);
  }
  expectTuple(`${c.name} at ${copy.size} through the harness`, r.data, c.out);
  return r.durationNs;
}

async function harnessBaseline(driver: Loader, repeat: number): Promise<number> {
  const r = await driver.testRun('restore_baseline', podAck, { repeat });
  if (r.retval !== TC_ACT_OK) throw new Error(`restore_baseline returned ${r.retval}`);
  return r.durationNs;
}

function tupleOf(frame: Buffer): Tuple {
  const address = (at: number) => [...frame.subarray(at, at + 4)].join('.');
  return { saddr: address(26), sport: frame.readUInt16BE(34), daddr: address(30), dport: frame.readUInt16BE(36) };
}

function expectTuple(what: string, frame: Buffer, want: Tuple): void {
  const got = tupleOf(frame);
  const text = (t: Tuple) => `${t.saddr}:${t.sport} -> ${t.daddr}:${t.dport}`;
  if (text(got) !== text(want)) throw new Error(`${what}: let out ${text(got)}, expected ${text(want)}`);
}

/** Builds one of the benchmark's own BPF sources as bpf/bpf.mk builds the datapath; bpf/ is on the include path for fresh.bpf.c. */
async function compileBpf(source: string, object: string): Promise<void> {
  const { stdout: machine } = await execa('cc', ['-dumpmachine']);
  await execa('clang', ['-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-I', BPF_LIB, '-I', BPF_DIR, '-I', `/usr/include/${machine.trim()}`, '-Wall', '-Werror', '-c', source, '-o', object]);
}

// ---- map contents

async function fill(copy: Copy, rng: Prng, lbCapacity: number): Promise<void> {
  const { loader, size } = copy;
  const pol = (endpointId: number, identity: number, protocol: number, dport: number, ruleId: number, flags = 0): MapEntry => ({
    key: policyKey.encode({ endpointId, identity, direction: DIRECTION.INGRESS, protocol, dport }),
    value: policyValue.encode({ ruleId, flags }),
  });
  const prefixes = (endpointId: number, identity: number, from: number, to: number, ruleId: number): MapEntry[] =>
    portPrefixes(from, to).map((block) => ({
      key: policyPortKey.encode({ endpointId, identity, direction: DIRECTION.INGRESS, protocol: PROTOCOL.TCP, ...block }),
      value: policyValue.encode({ ruleId, flags: 0 }),
    }));
  const ipc = (addr: string, identity: number): MapEntry => ({ key: ipv4Key.encode(addr), value: ipcacheValue.encode({ identity, flags: 0 }) });

  // Filler: `size` policy entries in groups of two (summary + one port) for
  // (endpoint, identity) pairs, half of them of the endpoint under test (on
  // PORT, so that their peers are allowed: the spread mode's peers), half of
  // other endpoints; `size` addresses over those identities.
  const groups = Math.floor(size / 2);
  const policy: MapEntry[] = [];
  // And as many port-prefix entries: a range of 100 to 1000 ports for one
  // (endpoint, identity) in every fourth group, so the LPM trie has `size` entries.
  const ports: MapEntry[] = [];
  for (let g = 3; ports.length < size; g += 4) {
    const from = 1024 + rng.int(60000);
    ports.push(...prefixes(g % 2 === 0 ? EP_ID : OTHER_EP + (g % OTHER_ENDPOINTS), FILL_ID + g, from, from + 100 + rng.int(900), 2000 + g));
  }
  ports.length = size;
  for (let g = 0; g < groups; g++) {
    const mine = g % 2 === 0;
    const ep = mine ? EP_ID : OTHER_EP + (g % OTHER_ENDPOINTS);
    const port = mine ? PORT : 1024 + rng.int(60000);
    policy.push(pol(ep, FILL_ID + g, 0, 0, 1000 + g, POLICY_FLAG.TCP_PORTS), pol(ep, FILL_ID + g, PROTOCOL.TCP, port, 1000 + g));
  }
  const ipcache: MapEntry[] = [];
  for (let k = 0; k < size; k++) {
    const addr = formatIpv4(FILL_ADDR + k);
    ipcache.push(ipc(addr, FILL_ID + (k % groups)));
    ((k % groups) % 2 === 0 ? copy.allowedPeers : copy.deniedPeers).push(addr);
  }
  const fillerPolicy = policy.length;
  const fillerIpcache = ipcache.length;

  // What the measured packets need.
  policy.push(
    pol(EP_ID, ID.allowed, 0, 0, 11, POLICY_FLAG.TCP_PORTS),
    pol(EP_ID, ID.allowed, PROTOCOL.TCP, PORT, 12),
    pol(EP_ID, ID.all, 0, 0, 13, POLICY_FLAG.ALL),
    pol(EP_ID, BLOCK.region, 0, 0, 0, POLICY_FLAG.TCP_PORTS),
    pol(EP_ID, BLOCK.region, PROTOCOL.TCP, PORT, 14),
    pol(EP_ID, ID.range, 0, 0, 0, POLICY_FLAG.TCP_RANGES),
  );
  ports.push(...prefixes(EP_ID, ID.range, RANGE.from, RANGE.to, 15));
  ipcache.push(ipc(PEER.range, ID.range), ipc(PEER.allowed, ID.allowed), ipc(PEER.all, ID.all), ipc(PEER.denied, ID.denied), ipc(POD, ID.pod));
  for (let k = 0; k < FRESH.peers; k++) ipcache.push(ipc(formatIpv4(parseIpv4(FRESH.first) + k), ID.allowed));
  const lpm = ['10.250.0.0/16', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16'].map((cidr) => ({
    key: ipcacheKey.encode(cidr),
    value: ipcacheValue.encode({ identity: 2, flags: 0 }),
  }));
  const cidr = [{ key: policyCidrKey.encode({ endpointId: EP_ID, direction: DIRECTION.INGRESS, cidr: BLOCK.cidr }), value: policyCidrValue.encode({ identity: BLOCK.region }) }];

  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: REVISION, flags: 0 }) }]);
  await loader.update('pal_policy', policy);
  await loader.update('pal_ipcache4', ipcache);
  await loader.update('pal_ipcache', lpm);
  await loader.update('pal_policy_cidr', cidr);
  await loader.update('pal_policy_ports', ports);
  const lb = await fillServices(loader, Math.min(size, lbCapacity - 1));
  await setFlags(copy, ENFORCED);
  copy.counts = { fillerPolicy, fillerIpcache, policy: policy.length, ipcache4: ipcache.length, ipcacheLpm: lpm.length, policyCidr: cidr.length, policyPorts: ports.length, ...lb };
}

/**
 * `filler` frontends with one backend each (a filler address), and the
 * measured Service, written as the agent writes them (planFrontends). At
 * N=100,000 the filler is capped to what pal_lb4 holds beside the measured
 * frontend: the map is full.
 */
async function fillServices(loader: Loader, filler: number): Promise<{ fillerLb4: number; lb4: number; lb4Backends: number }> {
  const frontends: LbFrontend[] = [];
  for (let k = 0; k < filler; k++) {
    frontends.push({ service: `fill/s${k}`, ip: formatIpv4(FILL_FRONTEND + k), port: 80, protocol: 'TCP', clientAffinity: false, backends: [{ ip: formatIpv4(FILL_ADDR + k), port: 8080 }] });
  }
  frontends.push({ service: 'bench/web', ip: SERVICE.ip, port: SERVICE.port, protocol: 'TCP', clientAffinity: false, backends: [{ ip: SERVICE.backend, port: SERVICE.backendPort }] });
  const problems: Array<{ endpoint: string; message: string }> = [];
  const planned = planFrontends(frontends, () => Infinity, problems);
  if (problems.length) throw new Error(`filler Services: ${problems.map((p) => p.message).join('; ')}`);
  const hex = (h: string) => Buffer.from(h, 'hex');
  for (const [map, entries] of planned) await loader.update(map, [...entries].map(([key, value]) => ({ key: hex(key), value: hex(value) })));
  return { fillerLb4: filler, lb4: planned.get('pal_lb4')!.size, lb4Backends: planned.get('pal_lb4_backends')!.size };
}

async function setFlags(copy: Copy, flags: number): Promise<void> {
  if (copy.flags === flags) return;
  const value = endpointInfo.encode({ endpointId: EP_ID, identity: ID.pod, flags, ingressDefaultRule: 99, egressDefaultRule: 98, ipv4: POD });
  await copy.loader.update('pal_endpoints', [{ key: u32Key.encode(TEST_IFINDEX), value }]);
  copy.flags = flags;
}

// ---- running

async function timed(copy: Copy, c: Case, repeat: number): Promise<number> {
  await setFlags(copy, c.flags);
  const r = await copy.loader.testRun(c.program ?? 'pal_to_pod', c.packet, { repeat });
  const want = REASON[c.expect] >= 128 ? TC_ACT_SHOT : TC_ACT_OK;
  if (r.retval !== want) throw new Error(`${c.name} at ${copy.size}: retval ${r.retval}, expected ${want}`);
  return r.durationNs;
}

async function expectReason(copy: Copy, program: Program, packet: Buffer, flags: number, expect: ReasonName): Promise<TestRunResult> {
  await setFlags(copy, flags);
  const before = await metrics(copy.loader);
  const result = await copy.loader.testRun(program, packet);
  const counted = countedBetween(before, await metrics(copy.loader));
  if (counted.join(',') !== `${expect} x1`) {
    throw new Error(`${program} at ${copy.size} entries, packet ${packet.toString('hex')}: counted ${counted.join(',') || 'nothing'}, expected ${expect}`);
  }
  return result;
}

/** The reasons counted between two readings of pal_metrics, as `NAME xCOUNT`. */
function countedBetween(before: Map<number, bigint>, after: Map<number, bigint>): string[] {
  return [...after]
    .filter(([code, n]) => n !== (before.get(code) ?? 0n))
    .map(([code, n]) => `${reasonName(code) ?? String(code)} x${n - (before.get(code) ?? 0n)}`);
}

async function metrics(loader: Loader): Promise<Map<number, bigint>> {
  return new Map((await loader.dump('pal_metrics')).map((e) => [e.key.readUInt32LE(0), sumMetrics(e.value).packets]));
}

function push<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Sizes from bpftool; verified_insns from the fdinfo of the loaders' program fds (bpftool 7.1 does not show it). */
async function instructionCounts(ids: Record<string, number>, pids: Array<number | undefined>): Promise<Map<string, string>> {
  const verified = new Map<number, number>();
  for (const pid of pids) {
    if (pid === undefined) continue;
    const dir = `/proc/${pid}/fdinfo`;
    for (const fd of await readdir(dir).catch(() => [] as string[])) {
      const text = await readFile(join(dir, fd), 'utf8').catch(() => '');
      const id = /^prog_id:\s+(\d+)$/m.exec(text);
      const insns = /^verified_insns:\s+(\d+)$/m.exec(text);
      if (id && insns) verified.set(Number(id[1]), Number(insns[1]));
    }
  }
  const out = new Map<string, string>();
  for (const [name, id] of Object.entries(ids)) {
    try {
      const { stdout } = await execa('bpftool', ['prog', 'show', 'id', String(id), '--json']);
      const p = JSON.parse(stdout) as { bytes_xlated?: number; bytes_jited?: number };
      const xlated = p.bytes_xlated === undefined ? '?' : String(p.bytes_xlated / 8);
      const v = verified.get(id);
      out.set(name, `${xlated} insns (xlated), ${p.bytes_jited ?? '?'} bytes jited${v === undefined ? '' : `, verifier processed ${v} insns`}`);
    } catch (error) {
      out.set(name, `bpftool failed: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  return out;
}

// ---- report

interface Figures {
  repeat: number;
  rounds: number;
  spreadRounds: number;
  spreadPeers: number;
  copies: Copy[];
  hot: Map<string, number[]>;
  passHot: number[];
  viaHarness: Map<string, number[]>;
  harnessBase: Map<number, number[]>;
  fresh: FreshFigures;
  freshRepeat: number;
  spread: Map<string, number[]>;
  passSpread: number[];
  insns: Map<string, string>;
  probes: ProbeFigures;
  code: string;
}

const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/**
 * One row of a hot table: per size, the median ns/packet and, in brackets,
 * the median over rounds of what it added over that round's baseline
 * (`baselines(n)[i]` for round i: load shifts both alike); then N=100k/N=10
 * of the totals and of the added costs, and the widest IQR/median.
 */
function hotRow(label: string, totals: (n: number) => number[], baselines: (n: number) => number[], path: string): string {
  const added = (n: number) => median(totals(n).map((v, i) => v - baselines(n)[i]!));
  const iqr = (n: number) => (percentile(totals(n), 75) - percentile(totals(n), 25)) / median(totals(n));
  const cells = SIZES.map((n) => `${ns(median(totals(n)))} (${signed(added(n))})`.padStart(16));
  const ratio = median(totals(100_000)) / median(totals(10));
  const ratioAdded = added(100_000) / Math.max(1, added(10));
  const spread = Math.max(...SIZES.map(iqr));
  return label.padEnd(32) + cells.join('') + `   ${ratio.toFixed(2).padStart(5)}x      | ${ratioAdded.toFixed(2).padStart(5)}x  ${(spread * 100).toFixed(0).padStart(3)}%    ${path}`;
}
const ns = (v: number) => `${v.toFixed(0)}`.padStart(5);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(0)}`.padStart(5);

function report(f: Figures): void {
  const pass = median(f.passHot);
  const passSpread = median(f.passSpread);
  const added = (key: string) => {
    // Per round, against that round's pass-through: load shifts both alike.
    const list = f.hot.get(key)!;
    return median(list.map((v, i) => v - f.passHot[i]!));
  };

  console.log(`packet: BPF_PROG_TEST_RUN of pal_to_pod (tc egress of the host veth = the pod's INGRESS policy) and, where marked, pal_from_pod (tc ingress = the pod's EGRESS policy), repeat ${f.repeat}, ${f.rounds} rounds, every case of every map size and the pass-through interleaved in a shuffled order per round`);
  console.log(`code: ${f.code}; kernel ${release()}`);
  console.log(`map contents per copy (filler + the measured packets' entries):`);
  for (const c of f.copies) {
    console.log(`  N=${String(c.size).padEnd(6)} pal_policy ${c.counts.policy} (${c.counts.fillerPolicy} filler), pal_ipcache4 ${c.counts.ipcache4} (${c.counts.fillerIpcache} filler), pal_ipcache (LPM) ${c.counts.ipcacheLpm}, pal_policy_cidr ${c.counts.policyCidr}, pal_policy_ports (LPM) ${c.counts.policyPorts}, pal_lb4 ${c.counts.lb4} (${c.counts.fillerLb4} filler), pal_lb4_backends ${c.counts.lb4Backends}`);
  }
  console.log(`baseline pal_passthrough: median ${pass.toFixed(0)} ns/packet (rounds ${f.passHot.join(' ')})`);
  console.log('');
  console.log(`hot (one packet repeated): median ns/packet, (added over pass-through, per round)`);
  const header = `${'case'.padEnd(32)}${SIZES.map((n) => `N=${n}`.padStart(16)).join('')}   N=100k/N=10 total | added   IQR/med  path`;
  console.log(header);
  for (const c of CASES) console.log(hotRow((c.main ? '* ' : '  ') + c.name, (n) => f.hot.get(`${c.name}@${n}`)!, () => f.passHot, c.path));
  console.log(`(* = the cases the targets are judged on)`);
  console.log('');
  const driver = (n: number) => f.harnessBase.get(n)!;
  console.log(`Services, through the restore harness (the case's frame written back before every run, then a tail call into a copy of the hook; see RESTORE_SOURCE), in the same rounds: median ns/packet of driver + hook, (added over the same driver with an empty target, per round)`);
  console.log(header);
  for (const c of HARNESS_CASES) console.log(hotRow(`  ${c.name}`, (n) => f.viaHarness.get(`${c.name}@${n}`)!, driver, c.path));
  console.log(`(the driver with an empty target: ${SIZES.map((n) => ns(median(driver(n))).trim()).join(' / ')} ns; pal_passthrough ${pass.toFixed(0)} ns)`);
  console.log('');
  const freshAdded = (n: number) => median(f.fresh.added.get(n)!);
  console.log(`new connection (e2e/bench/fresh.bpf.c: a tuple never seen per run, repeat ${f.freshRepeat}, pal_ct4 filling but never full): median ns added per connection over the same driver with an empty target, per round`);
  console.log(`* ${'new connection'.padEnd(30)}${SIZES.map((n) => `N=${n}: ${signed(freshAdded(n))}`.padStart(16)).join('')}   N=100k/N=10 added ${(freshAdded(100_000) / freshAdded(10)).toFixed(2)}x   (driver with empty target: ${SIZES.map((n) => ns(median(f.fresh.baseline.get(n)!)).trim()).join(' / ')} ns)`);
  console.log('');
  console.log(`spread (repeat 1: one run per packet, a different filler peer each, ${f.spreadRounds} rounds; so caches are as cold as a syscall and the loader leave them): median ns/packet (added over the pass-through's ${passSpread.toFixed(0)} ns at repeat 1), p90`);
  for (const kind of ['new', 'established', 'denied']) {
    const cells = SIZES.map((n) => {
      const list = f.spread.get(`${kind}@${n}`) ?? [];
      return list.length ? `${ns(median(list))} (${signed(median(list) - passSpread)}) p90 ${ns(percentile(list, 90))}` : 'n/a';
    });
    console.log(`  ${kind.padEnd(12)} ${SIZES.map((n, i) => `N=${n}: ${cells[i]}`).join('   ')}`);
  }
  console.log(`  (distinct peers per size, allowed/denied: ${f.copies.map((c) => `N=${c.size}: ${Math.min(c.allowedPeers.length, f.spreadPeers)}/${Math.min(c.deniedPeers.length, f.spreadPeers)}`).join(', ')})`);
  console.log('');
  console.log(`probes (e2e/bench/probe.bpf.c, one operation per program on the copies' own maps, repeat ${f.repeat}): median ns added over probe_empty`);
  if (f.probes.error) console.log(`  ${f.probes.error}`);
  else {
    const empty = (size: number) => median(f.probes.runs.get(`probe_empty@${size}`)!);
    console.log(`  ${'probe_empty (absolute)'.padEnd(28)}${f.probes.sizes.map((n) => `N=${n}: ${ns(empty(n))}`.padStart(18)).join('')}`);
    for (const p of PROBES) {
      const cells = f.probes.sizes.map((n) => `N=${n}: ${signed(median(f.probes.runs.get(`${p.name}@${n}`)!) - empty(n))}`.padStart(18));
      console.log(`  ${p.name.padEnd(28)}${cells.join('')}   ${p.about}`);
    }
    const fill = f.probes.sizes.map((n) => `N=${n}: ${signed(median(f.probes.runs.get(`probe_ct_insert_fresh_fill@${n}`)!) - empty(n))}`.padStart(18));
    console.log(`  ${'  ... while filling'.padEnd(28)}${fill.join('')}   the same while the table fills (first 200,000 inserts, 2 runs)`);
    console.log('');
    console.log(`  the main cases as the sum of their operations' probes (at N=${f.probes.sizes.at(-1)}), beside the measured added cost:`);
    const n = f.probes.sizes.at(-1)!;
    const probe = (name: string) => median(f.probes.runs.get(`${name}@${n}`)!) - empty(n);
    for (const [name, ops] of Object.entries(MODEL)) {
      const sum = ops.reduce((acc, op) => acc + probe(op), 0);
      const parts = [...new Set(ops)].map((op) => `${op.replace('probe_', '')}${ops.filter((x) => x === op).length > 1 ? ` x${ops.filter((x) => x === op).length}` : ''} ${probe(op).toFixed(0)}`);
      const measured = name === 'new connection' ? freshAdded(n) : added(`${name}@${n}`);
      console.log(`    ${name.padEnd(20)} probes ${sum.toFixed(0).padStart(4)} ns, measured ${measured.toFixed(0).padStart(4)} ns = ${parts.join(' + ')}`);
    }
  }
  console.log('');
  console.log('programs:');
  for (const [name, text] of f.insns) console.log(`  ${name.padEnd(16)} ${text}`);
  console.log('');
  console.log('targets:');
  const targets = [
    { name: 'new connection', added: freshAdded, ratio: freshAdded(100_000) / freshAdded(10), of: 'added cost' },
    ...CASES.filter((c) => c.main).map((c) => ({
      name: c.name,
      added: (n: number) => added(`${c.name}@${n}`),
      ratio: median(f.hot.get(`${c.name}@100000`)!) / median(f.hot.get(`${c.name}@10`)!),
      of: 'total',
    })),
  ];
  for (const t of targets) console.log(`  ${verdict(t.ratio <= 1.5)}  ${t.name.padEnd(20)} N=100,000 within 1.5x of N=10: ${t.ratio.toFixed(2)}x (${t.of})`);
  for (const t of targets) {
    const worst = Math.max(...SIZES.map((n) => t.added(n)));
    console.log(`  ${verdict(worst < 60)}  ${t.name.padEnd(20)} added over pass-through < 60 ns: ${worst.toFixed(0)} ns (worst of the three sizes)`);
  }
}
