// Differential test (STYLE 12): the compiled policy's reference verdict
// (policy/evaluate.ts) and the kernel's verdict (the real endpoint programs,
// run by BPF_PROG_TEST_RUN on maps written from agent/datapath-plan.ts) must
// agree for every endpoint, peer, protocol and port of each case. A check
// that the kernel path really ran: metrics count every packet.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { datapathConfig, endpointInfo, MAPS, REASON, sumMetrics, u32Key } from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { scratchDatapath, type ScratchDatapath } from '../datapath/scratch-datapath.ts';
import { ipv4Packet, type L4 } from '../datapath/packet.ts';
import { compile } from '../policy/compile.ts';
import { evaluateDirection } from '../policy/evaluate.ts';
import { identityKey } from '../policy/ids.ts';
import { parseAddress } from '../policy/cidr.ts';
import type { NetworkPolicyInput, PodInput } from '../policy/types.ts';
import { planDatapath, PLANNED_MAPS } from './datapath-plan.ts';
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
              if ((fromMaps?.reason !== 'DROP_POLICY') !== kernelAllows) {
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

async function packetsCounted(): Promise<number> {
  const reasons = new Set<number>(Object.values(REASON));
  let total = 0n;
  for (const entry of await loader.dump('pal_metrics')) {
    if (reasons.has(entry.key.readUInt32LE(0))) total += BigInt(sumMetrics(entry.value).packets);
  }
  return Number(total);
}
