// The XDP prefilter's selection (prefilter.ts): which rules qualify, the
// exact set of denied addresses as disjoint prefixes (excepts honoured,
// attributed, merged), checked on examples, against a literal reading of the
// rules on random ones, and, the property the datapath relies on, never
// dropping what the tc programs allow: on random clusters with random
// policies of every kind, every frame the prefilter would drop is denied by
// a deny rule at its destination pod's ingress hook (evaluate.ts, the
// datapath's algorithm), on every protocol and port.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { API_SERVER_ADDRESSES, EXTERNAL_ADDRESSES, NODE_ADDRESSES, palisadeManifestArb, POD_ADDRESSES, PORTS, PROTOCOLS, worldArb } from './arbitraries.ts';
import { formatAddress, makePrefix, parseAddress, parseCidr, prefixContains, type Prefix } from './cidr.ts';
import { compile } from './compile.ts';
import { endpointsByIp, evaluate } from './evaluate.ts';
import { allocateIdentities } from './fixtures.ts';
import { apiServerIdentity, IDENTITY_HOST, IDENTITY_REMOTE_NODE, ruleRefString } from './ids.ts';
import { validatePalisadePolicy } from './palisade-policy.ts';
import { prefilterDenies, prefilterPlan, prefilterRules } from './prefilter.ts';
import type { EndpointPolicy, PalisadePolicyInput } from './types.ts';

const RUNS = Number(process.env.POLICY_PROPERTY_RUNS ?? 150);

function input(manifest: { kind: string; metadata: { name: string; namespace?: string }; spec: unknown }): PalisadePolicyInput {
  const v = validatePalisadePolicy(manifest);
  if (!v.ok) throw new Error(`invalid policy: ${v.errors.join('; ')}\n${JSON.stringify(manifest)}`);
  return { kind: manifest.kind as PalisadePolicyInput['kind'], namespace: manifest.metadata.namespace ?? '', name: manifest.metadata.name, spec: v.spec };
}

const pcnp = (name: string, spec: Record<string, unknown>) => input({ kind: 'PalisadeClusterNetworkPolicy', metadata: { name }, spec: { endpointSelector: {}, ...spec } });
const plain = (policies: PalisadePolicyInput[]) =>
  prefilterPlan(policies).prefixes.map((p) => `${p.prefix} ${ruleRefString(p.rule)}`);

describe('which rules qualify', () => {
  test('a cluster policy selecting every pod, an ingress deny of CIDRs without ports', () => {
    const plan = prefilterPlan([pcnp('deny-doc', { ingressDeny: [{ fromCIDR: ['203.0.113.0/24', '198.51.100.7/32'] }] })]);
    assert.deepEqual(plan.prefixes.map((p) => p.prefix), ['198.51.100.7/32', '203.0.113.0/24']);
    assert.deepEqual(plan.prefixes[0]!.rule, { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name: 'deny-doc', direction: 'ingress', index: 0, deny: true });
    assert.equal(plan.world, undefined);
  });

  test('every port of every protocol written out (port 0, protocol ANY) is the same as no toPorts', () => {
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '0' }] }] }] })]), ['203.0.113.0/24 pcnp:p/ingressDeny/0']);
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '80' }, { port: '0', protocol: 'ANY' }] }] }] })]), ['203.0.113.0/24 pcnp:p/ingressDeny/0']);
  });

  test('world, alone or with CIDRs', () => {
    const plan = prefilterPlan([pcnp('b', { ingressDeny: [{ fromEntities: ['world'] }] }), pcnp('a', { ingressDeny: [{ fromCIDR: ['192.0.2.0/24'] }, { fromEntities: ['world'], fromCIDR: ['203.0.113.0/24'] }] })]);
    assert.equal(ruleRefString(plan.world!), 'pcnp:a/ingressDeny/1');
    assert.deepEqual(plan.prefixes.map((p) => `${p.prefix} ${ruleRefString(p.rule)}`), ['192.0.2.0/24 pcnp:a/ingressDeny/0', '203.0.113.0/24 pcnp:a/ingressDeny/1']);
    assert.deepEqual(plan.rules.map(ruleRefString), ['pcnp:a/ingressDeny/0', 'pcnp:a/ingressDeny/1', 'pcnp:b/ingressDeny/0']);
  });

  test('nothing else: narrower selectors, namespaced policies, ports, other peers, other lanes', () => {
    const cidr = { fromCIDR: ['203.0.113.0/24'] };
    const none = [
      input({ kind: 'PalisadeNetworkPolicy', metadata: { name: 'ns', namespace: 'x' }, spec: { endpointSelector: {}, ingressDeny: [cidr] } }),
      input({ kind: 'PalisadeClusterNetworkPolicy', metadata: { name: 'app' }, spec: { endpointSelector: { matchLabels: { app: 'a' } }, ingressDeny: [cidr] } }),
      input({ kind: 'PalisadeClusterNetworkPolicy', metadata: { name: 'expr' }, spec: { endpointSelector: { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'Exists' }] }, ingressDeny: [cidr] } }),
      pcnp('port', { ingressDeny: [{ ...cidr, toPorts: [{ ports: [{ port: '80' }] }] }] }),
      pcnp('tcp-all', { ingressDeny: [{ ...cidr, toPorts: [{ ports: [{ port: '0', protocol: 'TCP' }] }] }] }),
      pcnp('endpoints', { ingressDeny: [{ ...cidr, fromEndpoints: [{}] }] }),
      pcnp('cluster', { ingressDeny: [{ fromEntities: ['world', 'cluster'] }] }),
      pcnp('all', { ingressDeny: [{ fromEntities: ['all'] }] }),
      pcnp('ports-only', { ingressDeny: [{ toPorts: [{ ports: [{ port: '0' }] }] }] }),
      pcnp('empty', { ingressDeny: [{}] }),
      pcnp('allow', { ingress: [cidr] }),
      pcnp('egress', { egressDeny: [{ toCIDR: ['203.0.113.0/24'] }] }),
    ];
    for (const p of none) assert.deepEqual(prefilterRules([p]), [], p.name);
    assert.deepEqual(prefilterPlan(none), { prefixes: [], world: undefined, rules: [] });
  });
});

describe('the denied addresses as disjoint prefixes', () => {
  test('an except is cut out', () => {
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }] }] })]).map((l) => l.split(' ')[0]), [
      '10.0.0.0/16', '10.2.0.0/15', '10.4.0.0/14', '10.8.0.0/13', '10.16.0.0/12', '10.32.0.0/11', '10.64.0.0/10', '10.128.0.0/9',
    ]);
  });

  test('another rule may deny inside an except; the first rule by policy name and index names a prefix both deny', () => {
    const plan = prefilterPlan([
      pcnp('b', { ingressDeny: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }] }] }),
      pcnp('a', { ingressDeny: [{ fromCIDR: ['10.1.0.0/17', '10.2.0.0/16'] }] }),
    ]);
    const at = (ip: string) => {
      const r = prefilterDenies(plan, ip);
      return r && ruleRefString(r);
    };
    assert.equal(at('10.1.0.9'), 'pcnp:a/ingressDeny/0');
    assert.equal(at('10.1.128.9'), undefined);
    assert.equal(at('10.2.3.4'), 'pcnp:a/ingressDeny/0');
    assert.equal(at('10.3.3.4'), 'pcnp:b/ingressDeny/0');
    assert.equal(at('11.0.0.1'), undefined);
  });

  test('adjacent prefixes of one rule merge; of two rules they do not', () => {
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDR: ['10.0.0.0/25', '10.0.0.128/25', '10.0.1.0/24'] }] })]), ['10.0.0.0/23 pcnp:p/ingressDeny/0']);
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDR: ['10.0.0.0/25'] }, { fromCIDR: ['10.0.0.128/25'] }] })]), ['10.0.0.0/25 pcnp:p/ingressDeny/0', '10.0.0.128/25 pcnp:p/ingressDeny/1']);
  });

  test('0.0.0.0/0 with excepts, and a /32 cut out of a /31', () => {
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDRSet: [{ cidr: '0.0.0.0/0', except: ['128.0.0.0/1'] }, { cidr: '10.0.0.0/31', except: ['10.0.0.1/32'] }] }] })]), ['0.0.0.0/1 pcnp:p/ingressDeny/0']);
    assert.deepEqual(plain([pcnp('p', { ingressDeny: [{ fromCIDRSet: [{ cidr: '192.0.2.0/31', except: ['192.0.2.1/32'] }] }] })]), ['192.0.2.0/32 pcnp:p/ingressDeny/0']);
  });

  test('random rules: exactly the addresses some rule denies, under the first such rule; disjoint, sorted, merged', () => {
    // Prefixes around a few addresses, so that blocks, excepts and rules overlap often.
    const bases = ['10.0.0.0', '10.0.0.77', '10.0.1.200', '10.0.128.1', '10.1.0.0', '10.0.3.3'];
    const prefixArb = fc.record({ base: fc.constantFrom(...bases), len: fc.integer({ min: 8, max: 32 }) }).map(({ base, len }) => makePrefix(parseAddress(base)!, len));
    const setArb = fc.record({ cidr: prefixArb, except: fc.array(prefixArb, { maxLength: 3 }) }).map(({ cidr, except }) => ({
      cidr: cidr.text,
      except: [...new Set(except.filter((e) => e.len > cidr.len && prefixContains(cidr, e)).map((e) => e.text))],
    }));
    const rulesArb = fc.array(fc.array(setArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 });
    const probes = fc.array(fc.tuple(fc.constantFrom(...bases), fc.integer({ min: -3, max: 3 }), fc.nat({ max: 32 })), { minLength: 20, maxLength: 40 });
    fc.assert(
      fc.property(rulesArb, probes, (rules, probeSpecs) => {
        const policy = pcnp('p', { ingressDeny: rules.map((sets) => ({ fromCIDRSet: sets.map((s) => (s.except.length ? s : { cidr: s.cidr })) })) });
        const plan = prefilterPlan([policy]);
        // Disjoint, sorted, nothing left to merge.
        const ps = plan.prefixes.map((p) => parseCidr(p.prefix) as Prefix);
        for (let i = 1; i < ps.length; i++) {
          const [a, b] = [ps[i - 1]!, ps[i]!];
          assert.ok(a.words[0]! + 2 ** (32 - a.len) <= b.words[0]!, `${a.text} then ${b.text}`);
          const sameRule = ruleRefString(plan.prefixes[i - 1]!.rule) === ruleRefString(plan.prefixes[i]!.rule);
          const buddies = a.len === b.len && a.len > 0 && makePrefix({ family: 4, words: a.words }, a.len - 1).text === makePrefix({ family: 4, words: b.words }, a.len - 1).text;
          assert.ok(!(sameRule && buddies), `${a.text} and ${b.text} should have merged`);
        }
        // Each probe (an address near a base, or a boundary of a planned prefix) against the rules read literally.
        const addresses = probeSpecs.map(([base, delta, shift]) => formatAddress({ family: 4, words: [((parseAddress(base)!.words[0]! + delta * 2 ** Math.min(shift, 31)) >>> 0)] }));
        for (const p of ps) addresses.push(formatAddress({ family: 4, words: p.words }), formatAddress({ family: 4, words: [(p.words[0]! + 2 ** (32 - p.len) - 1) >>> 0] }));
        for (const address of addresses) {
          const a = parseAddress(address)!;
          const literal = rules.findIndex((sets) =>
            sets.some((s) => prefixContains(parseCidr(s.cidr) as Prefix, makePrefix(a, 32)) && !s.except.some((e) => prefixContains(parseCidr(e) as Prefix, makePrefix(a, 32)))),
          );
          const got = prefilterDenies(plan, address);
          assert.equal(got?.index, literal < 0 ? undefined : literal, address);
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

// ---- never dropping what the tc programs allow ----------------------------------

const NODE = 'node-1';

function nodeIdentity(_: EndpointPolicy, address: string): number | undefined {
  const node = address === NODE_ADDRESSES[NODE] ? IDENTITY_HOST : Object.values(NODE_ADDRESSES).includes(address) ? IDENTITY_REMOTE_NODE : undefined;
  return API_SERVER_ADDRESSES.includes(address) ? apiServerIdentity(node) : node;
}

const V4_ADDRESSES = [...POD_ADDRESSES, ...EXTERNAL_ADDRESSES, ...Object.values(NODE_ADDRESSES), ...API_SERVER_ADDRESSES, '203.0.113.9', '0.0.0.1'].filter((a) => !a.includes(':'));

/** Cluster policies that often qualify, and as often miss by one condition. */
const nearQualifyingArb = (name: string) => {
  const blockArb = fc.record({ base: fc.constantFrom(...V4_ADDRESSES), len: fc.constantFrom(0, 8, 16, 22, 24, 30, 32), except: fc.array(fc.record({ base: fc.constantFrom(...V4_ADDRESSES), len: fc.constantFrom(8, 16, 24, 25, 31, 32) }), { maxLength: 2 }) }).map(({ base, len, except }) => {
    const cidr = makePrefix(parseAddress(base)!, len);
    const ex = [...new Set(except.map((e) => makePrefix(parseAddress(e.base)!, e.len)).filter((e) => e.len > cidr.len && prefixContains(cidr, e)).map((e) => e.text))];
    return ex.length ? { cidr: cidr.text, except: ex } : { cidr: cidr.text };
  });
  // A qualifying rule: CIDRs, CIDR sets, world, without ports; or one broken by a single condition.
  const qualifyingArb = fc
    .record({ fromCIDR: fc.option(fc.array(blockArb.map((b) => b.cidr), { minLength: 1, maxLength: 2 }), { nil: undefined }), fromCIDRSet: fc.option(fc.array(blockArb, { minLength: 1, maxLength: 2 }), { nil: undefined }), world: fc.boolean() })
    .map(({ fromCIDR, fromCIDRSet, world }) => ({
      ...(fromCIDR ? { fromCIDR } : {}),
      ...(fromCIDRSet ? { fromCIDRSet } : {}),
      ...(world || (!fromCIDR && !fromCIDRSet) ? { fromEntities: ['world'] } : {}),
    }));
  const breakers = [
    { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
    { toPorts: [{ ports: [{ port: '0', protocol: 'UDP' }] }] },
    { toPorts: [{ ports: [{ port: '53', endPort: 80 }] }] },
    { fromEndpoints: [{ matchLabels: { app: 'a' } }] },
    { fromEntities: ['world', 'cluster'] },
    { fromEntities: ['host'] },
  ];
  const likelyRuleArb = fc.oneof(
    { weight: 3, arbitrary: qualifyingArb },
    { weight: 1, arbitrary: fc.tuple(qualifyingArb, fc.constantFrom(...breakers)).map(([r, b]) => ({ ...r, ...b })) },
  );
  return fc
    .record({
      cluster: fc.constantFrom(true, true, true, false),
      namespace: fc.constantFrom('x', 'y'),
      endpointSelector: fc.constantFrom({}, {}, {}, { matchLabels: { app: 'a' } }, { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'In' as const, values: ['x'] }] }),
      ingressDeny: fc.array(likelyRuleArb, { minLength: 1, maxLength: 3 }),
      ingress: fc.constantFrom(undefined, [{ fromCIDR: ['0.0.0.0/0'] }], [{ fromEntities: ['all'] }]),
    }, { requiredKeys: ['cluster', 'namespace', 'endpointSelector', 'ingressDeny'] })
    .map(({ cluster, namespace, ...spec }) => ({
      kind: cluster ? 'PalisadeClusterNetworkPolicy' : 'PalisadeNetworkPolicy',
      metadata: cluster ? { name } : { name, namespace },
      spec: Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)),
    }));
};

test('the prefilter never drops what the tc programs allow: every source it drops, every pod denies by a deny rule, on every protocol and port', () => {
  let dropped = 0;
  const worlds = worldArb.chain((world) => {
    const names = [...world.namespaces.map((n) => n.name), 'v'];
    return fc
      .tuple(
        fc.array(fc.nat(), { maxLength: 2 }).chain((ids) => fc.tuple(...ids.map((_, i) => palisadeManifestArb(names, `rand${i}`)))),
        fc.array(fc.nat(), { minLength: 1, maxLength: 3 }).chain((ids) => fc.tuple(...ids.map((_, i) => nearQualifyingArb(`pf${i}`)))),
      )
      .map(([random, near]) => ({ ...world, pods: world.pods.map((p) => ({ ...p, node: NODE })), palisade: [...random, ...near].map(input) }));
  });
  fc.assert(
    fc.property(worlds, (world) => {
      const compiled = compile({ ...world, palisadePolicies: world.palisade, identities: allocateIdentities(world), node: NODE });
      const plan = prefilterPlan(world.palisade);
      const byIp = endpointsByIp(compiled);
      // Sources: every address the world knows, and the first and last address of every planned prefix.
      const sources = new Set(V4_ADDRESSES);
      for (const p of plan.prefixes) {
        const q = parseCidr(p.prefix) as Prefix;
        sources.add(formatAddress({ family: 4, words: q.words }));
        sources.add(formatAddress({ family: 4, words: [(q.words[0]! + 2 ** (32 - q.len) - 1) >>> 0] }));
      }
      for (const src of sources) {
        const isWorld = !compiled.ipcache.has(src) && nodeIdentity(undefined as never, src) === undefined;
        const rule = prefilterDenies(plan, src, isWorld);
        if (!rule) continue;
        for (const endpoint of compiled.endpoints.values()) {
          if (!endpoint.ip.includes('.') || endpoint.ip === src) continue;
          dropped++;
          for (const protocol of PROTOCOLS) {
            for (const port of PORTS) {
              const v = evaluate(compiled, { src, dst: endpoint.ip, protocol, port }, byIp, nodeIdentity).ingress!.verdict;
              assert.ok(v.decision === 'deny' && v.rule?.deny, `${src} -> ${endpoint.endpoint} ${protocol}/${port}: the prefilter drops it (${ruleRefString(rule)}), tc says ${JSON.stringify(v)}`);
            }
          }
        }
      }
    }),
    { numRuns: RUNS },
  );
  // The worlds must exercise the property, not pass it vacuously.
  assert.ok(dropped > RUNS, `only ${dropped} (source, pod) pairs dropped over ${RUNS} worlds`);
});
