// Differential test (STYLE 12): the compiled policy's reference verdict
// (policy/evaluate.ts) and the kernel's verdict (the real endpoint programs,
// run by BPF_PROG_TEST_RUN on maps written from agent/datapath-plan.ts) must
// agree for every endpoint, peer, protocol and port of each case. A check
// that the kernel path really ran: metrics count every packet. Deny lanes,
// entities and the CLUSTER class (ADR 0010): on Palisade policies as the
// compiler emits them, and on compiled policy extended by hand through the
// public types (shapes the compiler may not emit, e.g. CLUSTER allows),
// with node, API server, world and INIT peers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { datapathConfig, endpointInfo, IDENTITY, isDrop, MAPS, REASON, sumMetrics, u32Key } from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { clearMaps, scratchDatapath, type ScratchDatapath } from '../datapath/scratch-datapath.ts';
import { ipv4Packet, type L4 } from '../datapath/packet.ts';
import { compile } from '../policy/compile.ts';
import { evaluateDirection } from '../policy/evaluate.ts';
import { apiServerIdentity, identityKey, regionId, ruleRefString } from '../policy/ids.ts';
import { parseAddress } from '../policy/cidr.ts';
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { CidrRegion, CompiledPolicy, DirectionPolicy, EndpointPolicy, NetworkPolicyInput, PalisadePolicyInput, PodInput, PolicyEntry, RuleRef } from '../policy/types.ts';
import { planDatapath, PLANNED_MAPS, ruleId } from './datapath-plan.ts';
import { mapVerdict } from './map-verdict.ts';

const TC_ACT_SHOT = 2;
const TEST_IFINDEX = 1; // test_run gives packets the loopback device unless told otherwise

let datapath: ScratchDatapath;
let loader: Loader;

before(async () => {
  datapath = await scratchDatapath('differential');
  loader = datapath.loader;
});

after(async () => {
  await datapath?.dispose();
});

const namespaces = ['x', 'y', 'z'].map((n) => ({ name: n, labels: { 'kubernetes.io/metadata.name': n, ns: n } }));
const containerPorts = [80, 81].flatMap((p) =>
  (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({ name: `serve-${p}-${protocol.toLowerCase()}`, containerPort: p, protocol })),
);
const pods: PodInput[] = namespaces.flatMap((ns, i) =>
  ['a', 'b', 'c'].map((p, j) => ({ namespace: ns.name, name: p, labels: { pod: p }, ip: `10.200.${i + 1}.${j + 10}`, node: 'n1', containerPorts })),
);
const identities = new Map(pods.map((p, i) => [identityKey(namespaces.find((n) => n.name === p.namespace)!.labels, p.labels), 256 + i]));
const ip = (id: string) => pods.find((p) => `${p.namespace}/${p.name}` === id)!.ip!;

// Each case: policies (the shared examples' and more), judged over every endpoint x peer x protocol x port.
const cases: Array<{ name: string; policies: NetworkPolicyInput[] }> = [
  {
    name: 'ingress from a namespace on a named UDP port',
    policies: [{ namespace: 'z', name: 'p', spec: { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }], ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] } }],
  },
  {
    name: 'ingress from a CIDR with excepts that are pods',
    policies: [{ namespace: 'y', name: 'p', spec: { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`${ip('z/a')}/32`, `${ip('x/c')}/32`] } }] }] } }],
  },
  {
    name: 'egress port ranges per protocol',
    policies: [{ namespace: 'x', name: 'p', spec: { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 79, endPort: 80, protocol: 'TCP' }] }, { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }], ports: [{ port: 81, endPort: 90, protocol: 'UDP' }] }] } }],
  },
  {
    name: 'wide and overlapping port ranges (port prefixes in pal_policy_ports)',
    policies: [
      { namespace: 'y', name: 'wide', spec: { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }], ports: [{ port: 1000, endPort: 5000, protocol: 'TCP' }, { port: 4096, endPort: 9000, protocol: 'TCP' }, { port: 2, endPort: 65534, protocol: 'UDP' }] }] } },
      { namespace: 'z', name: 'wide-egress', spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80, endPort: 81, protocol: 'SCTP' }, { port: 4095, endPort: 4097, protocol: 'TCP' }] }] } },
    ],
  },
  {
    name: 'default policy types with egress rules, and deny-all ingress',
    policies: [
      { namespace: 'y', name: 'p', spec: { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] } },
      { namespace: 'x', name: 'deny', spec: { podSelector: {}, policyTypes: ['Ingress'] } },
    ],
  },
];

for (const c of cases) {
  test(`kernel, reference and the maps' reading agree: ${c.name}`, async () => {
    const compiled = compile({ policies: c.policies, pods, namespaces, identities, node: 'n1' });
    const endpoints = pods.map((p, i) => ({ key: `${p.namespace}/${p.name}`, ifindex: 1000 + i, ip: p.ip! }));
    const plan = planDatapath({ endpoints, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [], others: [] } });
    for (const map of PLANNED_MAPS) {
      const entries = [...plan.maps.get(map)!].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: Buffer.from(v, 'hex') }));
      for (const old of await loader.dump(map)) await loader.delete(map, [old.key]);
      if (entries.length) await loader.update(map, entries);
    }
    // As the agent does after a batch: connections admitted under the old maps are re-checked.
    const [config] = await loader.dump('pal_config');
    const revision = config ? config.value.readUInt32LE(0) + 1 : 1;
    await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: revision, flags: 0 }) }]);
    const before = await packetsCounted();
    let runs = 0;
    const mismatches: string[] = [];
    for (const [index, endpoint] of endpoints.entries()) {
      // The endpoint under test answers at the test device's ifindex.
      const info = plan.maps.get('pal_endpoints')!.get(MAPS.pal_endpoints.key.encode(endpoint.ifindex).toString('hex'))!;
      await loader.update('pal_endpoints', [{ key: u32Key.encode(TEST_IFINDEX), value: Buffer.from(info, 'hex') }]);
      assert.equal(endpointInfo.decode(Buffer.from(info, 'hex')).ipv4, endpoint.ip);
      const policy = compiled.endpoints.get(endpoint.key)!;
      for (const [peerIndex, peer] of pods.entries()) {
        if (peer.ip === endpoint.ip) continue;
        for (const protocol of ['TCP', 'UDP', 'SCTP'] as L4[]) {
          for (const port of [1, 2, 79, 80, 81, 82, 90, 999, 1000, 4095, 4096, 4097, 5000, 5001, 9000, 9001, 65534, 65535]) {
            const peerIdentity = compiled.ipcache.get(peer.ip!)!;
            for (const direction of ['ingress', 'egress'] as const) {
              const expected = evaluateDirection(policy[direction], { address: parseAddress(peer.ip!)!, identity: peerIdentity }, protocol, port);
              // Distinct source ports per run keep conntrack from matching an earlier run's tuple.
              const sport = 40000 + index * 1000 + peerIndex * 10 + (direction === 'ingress' ? 0 : 5);
              const packet =
                direction === 'ingress'
                  ? ipv4Packet({ saddr: peer.ip!, daddr: endpoint.ip, protocol, sport, dport: port })
                  : ipv4Packet({ saddr: endpoint.ip, daddr: peer.ip!, protocol, sport, dport: port });
              const result = await loader.testRun(direction === 'ingress' ? 'pal_to_pod' : 'pal_from_pod', packet);
              runs++;
              const kernelAllows = result.retval !== TC_ACT_SHOT;
              if (kernelAllows !== (expected.decision !== 'deny')) {
                mismatches.push(`${endpoint.key} ${direction} peer ${peer.namespace}/${peer.name} ${protocol}/${port}: reference ${expected.decision}, kernel ${kernelAllows ? 'allow' : 'drop'} (${packet.toString('hex')})`);
              }
              // What `policy trace` reads of the maps (map-verdict.ts) must be what the kernel did.
              const fromMaps = mapVerdict(plan.maps, { ifindex: endpoint.ifindex, direction, peer: peer.ip!, protocol, port, hostReachesPods: true });
              if (isDrop(REASON[fromMaps!.reason]) === kernelAllows) {
                mismatches.push(`${endpoint.key} ${direction} peer ${peer.namespace}/${peer.name} ${protocol}/${port}: maps say ${fromMaps?.reason}, kernel ${kernelAllows ? 'allow' : 'drop'}`);
              }
            }
          }
        }
      }
    }
    assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} mismatches`);
    assert.equal((await packetsCounted()) - before, runs, 'every run went through the kernel program');
  });
}

async function packetsCounted(only?: number): Promise<number> {
  const reasons = new Set<number>(only === undefined ? Object.values(REASON) : [only]);
  let total = 0n;
  for (const entry of await loader.dump('pal_metrics')) {
    if (reasons.has(entry.key.readUInt32LE(0))) total += BigInt(sumMetrics(entry.value).packets);
  }
  return Number(total);
}

// ---- deny lanes, entities and the CLUSTER class (ADR 0010) ----

const SELF_NODE = '172.30.0.11';
const REMOTE_NODE = '172.30.0.12';
const API_SERVERS = [REMOTE_NODE, '192.168.50.10']; // one on another node (9), one on no node (7)
const WORLD = '8.8.8.8';
const WORLD_NEAR = '8.8.4.4';
/** A pod whose identity is not allocated yet: INIT (5) in the ipcache. */
const newcomer: PodInput = { namespace: 'z', name: 'newcomer', labels: { pod: 'newcomer' }, ip: '10.200.3.30', node: 'n1', containerPorts: [] };
const OUTSIDE = [SELF_NODE, ...API_SERVERS, WORLD, WORLD_NEAR];

/** The identity the node's ipcache gives an address that is no pod's (evaluate()'s nodeIdentity): node, API server, world. */
function outsideIdentity(address: string): number {
  const node = address === SELF_NODE ? IDENTITY.HOST : address === REMOTE_NODE ? IDENTITY.REMOTE_NODE : undefined;
  return API_SERVERS.includes(address) ? apiServerIdentity(node) : (node ?? IDENTITY.WORLD);
}

/**
 * Writes the plan of `compiled` for the pods of this file (the newcomer a peer only), then judges every endpoint x
 * peer (pods, the newcomer, this node, another node, the API server, world) x protocol x port x direction three
 * ways: the reference (evaluateDirection with the deny lane, plus the datapath's host rule), the kernel, and the
 * maps' reading. The kernel's DROP_POLICY_DENY count must equal the deny verdicts the maps give.
 */
async function judgeWithDeny(compiled: CompiledPolicy): Promise<void> {
  const endpoints = pods.map((p, i) => ({ key: `${p.namespace}/${p.name}`, ifindex: 1000 + i, ip: p.ip! }));
  const plan = planDatapath({ endpoints, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [SELF_NODE], others: [REMOTE_NODE] }, apiServerAddresses: API_SERVERS });
  assert.deepEqual(plan.problems, []);
  assert.equal(compiled.ipcache.get(newcomer.ip!), IDENTITY.INIT, 'a pod without a number is INIT, not world');
  for (const map of PLANNED_MAPS) {
    const entries = [...plan.maps.get(map)!].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: Buffer.from(v, 'hex') }));
    for (const old of await loader.dump(map)) await loader.delete(map, [old.key]);
    if (entries.length) await loader.update(map, entries);
  }
  const [config] = await loader.dump('pal_config');
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: (config ? config.value.readUInt32LE(0) : 0) + 1, flags: 0 }) }]);
  // Connections an earlier case opened would be judged as established (re-evaluated, revoked): every run is new here.
  await clearMaps(loader, ['pal_ct4', 'pal_ct_budget']);
  const identityOf = (addr: string) => compiled.ipcache.get(addr) ?? outsideIdentity(addr);
  const peers = [...pods.map((p) => p.ip!), newcomer.ip!, ...OUTSIDE];
  const before = await packetsCounted();
  const deniedBefore = await packetsCounted(REASON.DROP_POLICY_DENY);
  let runs = 0;
  let denyRules = 0;
  const seen = new Set<string>();
  const mismatches: string[] = [];
  for (const [index, endpoint] of endpoints.entries()) {
    const info = plan.maps.get('pal_endpoints')!.get(MAPS.pal_endpoints.key.encode(endpoint.ifindex).toString('hex'))!;
    await loader.update('pal_endpoints', [{ key: u32Key.encode(TEST_IFINDEX), value: Buffer.from(info, 'hex') }]);
    const policy = compiled.endpoints.get(endpoint.key)!;
    for (const [peerIndex, peer] of peers.entries()) {
      if (peer === endpoint.ip) continue;
      const identity = identityOf(peer);
      for (const protocol of ['TCP', 'UDP', 'SCTP'] as L4[]) {
        for (const port of [22, 53, 80, 81, 443, 5999, 6000, 6100, 6101]) {
          for (const direction of ['ingress', 'egress'] as const) {
            const v = evaluateDirection(policy[direction], { address: parseAddress(peer)!, identity }, protocol, port, direction === 'ingress' ? policy.ingressDeny : policy.egressDeny);
            // The datapath's host rule (hostReachesPods): this node reaches its pods unless a deny rule matches.
            const host = direction === 'ingress' && (identity === IDENTITY.HOST || identity === IDENTITY.HOST_KUBE_APISERVER);
            const expected = v.decision === 'deny' ? (v.rule ? 'deny-rule' : host ? 'allow' : 'default-deny') : 'allow';
            seen.add(expected);
            const sport = 20000 + index * 1000 + peerIndex * 10 + (direction === 'ingress' ? 0 : 5);
            const packet =
              direction === 'ingress'
                ? ipv4Packet({ saddr: peer, daddr: endpoint.ip, protocol, sport, dport: port })
                : ipv4Packet({ saddr: endpoint.ip, daddr: peer, protocol, sport, dport: port });
            const result = await loader.testRun(direction === 'ingress' ? 'pal_to_pod' : 'pal_from_pod', packet);
            runs++;
            const kernelAllows = result.retval !== TC_ACT_SHOT;
            const what = `${endpoint.key} ${direction} peer ${peer} (${identity}) ${protocol}/${port}`;
            if (kernelAllows !== (expected === 'allow')) mismatches.push(`${what}: reference ${expected}, kernel ${kernelAllows ? 'allow' : 'drop'}`);
            const fromMaps = mapVerdict(plan.maps, { ifindex: endpoint.ifindex, direction, peer, protocol, port, hostReachesPods: true })!;
            const mapsSay = fromMaps.reason === 'DROP_POLICY_DENY' ? 'deny-rule' : fromMaps.reason === 'DROP_POLICY' ? 'default-deny' : 'allow';
            if (mapsSay !== expected) mismatches.push(`${what}: reference ${expected}, maps say ${fromMaps.reason}`);
            if (v.decision === 'deny' && v.rule && fromMaps.ruleId !== ruleId(v.rule)) mismatches.push(`${what}: the maps name rule ${fromMaps.ruleId}, the reference ${ruleRefString(v.rule)}`);
            if (fromMaps.reason === 'DROP_POLICY_DENY') denyRules++;
          }
        }
      }
    }
  }
  assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} mismatches`);
  assert.deepEqual([...seen].sort(), ['allow', 'default-deny', 'deny-rule'], 'the case exercises every outcome');
  assert.equal((await packetsCounted()) - before, runs, 'every run went through the kernel program');
  assert.equal((await packetsCounted(REASON.DROP_POLICY_DENY)) - deniedBefore, denyRules, 'the kernel dropped by a deny rule exactly where the maps say so');
}

test('kernel, reference and the maps\' reading agree: Palisade policies with deny rules, entities and CIDR sets, compiled', async () => {
  const manifests = [
    {
      kind: 'PalisadeNetworkPolicy',
      metadata: { namespace: 'x', name: 'guard' },
      spec: {
        endpointSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ fromEntities: ['cluster'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }, { port: '443', protocol: 'ANY' }] }] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { 'io.kubernetes.pod.namespace': 'y', pod: 'b' } }] }, { fromEntities: ['host'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
        egressDeny: [{ toEntities: ['kube-apiserver'] }, { toCIDRSet: [{ cidr: '8.0.0.0/8', except: ['8.8.8.0/24'] }], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }],
        enableDefaultDeny: { ingress: true, egress: false },
      },
    },
    {
      kind: 'PalisadeClusterNetworkPolicy',
      metadata: { name: 'baseline' },
      spec: {
        endpointSelector: { matchLabels: { pod: 'c' } },
        egressDeny: [{ toEntities: ['remote-node', 'world'], toPorts: [{ ports: [{ port: '6000', endPort: 6100, protocol: 'TCP' }] }] }],
        ingressDeny: [{ fromEntities: ['all'], toPorts: [{ ports: [{ port: '81', protocol: 'SCTP' }] }] }],
      },
    },
    {
      kind: 'PalisadeNetworkPolicy',
      metadata: { namespace: 'y', name: 'outward' },
      spec: { endpointSelector: { matchLabels: { pod: 'b' } }, egress: [{ toEntities: ['world', 'host'] }, { toEntities: ['cluster'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }] },
    },
  ];
  const palisadePolicies = manifests.map((m): PalisadePolicyInput => {
    const v = validatePalisadePolicy(m);
    assert.ok(v.ok, `invalid test policy ${m.metadata.name}: ${v.ok ? '' : v.errors.join('; ')}`);
    return { kind: m.kind as PalisadePolicyInput['kind'], namespace: m.metadata.namespace ?? '', name: m.metadata.name, spec: v.spec };
  });
  // And a NetworkPolicy the deny rules win over: z/* take ingress from everywhere.
  const policies: NetworkPolicyInput[] = [{ namespace: 'z', name: 'open', spec: { podSelector: {}, ingress: [{}] } }];
  const compiled = compile({ policies, palisadePolicies, pods: [...pods, newcomer], namespaces, identities, node: 'n1' });
  assert.deepEqual(compiled.problems, []);
  assert.ok([...compiled.endpoints.values()].some((e) => e.ingressDeny) && [...compiled.endpoints.values()].some((e) => e.egressDeny), 'the compiler emitted deny lanes');
  await judgeWithDeny(compiled);
});

test('kernel, reference and the maps\' reading agree: deny lanes and the CLUSTER class written by hand (identity, ANY, CLUSTER, a CIDR with a hole, unenforced directions)', async () => {
  const guard = { kind: 'PalisadeNetworkPolicy', namespace: 'x', name: 'guard' } as const;
  let index = 0;
  const rule = (direction: 'ingress' | 'egress', deny: boolean): RuleRef => ({ ...guard, direction, index: index++, ...(deny ? { deny: true as const } : {}) });
  const entry = (peer: PolicyEntry['peer'], protocol: PolicyEntry['protocol'], port: PolicyEntry['port'], r: RuleRef): PolicyEntry => ({ peer, protocol, port, rule: r });
  const lane = (entries: PolicyEntry[], cidrRegions: CidrRegion[] = []): DirectionPolicy => ({ isolatedBy: [guard], entries, cidrRegions, entryCount: { policy: 0, cidr: 0 } });
  const region = (prefix: string, entries: (id: number) => PolicyEntry[]): CidrRegion => ({ prefix, family: 4, regionId: regionId(prefix), entries: entries(regionId(prefix)) });
  const cluster = { kind: 'identity', identity: IDENTITY.CLUSTER } as const;
  // Allow lanes from a NetworkPolicy: x/a and x/b may talk to anyone, y/a takes ingress from every namespace.
  const compiled = compile({
    policies: [
      { namespace: 'x', name: 'open', spec: { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] }, policyTypes: ['Ingress', 'Egress'], ingress: [{}], egress: [{}] } },
      { namespace: 'y', name: 'from-all', spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {} }] }] } },
    ],
    pods: [...pods, newcomer],
    namespaces,
    identities,
    node: 'n1',
  });
  const id = (key: string) => compiled.ipcache.get(ip(key))!;
  const extend = (key: string, over: Partial<EndpointPolicy>) => compiled.endpoints.set(key, { ...compiled.endpoints.get(key)!, ...over });
  // x/a: deny y/b on TCP 80 in, deny the cluster's UDP 53 out and 8.0.0.0/8 but its 8.8.8.0/24 hole.
  extend('x/a', {
    ingressDeny: lane([entry({ kind: 'identity', identity: id('y/b') }, 'TCP', { from: 80, to: 80 }, rule('ingress', true))]),
    egressDeny: lane(
      [entry(cluster, 'UDP', { from: 53, to: 53 }, rule('egress', true))],
      [region('8.0.0.0/8', (r) => [entry({ kind: 'region', regionId: r }, 'ANY', 'any', rule('egress', true))]), region('8.8.8.0/24', () => [])],
    ),
  });
  // x/b: allow only the cluster on TCP 80 (a CLUSTER allow), deny every peer's SCTP.
  extend('x/b', {
    ingress: lane([entry(cluster, 'TCP', { from: 80, to: 80 }, rule('ingress', false))]),
    ingressDeny: lane([entry({ kind: 'any' }, 'SCTP', 'any', rule('ingress', true))]),
  });
  // y/a: deny ports 6000-6100 of every peer (a range, port prefixes), in.
  extend('y/a', { ingressDeny: lane([entry({ kind: 'any' }, 'TCP', { from: 6000, to: 6100 }, rule('ingress', true))]) });
  // y/c, selected by nothing: deny x/a and the API server (no node's address) out.
  extend('y/c', {
    egressDeny: lane([entry({ kind: 'identity', identity: id('x/a') }, 'ANY', 'any', rule('egress', true)), entry({ kind: 'identity', identity: IDENTITY.KUBE_APISERVER }, 'TCP', 'any', rule('egress', true))]),
  });
  // z/c: egress to the cluster only, but not 192.168.0.0/16 on TCP.
  extend('z/c', {
    egress: lane([entry(cluster, 'ANY', 'any', rule('egress', false))]),
    egressDeny: lane([], [region('192.168.0.0/16', (r) => [entry({ kind: 'region', regionId: r }, 'TCP', 'any', rule('egress', true))])]),
  });
  await judgeWithDeny(compiled);
});
