import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  DIRECTION,
  endpointInfo,
  ENDPOINT_FLAG,
  IDENTITY,
  ipcacheValue,
  ipv4Key,
  LB_FLAG,
  lb4Backend,
  lb4BackendKey,
  lb4Key,
  lb4Service,
  policyCidrKey,
  policyCidrValue,
  policyKey,
  policyPortKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  u32Key,
} from '../datapath/abi.ts';
import { compile } from '../policy/compile.ts';
import { fnv1a32, identityKey, regionId } from '../policy/ids.ts';
import type { CidrRegion, DirectionPolicy, EndpointPolicy, NetworkPolicyInput, PodInput, PolicyEntry, RuleRef } from '../policy/types.ts';
import { parseIpv4 } from './ipam/ipv4.ts';
import { DatapathPlanner, diffMaps, planDatapath, planFrontends, policyKeyHex, portPrefixes, portSegments, problemText, ruleId, type MapChanges, type MapContents } from './datapath-plan.ts';

const ns = { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } };
const pods: PodInput[] = ['a', 'b'].map((name, i) => ({ namespace: 'x', name, labels: { pod: name }, ip: `10.200.1.${i + 1}`, node: 'n1', containerPorts: [] }));
const identities = new Map(pods.map((p, i) => [identityKey(ns.labels, p.labels), 256 + i]));
const policy: NetworkPolicyInput = {
  namespace: 'x',
  name: 'b-from-a',
  spec: { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80 }, { port: 8000, endPort: 8009 }] }] },
};
const compiled = compile({ policies: [policy], pods, namespaces: [ns], identities, node: 'n1' });
const endpoints = pods.map((p, i) => ({ key: `x/${p.name}`, ifindex: 10 + i, ip: p.ip! }));
const flagsOf = (plan: ReturnType<typeof planDatapath>, ifindex: number) =>
  endpointInfo.decode(Buffer.from(plan.maps.get('pal_endpoints')!.get(u32Key.encode(ifindex).toString('hex'))!, 'hex')).flags;

test('a selected endpoint gets a summary, an entry per single port, port prefixes for a range, and its ingress flag', () => {
  const plan = planDatapath({ endpoints, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [], others: [] } });
  assert.equal(plan.maps.get('pal_policy')!.size, 1 + 1);
  assert.equal(plan.maps.get('pal_policy_ports')!.size, 2, '8000-8009: 8000/13 and 8008/15');
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED);
  assert.equal(flagsOf(plan, 10), 0, 'an unselected endpoint is not enforced');
  assert.deepEqual(plan.problems, []);
});

test('planning the same input twice changes nothing', () => {
  const input = { endpoints, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: ['172.30.0.11'], others: [] } };
  assert.equal(diffMaps(planDatapath(input).maps, planDatapath(input).maps).count, 0);
});

test('an endpoint whose entries do not fit the map is denied everything, never half-enforced', () => {
  const plan = planDatapath({
    endpoints,
    compiled: compiled.endpoints,
    podIdentities: compiled.ipcache,
    nodeAddresses: { self: [], others: [] },
    capacity: { pal_policy: 1, pal_policy_cidr: 100 },
  });
  assert.equal(plan.maps.get('pal_policy')!.size, 0);
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED);
  assert.match(plan.problems.map(problemText).join('\n'), /x\/b: its policy needs 4 entries, more than the node's maps have room for/);
});

test('a pod the compiler does not know is denied everything', () => {
  const plan = planDatapath({ endpoints: [{ key: 'x/ghost', ifindex: 99, ip: '10.200.1.9' }], compiled: new Map(), podIdentities: new Map(), nodeAddresses: { self: [], others: [] } });
  assert.equal(flagsOf(plan, 99), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED);
});

test('an endpoint with class-ANY entries (a peer list that allows every pod and address) gets the ANY flag of that direction only', () => {
  const anyPeer: NetworkPolicyInput = {
    namespace: 'x',
    name: 'a-egress-anywhere',
    spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress', 'Egress'], egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }] },
  };
  const both = compile({ policies: [policy, anyPeer], pods, namespaces: [ns], identities, node: 'n1' });
  const plan = planDatapath({ endpoints, compiled: both.endpoints, podIdentities: both.ipcache, nodeAddresses: { self: [], others: [] } });
  assert.equal(flagsOf(plan, 10), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ANY);
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED, 'b allows one identity, not ANY');
});

test('an endpoint whose compiled policy has `dns` gets DNS_REDIRECT, and DNS_NO_FALLBACK with dns.failClosed; its policy flags stay', () => {
  const withDns = new Map(compiled.endpoints);
  const [a, b] = ['x/a', 'x/b'].map((k) => compiled.endpoints.get(k)!);
  withDns.set('x/a', { ...a!, dns: { redirect: true } } as EndpointPolicy);
  withDns.set('x/b', { ...b!, dns: { redirect: true, failClosed: true } } as EndpointPolicy);
  const plan = planDatapath({ endpoints, compiled: withDns, podIdentities: compiled.ipcache, nodeAddresses: { self: [], others: [] } });
  assert.equal(flagsOf(plan, 10), ENDPOINT_FLAG.DNS_REDIRECT);
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.DNS_REDIRECT | ENDPOINT_FLAG.DNS_NO_FALLBACK);
  assert.equal(flagsOf(planDatapath({ endpoints, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [], others: [] } }), 10), 0, 'no dns: no flag');
  // A pod the compiler does not know is closed: nothing is redirected for it (nothing passes at all).
  const closed = planDatapath({ endpoints: [{ key: 'x/ghost', ifindex: 99, ip: '10.200.1.9' }], compiled: new Map(), podIdentities: new Map(), nodeAddresses: { self: [], others: [] } });
  assert.equal(flagsOf(closed, 99) & ENDPOINT_FLAG.DNS_REDIRECT, 0);
});

test('a port range of any width is a few port-prefix entries, never expanded and never refused', () => {
  const wide: NetworkPolicyInput = {
    namespace: 'x',
    name: 'wide',
    spec: { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 1, endPort: 5000 }] }] },
  };
  const c = compile({ policies: [wide], pods, namespaces: [ns], identities, node: 'n1' });
  const plan = planDatapath({ endpoints, compiled: c.endpoints, podIdentities: c.ipcache, nodeAddresses: { self: [], others: [] } });
  assert.deepEqual(plan.problems, []);
  assert.equal(plan.maps.get('pal_policy')!.size, 1, 'the summary only');
  assert.deepEqual(
    [...plan.maps.get('pal_policy_ports')!.keys()].map((k) => policyPortKey.decode(Buffer.from(k, 'hex'))).map((k) => `${k.port}/${k.portBits}`).sort((a, b) => parseInt(a) - parseInt(b)),
    ['1/16', '2/15', '4/14', '8/13', '16/12', '32/11', '64/10', '128/9', '256/8', '512/7', '1024/6', '2048/5', '4096/7', '4608/8', '4864/9', '4992/13', '5000/16'],
  );
});

test('port prefixes cover exactly the range; segments give each port the first rule that names it', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const blocks = portPrefixes(from, to);
      assert.ok(blocks.length <= 32);
      let next = from;
      for (const { port, portBits } of blocks) {
        const size = 2 ** (16 - portBits);
        assert.equal(port, next, 'contiguous');
        assert.equal(port % size, 0, 'aligned');
        next = port + size;
      }
      assert.equal(next, to + 1, 'ends at the range end');
    }),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 5 })), { maxLength: 8 }), (raw) => {
      const ranges = raw.map(([from, width, rule]) => ({ from, to: from + width, rule }));
      const segments = portSegments(ranges);
      for (let port = 1; port <= 260; port++) {
        const first = ranges.find((r) => r.from <= port && port <= r.to)?.rule;
        const covering = segments.filter((s) => s.from <= port && port <= s.to);
        assert.ok(covering.length <= 1, 'disjoint');
        assert.equal(covering[0]?.rule, first, `port ${port}`);
      }
    }),
  );
});

test('the policy that made the planner grow to 2.4 GB: 300 identities x 16 ranges of 4096 ports plan in bounded entries', () => {
  const manyPods: PodInput[] = Array.from({ length: 300 }, (_, i) => ({ namespace: 'x', name: `p${i}`, labels: { pod: `p${i}`, peer: 'yes' }, ip: `10.200.${2 + Math.floor(i / 200)}.${(i % 200) + 1}`, node: 'n2', containerPorts: [] }));
  const all = [...pods, ...manyPods];
  const ids = new Map(all.map((p, i) => [identityKey(ns.labels, p.labels), 256 + i]));
  const attack: NetworkPolicyInput = {
    namespace: 'x',
    name: 'attack',
    spec: { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { peer: 'yes' } } }], ports: Array.from({ length: 16 }, (_, r) => ({ port: 1 + r * 4096, endPort: (r + 1) * 4096 - 1 })) }] },
  };
  const started = performance.now();
  const c = compile({ policies: [attack], pods: all, namespaces: [ns], identities: ids, node: 'n1' });
  const plan = planDatapath({ endpoints, compiled: c.endpoints, podIdentities: c.ipcache, nodeAddresses: { self: [], others: [] } });
  const ms = performance.now() - started;
  const entries = plan.maps.get('pal_policy')!.size + plan.maps.get('pal_policy_ports')!.size;
  assert.ok(entries <= 300 * (1 + 16 * 2 * 15), `${entries} entries`);
  assert.ok(ms < 10_000, `planned in ${ms.toFixed(0)} ms`);
  assert.deepEqual(plan.problems, []);
});

test('an endpoint over the per-endpoint entry limit is denied everything and reported; the others keep their policy', () => {
  const plan = planDatapath({ endpoints, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [], others: [] }, maxEntriesPerEndpoint: 2 });
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED);
  assert.equal(plan.maps.get('pal_policy')!.size, 0);
  assert.match(plan.problems.map(problemText).join('\n'), /x\/b: its policy needs 4 entries, more than the 2 one endpoint may have; all its traffic is denied/);
});

test('an address the datapath cannot encode (IPv6) is skipped and reported, never fatal to the node', () => {
  const podIdentities = new Map([...compiled.ipcache, ['fd00::12', 999]]);
  const plan = planDatapath({ endpoints, compiled: compiled.endpoints, podIdentities, nodeAddresses: { self: ['172.30.0.11', 'fd00::1'], others: ['fd00::2'] } });
  assert.equal(plan.maps.get('pal_ipcache4')!.size, compiled.ipcache.size + 1, 'every IPv4 address is still planned');
  assert.deepEqual(plan.skippedAddresses, ['fd00::1', 'fd00::2', 'fd00::12']);
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED, 'the endpoints keep their policy');
});

test('an endpoint whose own address cannot be encoded is closed and reported, and the others keep their policy', () => {
  const odd = [...endpoints, { key: 'x/v6', ifindex: 12, ip: 'fd00::5' }];
  const plan = planDatapath({ endpoints: odd, compiled: compiled.endpoints, podIdentities: compiled.ipcache, nodeAddresses: { self: [], others: [] } });
  assert.equal(flagsOf(plan, 12), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED);
  assert.equal(flagsOf(plan, 11), ENDPOINT_FLAG.INGRESS_ENFORCED);
  assert.match(plan.problems.map(problemText).join('\n'), /x\/v6: .*fd00::5.*denied/);
});

test('a closed endpoint points at endpoint id 0, which never has entries, so no stale entry of its own can allow anything', () => {
  const plan = planDatapath({ endpoints: [{ key: 'x/ghost', ifindex: 99, ip: '10.200.1.9' }], compiled: new Map(), podIdentities: new Map(), nodeAddresses: { self: [], others: [] } });
  const info = endpointInfo.decode(Buffer.from(plan.maps.get('pal_endpoints')!.get(u32Key.encode(99).toString('hex'))!, 'hex'));
  assert.equal(info.endpointId, 0);
  assert.equal(info.ipv4, '10.200.1.9', 'anti-spoofing still knows its address');
});

test('endpoints and addresses beyond the maps\' capacity are refused and reported, the rest planned', () => {
  const many = Array.from({ length: 5 }, (_, i) => ({ key: `x/p${i}`, ifindex: 100 + i, ip: `10.200.2.${i + 1}` }));
  const podIdentities = new Map(Array.from({ length: 8 }, (_, i) => [`10.200.3.${i + 1}`, 300 + i] as const));
  const plan = planDatapath({
    endpoints: many,
    compiled: new Map(),
    podIdentities,
    nodeAddresses: { self: ['172.30.0.11'], others: ['172.30.0.12'] },
    capacity: { pal_policy: 100, pal_policy_cidr: 100, pal_endpoints: 3, pal_ipcache4: 6 },
  });
  assert.equal(plan.maps.get('pal_endpoints')!.size, 3);
  assert.equal(plan.maps.get('pal_ipcache4')!.size, 6);
  assert.ok(plan.maps.get('pal_ipcache4')!.has(ipv4KeyHex('172.30.0.11')), 'node addresses come first');
  assert.match(plan.problems.map(problemText).join('\n'), /x\/p4: .*more endpoints than the node's maps hold/);
  assert.equal(plan.skippedAddresses.length, 4);
});

function ipv4KeyHex(ip: string): string {
  return ipv4Key.encode(ip).toString('hex');
}

test('the incremental planner writes only what changed, and its changes take the maps exactly where a whole plan would', () => {
  const input = (policies: NetworkPolicyInput[], ips: string[]) => {
    const ps = pods.map((p, i) => ({ ...p, ip: ips[i] }));
    const c = compile({ policies, pods: ps, namespaces: [ns], identities, node: 'n1' });
    return { endpoints: ps.map((p, i) => ({ key: `x/${p.name}`, ifindex: 10 + i, ip: p.ip! })), compiled: c.endpoints, podIdentities: c.ipcache, nodeAddresses: { self: ['172.30.0.11'], others: [] } };
  };
  const apply = (maps: MapContents, changes: MapChanges) => {
    for (const [m, list] of changes.updates) for (const { key, value } of list) maps.get(m)!.set(key, value);
    for (const [m, list] of changes.deletes) for (const key of list) maps.get(m)!.delete(key);
  };
  const planner = new DatapathPlanner();
  const first = input([policy], ['10.200.1.1', '10.200.1.2']);
  const maps = planner.plan(first, 'all').full();
  assert.equal(planner.plan(first, new Set()).changes.count, 0, 'a no-op event changes nothing');

  const narrowed: NetworkPolicyInput = { ...policy, spec: { ...policy.spec, ingress: [{ ...policy.spec.ingress![0]!, ports: [{ port: 80 }] }] } };
  for (const next of [input([narrowed], ['10.200.1.1', '10.200.1.2']), input([narrowed], ['10.200.1.1', '10.200.1.7']), input([], ['10.200.1.1', '10.200.1.7'])]) {
    const plan = planner.plan(next, new Set(['x/a', 'x/b']));
    apply(maps, plan.changes);
    maps.set('pal_endpoints', plan.endpoints);
    assert.deepEqual(maps, planDatapath(next).maps);
    assert.ok(plan.changes.count < maps.get('pal_policy')!.size + 12, 'only the changed entries are written');
  }
});

test('policyKeyHex writes the same bytes as the policy_key codec', () => {
  fc.assert(
    fc.property(fc.nat(2 ** 32 - 1), fc.nat(2 ** 32 - 1), fc.nat(1), fc.nat(255), fc.nat(65535), (endpointId, identity, direction, protocol, dport) => {
      assert.equal(policyKeyHex(endpointId, identity, direction, protocol, dport), policyKey.encode({ endpointId, identity, direction, protocol, dport }).toString('hex'));
    }),
  );
});

test('Service frontends: slots 0..n-1 per frontend in the order given, a count per frontend; what the backend map cannot hold is written with no backend and reported', () => {
  const frontend = (ip: string, backends: number) => ({
    service: `s/${ip}`, ip, port: 80, protocol: 'TCP' as const, clientAffinity: ip.endsWith('.2'),
    backends: Array.from({ length: backends }, (_, i) => ({ ip: `10.200.9.${i + 1}`, port: 8080 })),
  });
  const problems: Array<{ endpoint: string; message: string }> = [];
  const capacity = (map: string) => (map === 'pal_lb4_backends' ? 4 : Infinity);
  const lb = planFrontends([frontend('10.96.0.1', 3), frontend('10.96.0.2', 2), frontend('10.96.0.3', 1), frontend('fd00::1', 1)], capacity, problems);
  const services = new Map([...lb.get('pal_lb4')!].map(([k, v]) => [lb4Key.decode(Buffer.from(k, 'hex')).addr, lb4Service.decode(Buffer.from(v, 'hex'))]));
  assert.deepEqual([...services], [
    ['10.96.0.1', { count: 3, flags: 0 }],
    ['10.96.0.2', { count: 0, flags: LB_FLAG.CLIENT_AFFINITY }], // 3 + 2 > 4: no backend, dropped rather than left to kube-proxy
    ['10.96.0.3', { count: 1, flags: 0 }],
  ]);
  const slots = [...lb.get('pal_lb4_backends')!].map(([k, v]) => {
    const key = lb4BackendKey.decode(Buffer.from(k, 'hex'));
    return `${key.addr}#${key.slot} ${lb4Backend.decode(Buffer.from(v, 'hex')).addr}`;
  });
  assert.deepEqual(slots, ['10.96.0.1#0 10.200.9.1', '10.96.0.1#1 10.200.9.2', '10.96.0.1#2 10.200.9.3', '10.96.0.3#0 10.200.9.1']);
  assert.deepEqual(problems.map(problemText), ['node: Service s/10.96.0.2 frontend 10.96.0.2:80/TCP written without backends, its traffic dropped: the node\'s backend map is full (4)']);
});

test('the planner diffs the Service maps only when the frontends change', () => {
  const planner = new DatapathPlanner();
  const input = { endpoints: [], compiled: new Map(), podIdentities: new Map(), nodeAddresses: { self: [], others: [] } };
  const frontends = [{ service: 's/a', ip: '10.96.0.1', port: 80, protocol: 'TCP' as const, clientAffinity: false, backends: [{ ip: '10.200.9.1', port: 8080 }] }];
  const first = planner.plan({ ...input, frontends }, 'all');
  assert.equal(first.changes.updates.get('pal_lb4')?.length, 1);
  assert.equal(first.changes.updates.get('pal_lb4_backends')?.length, 1);
  assert.equal(planner.plan({ ...input, frontends }, new Set()).changes.count, 0);
  const gone = planner.plan({ ...input, frontends: [] }, new Set());
  assert.equal(gone.changes.deletes.get('pal_lb4')?.length, 1);
  assert.equal(gone.full().get('pal_lb4')!.size, 0);
});

// ---- deny lanes, the CLUSTER class and the API server's identities (ADR 0010) ----

const pnp = { kind: 'PalisadeNetworkPolicy', namespace: 'x', name: 'guard' } as const;
const rule = (direction: 'ingress' | 'egress', index: number, deny = false): RuleRef => ({ ...pnp, direction, index, ...(deny ? { deny: true as const } : {}) });
const lane = (entries: PolicyEntry[], cidrRegions: CidrRegion[] = []): DirectionPolicy => ({ isolatedBy: [pnp], entries, cidrRegions, entryCount: { policy: 0, cidr: 0 } });
const endpointPolicy = (over: Partial<EndpointPolicy>): EndpointPolicy => ({
  endpoint: 'x/a', ip: '10.200.1.1', node: 'n1', identityKey: 'k', identity: 256, ingress: undefined, egress: undefined, ingressDeny: undefined, egressDeny: undefined, ...over,
});
const A = { key: 'x/a', ifindex: 10, ip: '10.200.1.1' };
const A_ID = parseIpv4(A.ip); // the planner's endpoint id: the address as a number
const valueOf = (plan: ReturnType<typeof planDatapath>, map: 'pal_policy', key: string) => {
  const v = plan.maps.get(map)!.get(key);
  return v === undefined ? undefined : policyValue.decode(Buffer.from(v, 'hex'));
};

test('deny lanes are written like the allow lanes under directions 2 and 3 (pal_policy, pal_policy_ports, pal_policy_cidr), with flags of their own', () => {
  const region: CidrRegion = { prefix: '203.0.113.0/24', family: 4, regionId: regionId('203.0.113.0/24'), entries: [{ peer: { kind: 'region', regionId: regionId('203.0.113.0/24') }, protocol: 'TCP', port: { from: 443, to: 443 }, rule: rule('egress', 2, true) }] };
  const compiled = endpointPolicy({
    ingress: lane([{ peer: { kind: 'identity', identity: 257 }, protocol: 'TCP', port: 'any', rule: rule('ingress', 0) }]),
    ingressDeny: lane([
      { peer: { kind: 'identity', identity: 257 }, protocol: 'TCP', port: { from: 22, to: 22 }, rule: rule('ingress', 0, true) },
      { peer: { kind: 'identity', identity: 257 }, protocol: 'TCP', port: { from: 6000, to: 6100 }, rule: rule('ingress', 1, true) },
    ]),
    egressDeny: lane(
      [
        { peer: { kind: 'any' }, protocol: 'SCTP', port: 'any', rule: rule('egress', 0, true) },
        { peer: { kind: 'identity', identity: IDENTITY.CLUSTER }, protocol: 'UDP', port: { from: 53, to: 53 }, rule: rule('egress', 1, true) },
      ],
      [region],
    ),
  });
  const plan = planDatapath({ endpoints: [A], compiled: new Map([[A.key, compiled]]), podIdentities: new Map(), nodeAddresses: { self: [], others: [] } });
  assert.deepEqual(plan.problems, []);
  assert.equal(
    flagsOf(plan, 10),
    ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.INGRESS_DENY | ENDPOINT_FLAG.EGRESS_DENY | ENDPOINT_FLAG.EGRESS_DENY_ANY | ENDPOINT_FLAG.EGRESS_DENY_CLUSTER | ENDPOINT_FLAG.EGRESS_DENY_CIDR,
    'egress is not enforced: only its deny lane is probed',
  );
  // The allow lane as before, direction 0.
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, 257, DIRECTION.INGRESS, PROTOCOL.TCP, 0))?.ruleId, ruleId(rule('ingress', 0)));
  // Deny by identity: summary, an exact port, port prefixes, all under direction 2, each naming its deny rule.
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, 257, DIRECTION.INGRESS_DENY, 0, 0))?.flags, POLICY_FLAG.TCP_PORTS | POLICY_FLAG.TCP_RANGES);
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, 257, DIRECTION.INGRESS_DENY, PROTOCOL.TCP, 22))?.ruleId, ruleId(rule('ingress', 0, true)));
  const ports = [...plan.maps.get('pal_policy_ports')!.entries()].map(([k, v]) => ({ ...policyPortKey.decode(Buffer.from(k, 'hex')), rule: policyValue.decode(Buffer.from(v, 'hex')).ruleId }));
  assert.ok(ports.length > 0 && ports.every((p) => p.direction === DIRECTION.INGRESS_DENY && p.identity === 257 && p.rule === ruleId(rule('ingress', 1, true))));
  // Deny by ANY and CLUSTER, and a CIDR region, under direction 3.
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, IDENTITY.ANY, DIRECTION.EGRESS_DENY, PROTOCOL.SCTP, 0))?.ruleId, ruleId(rule('egress', 0, true)));
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, IDENTITY.CLUSTER, DIRECTION.EGRESS_DENY, PROTOCOL.UDP, 53))?.ruleId, ruleId(rule('egress', 1, true)));
  const cidr = [...plan.maps.get('pal_policy_cidr')!].map(([k, v]) => [policyCidrKey.decode(Buffer.from(k, 'hex')), policyCidrValue.decode(Buffer.from(v, 'hex')).identity] as const);
  assert.deepEqual(cidr, [[{ endpointId: A_ID, direction: DIRECTION.EGRESS_DENY, cidr: '203.0.113.0/24' }, region.regionId]]);
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, region.regionId, DIRECTION.EGRESS_DENY, PROTOCOL.TCP, 443))?.ruleId, ruleId(rule('egress', 2, true)));
  // The default rules come from the allow lanes only.
  const info = endpointInfo.decode(Buffer.from(plan.maps.get('pal_endpoints')!.get(u32Key.encode(10).toString('hex'))!, 'hex'));
  assert.equal(info.egressDefaultRule, 0);
  // A deny rule's number is the hash of its reference, kind and lane included.
  assert.equal(ruleId(rule('ingress', 0, true)), fnv1a32('pnp:x/guard/ingressDeny/0'));
});

test('the CLUSTER class sets the CLUSTER flag of its lane and direction only; an empty deny lane sets nothing', () => {
  const compiled = endpointPolicy({
    egress: lane([{ peer: { kind: 'identity', identity: IDENTITY.CLUSTER }, protocol: 'ANY', port: 'any', rule: rule('egress', 0) }]),
    ingressDeny: lane([]),
  });
  const plan = planDatapath({ endpoints: [A], compiled: new Map([[A.key, compiled]]), podIdentities: new Map(), nodeAddresses: { self: [], others: [] } });
  assert.equal(flagsOf(plan, 10), ENDPOINT_FLAG.EGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_CLUSTER);
  assert.equal(valueOf(plan, 'pal_policy', policyKeyHex(A_ID, IDENTITY.CLUSTER, DIRECTION.EGRESS, 0, 0))?.flags, POLICY_FLAG.ALL);
});

test('deny entries count toward the per-endpoint limit and the maps\' capacity like any entry', () => {
  const deny = Array.from({ length: 5 }, (_, i) => ({ peer: { kind: 'identity' as const, identity: 300 + i }, protocol: 'TCP' as const, port: { from: 80, to: 80 }, rule: rule('ingress', i, true) }));
  const compiled = new Map([[A.key, endpointPolicy({ ingressDeny: lane(deny) })]]);
  const base = { endpoints: [A], compiled, podIdentities: new Map(), nodeAddresses: { self: [], others: [] } };
  assert.equal(planDatapath(base).maps.get('pal_policy')!.size, 10, 'a summary and a port entry per identity');
  const limited = planDatapath({ ...base, maxEntriesPerEndpoint: 9 });
  assert.equal(limited.maps.get('pal_policy')!.size, 0);
  assert.equal(flagsOf(limited, 10), ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED, 'closed: denied everything');
  assert.match(limited.problems.map(problemText).join('\n'), /x\/a: its policy needs 10 entries, more than the 9 one endpoint may have/);
  const full = planDatapath({ ...base, capacity: { pal_policy: 9 } });
  assert.equal(full.maps.get('pal_policy')!.size, 0);
  assert.match(full.problems.map(problemText).join('\n'), /x\/a: its policy needs 10 entries, more than the node's maps have room for/);
});

test('API server addresses get their combined identity (this node, another node, neither), ahead of pods; pods without an identity pass as INIT', () => {
  const identityIn = (plan: ReturnType<typeof planDatapath>, ip: string) => {
    const v = plan.maps.get('pal_ipcache4')!.get(ipv4KeyHex(ip));
    return v === undefined ? undefined : ipcacheValue.decode(Buffer.from(v, 'hex')).identity;
  };
  const input = {
    endpoints: [],
    compiled: new Map(),
    podIdentities: new Map([['10.200.1.1', 256], ['10.200.1.2', IDENTITY.INIT], ['10.200.1.3', 258]]),
    nodeAddresses: { self: ['172.30.0.11'], others: ['172.30.0.12', '172.30.0.13'] },
    apiServerAddresses: ['172.30.0.11', '172.30.0.12', '192.168.50.10'],
  };
  const plan = planDatapath(input);
  assert.deepEqual(
    ['172.30.0.11', '172.30.0.12', '172.30.0.13', '192.168.50.10', '10.200.1.1', '10.200.1.2'].map((ip) => identityIn(plan, ip)),
    [IDENTITY.HOST_KUBE_APISERVER, IDENTITY.REMOTE_NODE_KUBE_APISERVER, IDENTITY.REMOTE_NODE, IDENTITY.KUBE_APISERVER, 256, IDENTITY.INIT],
  );
  const small = planDatapath({ ...input, capacity: { pal_ipcache4: 5 } });
  assert.equal(identityIn(small, '192.168.50.10'), IDENTITY.KUBE_APISERVER, 'the API server is never crowded out by pods');
  assert.deepEqual(small.skippedAddresses, ['10.200.1.2', '10.200.1.3']);
  // Without the field, as before: the node's address is the host.
  assert.equal(identityIn(planDatapath({ ...input, apiServerAddresses: undefined }), '172.30.0.11'), IDENTITY.HOST);
  // The API server moving is one ipcache write per address that changed.
  const planner = new DatapathPlanner();
  planner.plan(input, 'all');
  const moved = planner.plan({ ...input, apiServerAddresses: ['172.30.0.11', '172.30.0.12', '192.168.50.11'] }, new Set());
  assert.deepEqual([...moved.changes.updates.keys(), ...moved.changes.deletes.keys()], ['pal_ipcache4', 'pal_ipcache4']);
  assert.equal(moved.changes.count, 2);
});
