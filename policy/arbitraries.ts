// fast-check generators for the property tests: small clusters with
// overlapping label vocabularies, and valid NetworkPolicies using every
// feature (all selector operators, ipBlocks with excepts around pod IPs,
// numeric, ranged and named ports, all protocols, policyTypes variations).

import fc from 'fast-check';
import { formatAddress, parseAddress, parseCidr, prefixContains, makePrefix } from './cidr.ts';
import { identityKey, NAMESPACE_NAME_LABEL } from './ids.ts';
import type {
  ContainerPort,
  LabelSelector,
  LabelSelectorRequirement,
  NamespaceInput,
  NetworkPolicyInput,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PodInput,
  PolicyType,
  Protocol,
} from './types.ts';

export const NAMESPACES = ['x', 'y', 'z', 'w'];
/** A namespace that pods and policies may use without a Namespace object. */
export const UNKNOWN_NAMESPACE = 'v';
export const PROTOCOLS: Protocol[] = ['TCP', 'UDP', 'SCTP'];
export const PORTS = [53, 79, 80, 81, 82, 8080];
export const PORT_NAMES = ['http', 'dns', 'metrics', 'nope'];
/** Pod addresses are drawn from these (IPv4 and a few IPv6). */
export const POD_ADDRESSES = [
  ...[0, 1, 2, 3].flatMap((a) => [1, 2, 3, 130].map((b) => `10.0.${a}.${b}`)),
  'fd00::1',
  'fd00::2',
  'fd00:0:0:1::1',
];
/** Addresses that are never pods. */
export const EXTERNAL_ADDRESSES = ['10.0.9.9', '192.168.0.1', '10.0.1.200', 'fd00::99', '2001:db8::1'];

const LABEL_VALUES: Record<string, string[]> = {
  app: ['a', 'b', 'c'],
  tier: ['f', 'b'],
  team: ['a', 'b'],
  env: ['p', 'q'],
  ns: ['x', 'y', 'z', 'w', 'v'],
  [NAMESPACE_NAME_LABEL]: ['x', 'y', 'z', 'w', 'v'],
};
const SELECTOR_KEYS = Object.keys(LABEL_VALUES);

const labelsArb = (keys: string[]) =>
  fc.record(Object.fromEntries(keys.map((k) => [k, fc.constantFrom(...LABEL_VALUES[k]!)])), { requiredKeys: [] }) as fc.Arbitrary<
    Record<string, string>
  >;

const requirementArb: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record({
    key: fc.constantFrom(...SELECTOR_KEYS),
    operator: fc.constantFrom('In' as const, 'NotIn' as const),
    values: fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'f', 'p', 'x', 'y', 'z', 'v'), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ key: fc.constantFrom(...SELECTOR_KEYS), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
);

export const selectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  { weight: 3, arbitrary: fc.record({ matchLabels: labelsArb(['app', 'tier', 'team', 'ns']) }) },
  { weight: 3, arbitrary: fc.record({ matchExpressions: fc.array(requirementArb, { minLength: 1, maxLength: 1 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ matchLabels: labelsArb(['app', 'tier', 'team', 'ns']), matchExpressions: fc.array(requirementArb, { maxLength: 2 }) }, { requiredKeys: [] }),
  },
);

/** A prefix around one of the addresses; excepts strictly inside it. */
const ipBlockArb = fc
  .record({
    base: fc.constantFrom(...POD_ADDRESSES, ...EXTERNAL_ADDRESSES, '0.0.0.0'),
    len: fc.nat(),
    excepts: fc.array(fc.record({ base: fc.constantFrom(...POD_ADDRESSES, ...EXTERNAL_ADDRESSES), len: fc.nat() }), { maxLength: 3 }),
    hostBits: fc.boolean(),
  })
  .map(({ base, len, excepts, hostBits }) => {
    const a = parseAddress(base)!;
    const width = a.family === 4 ? 32 : 128;
    const choices = a.family === 4 ? [0, 8, 16, 22, 24, 25, 30, 32] : [0, 16, 48, 64, 120, 128];
    const cidrLen = choices[len % choices.length]!;
    const cidr = makePrefix(a, cidrLen);
    const except: string[] = [];
    for (const e of excepts) {
      const ea = parseAddress(e.base)!;
      const el = cidrLen + 1 + (e.len % Math.max(1, width - cidrLen));
      if (el > width || ea.family !== a.family) continue;
      const p = makePrefix(ea, el);
      if (prefixContains(cidr, p) && p.len > cidr.len) except.push(p.text);
    }
    // Host bits set in the cidr are accepted by the API server; write some that way.
    const text = hostBits ? `${formatAddress(a)}/${cidrLen}` : cidr.text;
    return except.length ? { cidr: text, except } : { cidr: text };
  });

const peerArb: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ podSelector: selectorArb }),
  fc.record({ namespaceSelector: selectorArb }),
  fc.record({ podSelector: selectorArb, namespaceSelector: selectorArb }),
  fc.record({ ipBlock: ipBlockArb }),
);

const portArb: fc.Arbitrary<NetworkPolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS) }, { requiredKeys: [] }),
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORTS) }, { requiredKeys: ['port'] }),
  fc
    .record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORTS), span: fc.integer({ min: 0, max: 3 }) }, { requiredKeys: ['port', 'span'] })
    .map(({ span, ...p }) => ({ ...p, endPort: p.port + span })),
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORT_NAMES) }, { requiredKeys: ['port'] }),
);

const optList = <T>(arb: fc.Arbitrary<T>, max: number) => fc.option(fc.array(arb, { maxLength: max }), { nil: undefined });

const ruleArb = (peerKey: 'from' | 'to') =>
  fc.record({ [peerKey]: optList(peerArb, 3), ports: optList(portArb, 3) }, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;

const policyTypesArb: fc.Arbitrary<PolicyType[] | undefined> = fc.constantFrom(
  undefined,
  [],
  ['Ingress'],
  ['Egress'],
  ['Ingress', 'Egress'],
  ['Egress', 'Ingress'],
);

export const policyArb = (namespaces: string[], name: string): fc.Arbitrary<NetworkPolicyInput> =>
  fc
    .record({
      namespace: fc.constantFrom(...namespaces),
      podSelector: selectorArb,
      policyTypes: policyTypesArb,
      ingress: optList(ruleArb('from'), 3),
      egress: optList(ruleArb('to'), 3),
    })
    .map(({ namespace, podSelector, policyTypes, ingress, egress }) => {
      const spec: NetworkPolicyInput['spec'] = { podSelector };
      if (policyTypes) spec.policyTypes = policyTypes;
      if (ingress) spec.ingress = ingress;
      if (egress) spec.egress = egress;
      return { namespace, name, spec };
    });

const containerPortArb: fc.Arbitrary<ContainerPort> = fc.constantFrom<ContainerPort>(
  { name: 'http', containerPort: 80, protocol: 'TCP' },
  { name: 'http', containerPort: 8080, protocol: 'TCP' },
  { name: 'http', containerPort: 80, protocol: 'UDP' },
  { name: 'dns', containerPort: 53, protocol: 'UDP' },
  { name: 'dns', containerPort: 53, protocol: 'TCP' },
  { name: 'metrics', containerPort: 81, protocol: 'SCTP' },
  { name: 'metrics', containerPort: 81, protocol: 'TCP' },
);

export interface World {
  namespaces: NamespaceInput[];
  pods: PodInput[];
  policies: NetworkPolicyInput[];
}

export const namespacesArb: fc.Arbitrary<NamespaceInput[]> = fc
  .subarray(NAMESPACES, { minLength: 1 })
  .chain((names) => fc.tuple(...names.map((n) => labelsArb(['team', 'env']).map((labels) => ({ name: n, labels: { ...labels, ns: n, [NAMESPACE_NAME_LABEL]: n } })))));

export const podArb = (namespaces: string[], name: string): fc.Arbitrary<Omit<PodInput, 'ip'> & { ip?: string }> =>
  fc.record(
    {
      namespace: fc.constantFrom(...namespaces),
      name: fc.constant(name),
      labels: labelsArb(['app', 'tier']),
      node: fc.constantFrom('node-1', 'node-2'),
      containerPorts: fc.uniqueArray(containerPortArb, { maxLength: 3 }),
    },
    { requiredKeys: ['namespace', 'name', 'labels', 'containerPorts'] },
  );

/** Gives pods with the same identity key the same container ports (as the pods of one Deployment have). */
export function samePortsPerIdentity(namespaces: NamespaceInput[], pods: PodInput[]): PodInput[] {
  const first = new Map<string, PodInput>();
  return pods.map((p) => {
    const ns = namespaces.find((n) => n.name === p.namespace);
    const key = identityKey({ ...ns?.labels, [NAMESPACE_NAME_LABEL]: p.namespace }, p.labels);
    const f = first.get(key);
    if (!f) {
      first.set(key, p);
      return p;
    }
    return { ...p, containerPorts: f.containerPorts };
  });
}

/** Egress policies whose rules go to ipBlocks (or everywhere) on named ports: the per-pod resolution path. */
export const namedEgressPolicyArb = (namespaces: string[], name: string): fc.Arbitrary<NetworkPolicyInput> =>
  fc
    .record({
      namespace: fc.constantFrom(...namespaces),
      podSelector: selectorArb,
      egress: fc.array(
        fc.record(
          {
            to: fc.option(fc.array(fc.oneof({ weight: 3, arbitrary: fc.record({ ipBlock: ipBlockArb }) }, { weight: 1, arbitrary: peerArb }), { maxLength: 2 }), { nil: undefined }),
            ports: fc.array(
              fc.oneof(
                { weight: 3, arbitrary: fc.record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom('http', 'dns', 'metrics') }, { requiredKeys: ['port'] }) },
                { weight: 1, arbitrary: portArb },
              ),
              { minLength: 1, maxLength: 2 },
            ),
          },
          { requiredKeys: ['ports'] },
        ),
        { minLength: 1, maxLength: 2 },
      ),
    })
    .map(({ namespace, podSelector, egress }) => ({ namespace, name, spec: { podSelector, policyTypes: ['Egress'] as PolicyType[], egress } }));

export const worldArbWith = (policy: (namespaces: string[], name: string) => fc.Arbitrary<NetworkPolicyInput>): fc.Arbitrary<World> =>
  namespacesArb.chain((namespaces) => {
    const names = [...namespaces.map((n) => n.name), UNKNOWN_NAMESPACE];
    return fc
      .record({
        pods: fc.tuple(...[0, 1, 2, 3, 4, 5, 6].map((i) => podArb(names, `p${i}`))).chain((pods) =>
          fc
            .tuple(
              fc.integer({ min: 1, max: pods.length }),
              fc.shuffledSubarray(POD_ADDRESSES, { minLength: pods.length, maxLength: pods.length }),
              fc.array(fc.nat({ max: 5 }), { minLength: pods.length, maxLength: pods.length }),
            )
            .map(([n, ips, noIp]) => pods.slice(0, n).map((p, i) => (noIp[i] === 0 && i > 0 ? { ...p } : { ...p, ip: ips[i]! })) as PodInput[]),
        ),
        policies: fc.tuple(...[0, 1, 2, 3, 4, 5].map((i) => policy(names, `np${i}`))).chain((ps) => fc.integer({ min: 0, max: ps.length }).map((n) => ps.slice(0, n))),
      })
      // Half of the worlds give pods of one identity the same container ports (the usual case), the other half
      // leave them random, so that pods of one identity resolve a named port differently.
      .chain(({ pods, policies }) => fc.boolean().map((same) => ({ namespaces, pods: same ? samePortsPerIdentity(namespaces, pods) : pods, policies })));
  });

export const worldArb: fc.Arbitrary<World> = worldArbWith(policyArb);
export const namedEgressWorldArb: fc.Arbitrary<World> = worldArbWith(namedEgressPolicyArb);

/** Whether a CIDR text parses (sanity for generated ipBlocks). */
export const cidrOk = (s: string) => typeof parseCidr(s) !== 'string';

// ---- Palisade's kinds ----------------------------------------------------------

/** Node addresses of the generated worlds, and the API server's (on each node's address, and one off every node). */
export const NODE_ADDRESSES: Readonly<Record<string, string>> = { 'node-1': '172.16.0.1', 'node-2': '172.16.0.2' };
export const API_SERVER_ADDRESSES = ['172.16.0.1', '172.16.0.2', '10.96.0.1'];

const PSEUDO_NS = 'io.kubernetes.pod.namespace';
const PSEUDO_NS_LABEL = 'io.cilium.k8s.namespace.labels.';

/** Selectors over pod labels and pseudo-labels (the namespace, and its labels `team`, `env`). */
const pseudoRequirementArb: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record({
    key: fc.constantFrom(PSEUDO_NS, `${PSEUDO_NS_LABEL}team`, `${PSEUDO_NS_LABEL}env`, `${PSEUDO_NS_LABEL}${NAMESPACE_NAME_LABEL}`),
    operator: fc.constantFrom('In' as const, 'NotIn' as const),
    values: fc.uniqueArray(fc.constantFrom('a', 'b', 'p', 'q', 'x', 'y', 'z', 'v'), { minLength: 1, maxLength: 2 }),
  }),
  fc.record({ key: fc.constantFrom(PSEUDO_NS, `${PSEUDO_NS_LABEL}team`), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
);

const palisadeSelectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  { weight: 2, arbitrary: selectorArb },
  { weight: 1, arbitrary: fc.record({ matchLabels: fc.record({ [PSEUDO_NS]: fc.constantFrom(...NAMESPACES, UNKNOWN_NAMESPACE) }) }) },
  {
    weight: 2,
    arbitrary: fc
      .record({ base: selectorArb, extra: fc.array(pseudoRequirementArb, { minLength: 1, maxLength: 2 }) })
      .map(({ base, extra }) => ({ ...base, matchExpressions: [...(base.matchExpressions ?? []), ...extra] })),
  },
);

/** Palisade's CIDR fields are IPv4 only. */
const ipv4BlockArb = ipBlockArb.filter((b) => !b.cidr.includes(':'));

const ENTITY_NAMES = ['all', 'world', 'cluster', 'host', 'remote-node', 'kube-apiserver'] as const;

const palisadePortArb = fc.oneof(
  fc.record({ port: fc.constantFrom(...PORTS.map(String), '0'), protocol: fc.constantFrom('TCP', 'UDP', 'SCTP', 'ANY') }, { requiredKeys: ['port'] }),
  fc
    .record({ port: fc.constantFrom(...PORTS), span: fc.integer({ min: 1, max: 3 }), protocol: fc.constantFrom('TCP', 'UDP', 'ANY') })
    .map(({ port, span, protocol }) => ({ port: String(port), endPort: port + span, protocol })),
);

const palisadeRuleArb = (ingress: boolean) => {
  const [e, n, c, s] = ingress ? ['fromEndpoints', 'fromEntities', 'fromCIDR', 'fromCIDRSet'] : ['toEndpoints', 'toEntities', 'toCIDR', 'toCIDRSet'];
  return fc.record(
    {
      [e!]: fc.array(palisadeSelectorArb, { minLength: 1, maxLength: 2 }),
      [n!]: fc.uniqueArray(fc.constantFrom(...ENTITY_NAMES), { minLength: 1, maxLength: 2 }),
      [c!]: fc.array(ipv4BlockArb.map((b) => b.cidr), { minLength: 1, maxLength: 2 }),
      [s!]: fc.array(ipv4BlockArb, { minLength: 1, maxLength: 2 }),
      toPorts: fc.array(fc.record({ ports: fc.array(palisadePortArb, { minLength: 1, maxLength: 2 }) }), { minLength: 1, maxLength: 2 }),
      ...(ingress ? {} : { toFQDNs: fc.array(fqdnSelectorArb, { minLength: 1, maxLength: 2 }) }),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<Record<string, unknown>>;
};

/** Names the generated worlds learn, and FQDN selectors over them (spelt as users do: any case, trailing dots). */
export const DNS_NAMES = ['api.example.com', 'a.b.example.com', 'www.example.org', 'x.example.com', 'example.com'];
const fqdnSelectorArb = fc.oneof(
  fc.record({ matchName: fc.constantFrom(...DNS_NAMES, 'API.Example.com.', 'nothing.example.net') }),
  fc.record({ matchPattern: fc.constantFrom('*', '*.example.com', '**.example.com', 'a*.example.com', '*.b.example.com', 'www.example.*', '*.EXAMPLE.org.') }),
);

/** Learned names: each to some outside addresses, sometimes a pod's, a node's or the API server's. */
export const dnsNamesArb: fc.Arbitrary<Map<string, string[]>> = fc
  .array(
    fc.tuple(
      fc.constantFrom(...DNS_NAMES),
      fc.uniqueArray(fc.constantFrom(...EXTERNAL_ADDRESSES.filter((a) => !a.includes(':')), '10.0.1.1', '172.16.0.2', '10.96.0.1'), { minLength: 1, maxLength: 3 }),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => new Map(pairs));

/**
 * A PalisadeNetworkPolicy or PalisadeClusterNetworkPolicy manifest (raw, as
 * a user writes it: run it through validatePalisadePolicy for the
 * compiler's normalized spec).
 */
export const palisadeManifestArb = (namespaces: string[], name: string) =>
  fc
    .record(
      {
        cluster: fc.boolean(),
        namespace: fc.constantFrom(...namespaces),
        endpointSelector: palisadeSelectorArb,
        ingress: fc.array(palisadeRuleArb(true), { maxLength: 2 }),
        ingressDeny: fc.array(palisadeRuleArb(true), { maxLength: 1 }),
        egress: fc.array(palisadeRuleArb(false), { maxLength: 2 }),
        egressDeny: fc.array(palisadeRuleArb(false), { maxLength: 1 }),
        enableDefaultDeny: fc.record({ ingress: fc.boolean(), egress: fc.boolean() }, { requiredKeys: [] }),
      },
      { requiredKeys: ['cluster', 'namespace', 'endpointSelector'] },
    )
    .map(({ cluster, namespace, ...spec }) => ({
      apiVersion: 'palisade.io/v1alpha1',
      kind: cluster ? 'PalisadeClusterNetworkPolicy' : 'PalisadeNetworkPolicy',
      metadata: cluster ? { name } : { name, namespace },
      spec,
    }));
