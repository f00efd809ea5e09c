// Property tests of Palisade's kinds together with NetworkPolicy: the
// compiled entries, evaluated the way the datapath looks them up (deny lanes
// first, then the allow lanes; entities as reserved identity classes), agree
// with a literal reading of ../shared/POLICY-API.md (reference.ts) for random
// clusters, policies of all three kinds, and connections between pods, nodes,
// the API server and outside addresses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { API_SERVER_ADDRESSES, dnsNamesArb, EXTERNAL_ADDRESSES, NODE_ADDRESSES, palisadeManifestArb, PORTS, PROTOCOLS, worldArb, type World } from './arbitraries.ts';
import { compile, Compiler } from './compile.ts';
import { endpointsByIp, evaluate } from './evaluate.ts';
import { allocateIdentities } from './fixtures.ts';
import { apiServerIdentity, IDENTITY_HOST, IDENTITY_REMOTE_NODE } from './ids.ts';
import { validatePalisadePolicy } from './palisade-policy.ts';
import { allowed, type Party } from './reference.ts';
import type { CompiledPolicy, EndpointPolicy, PalisadePolicyInput } from './types.ts';

const RUNS = Number(process.env.POLICY_PROPERTY_RUNS ?? 150);

type PalisadeWorld = World & { palisade: PalisadePolicyInput[]; dnsNames: Map<string, string[]> };

/** The DNS servers of FQDN rules' implicit DNS rule, among the generated pods. */
const DNS_SERVERS = { namespace: 'x', podSelector: { matchLabels: { app: 'a' } } };

function toInput(manifest: { kind: string; metadata: { name: string; namespace?: string }; spec: unknown }): PalisadePolicyInput {
  const v = validatePalisadePolicy(manifest);
  if (!v.ok) throw new Error(`generated policy is invalid: ${v.errors.join('; ')}\n${JSON.stringify(manifest)}`);
  return { kind: manifest.kind as PalisadePolicyInput['kind'], namespace: manifest.metadata.namespace ?? '', name: manifest.metadata.name, spec: v.spec };
}

const palisadeWorldArb: fc.Arbitrary<PalisadeWorld> = worldArb.chain((world) => {
  const names = [...world.namespaces.map((n) => n.name), 'v'];
  return fc
    .array(fc.nat(), { maxLength: 4 })
    .chain((ids) => fc.tuple(fc.tuple(...ids.map((_, i) => palisadeManifestArb(names, `pp${i}`))), dnsNamesArb))
    // Every pod on node-1 (the node of `host`), so that one compilation serves every endpoint.
    .map(([manifests, dnsNames]) => ({ ...world, pods: world.pods.map((p) => ({ ...p, node: 'node-1' })), palisade: manifests.map(toInput), dnsNames }));
});

/** The identity of a node or API server address as node-1 sees it (its ipcache). */
function nodeIdentity(_: EndpointPolicy, address: string): number | undefined {
  const node = address === NODE_ADDRESSES['node-1'] ? IDENTITY_HOST : Object.values(NODE_ADDRESSES).includes(address) ? IDENTITY_REMOTE_NODE : undefined;
  return API_SERVER_ADDRESSES.includes(address) ? apiServerIdentity(node) : node;
}

interface Mismatch {
  from: string;
  to: string;
  protocol: string;
  port: number;
  compiled: boolean;
  reference: boolean;
}

function compare(world: PalisadeWorld, compiled: CompiledPolicy): Mismatch | undefined {
  const byIp = endpointsByIp(compiled);
  const outside = [...new Set([...EXTERNAL_ADDRESSES.filter((a) => !a.includes(':')), ...Object.values(NODE_ADDRESSES), ...API_SERVER_ADDRESSES])];
  const parties: { label: string; ip: string; party: Party }[] = [
    ...world.pods.filter((p) => p.ip !== undefined && !p.ip.includes(':')).map((p) => ({ label: `${p.namespace}/${p.name}`, ip: p.ip!, party: { pod: p } })),
    ...outside.map((ip) => ({ label: ip, ip, party: { ip } })),
  ];
  const extras = { palisade: world.palisade, nodeAddresses: NODE_ADDRESSES, apiServerAddresses: API_SERVER_ADDRESSES, dnsNames: world.dnsNames, dnsServers: DNS_SERVERS };
  for (const from of parties) {
    for (const to of parties) {
      if (from === to || (!('pod' in from.party) && !('pod' in to.party))) continue;
      for (const protocol of PROTOCOLS) {
        for (const port of PORTS) {
          const c = evaluate(compiled, { src: from.ip, dst: to.ip, protocol, port }, byIp, nodeIdentity).allowed;
          const r = allowed(world.policies, world.pods, world.namespaces, from.party, to.party, protocol, port, extras);
          if (c !== r) return { from: from.label, to: to.label, protocol, port, compiled: c, reference: r };
        }
      }
    }
  }
  return undefined;
}

test('Palisade policies with NetworkPolicies: compiled, evaluated like the datapath, agrees with the API page read literally', () => {
  fc.assert(
    fc.property(palisadeWorldArb, (world) => {
      const compiled = compile({ ...world, palisadePolicies: world.palisade, identities: allocateIdentities(world), node: 'node-1', dnsNames: world.dnsNames, dnsServers: DNS_SERVERS });
      assert.deepEqual(compiled.problems, []);
      const m = compare(world, compiled);
      assert.equal(m, undefined, JSON.stringify(m));
    }),
    { numRuns: RUNS },
  );
});

test('Palisade policies: incremental compilation equals a fresh compile after every change', () => {
  fc.assert(
    fc.property(palisadeWorldArb, palisadeWorldArb, (a, b) => {
      const c = new Compiler({ node: 'node-1', dnsServers: DNS_SERVERS });
      const feed = (w: PalisadeWorld) => {
        for (const [name, ips] of w.dnsNames) c.setDnsName(name, ips);
        for (const ns of w.namespaces) c.setNamespace(ns);
        c.setIdentities(allocateIdentities(w));
        for (const pod of w.pods) c.setPod(pod);
        for (const p of w.policies) c.setPolicy(p);
        for (const p of w.palisade) c.setPalisadePolicy(p);
      };
      feed(a);
      c.snapshot();
      // Move to b: remove what a had that b lacks, then set b.
      for (const p of a.palisade) if (!b.palisade.some((q) => q.kind === p.kind && q.name === p.name && q.namespace === p.namespace)) c.deletePalisadePolicy(p.kind, p.namespace, p.name);
      for (const p of a.policies) if (!b.policies.some((q) => q.name === p.name && q.namespace === p.namespace)) c.deletePolicy(p.namespace, p.name);
      for (const p of a.pods) if (!b.pods.some((q) => q.name === p.name && q.namespace === p.namespace)) c.deletePod(p.namespace, p.name);
      for (const ns of a.namespaces) if (!b.namespaces.some((n) => n.name === ns.name)) c.deleteNamespace(ns.name);
      for (const name of a.dnsNames.keys()) if (!b.dnsNames.has(name)) c.setDnsName(name, []);
      feed(b);
      const fresh = compile({ ...b, palisadePolicies: b.palisade, identities: allocateIdentities(b), node: 'node-1', dnsNames: b.dnsNames, dnsServers: DNS_SERVERS });
      const got = c.snapshot();
      assert.deepEqual(got.ipcache, fresh.ipcache);
      assert.deepEqual([...got.endpoints.keys()], [...fresh.endpoints.keys()]);
      for (const [k, e] of fresh.endpoints) assert.deepEqual(got.endpoints.get(k), e, k);
    }),
    { numRuns: Math.ceil(RUNS / 2) },
  );
});

test('Palisade policies: relabelling namespaces selects pods again (pseudo-labels), as a fresh compile does', () => {
  fc.assert(
    fc.property(palisadeWorldArb, fc.array(fc.record({ team: fc.constantFrom('a', 'b', undefined), env: fc.constantFrom('p', 'q', undefined) }), { minLength: 4, maxLength: 4 }), (world, relabel) => {
      const c = new Compiler({ node: 'node-1', dnsServers: DNS_SERVERS });
      const identities = allocateIdentities(world);
      for (const ns of world.namespaces) c.setNamespace(ns);
      for (const pod of world.pods) c.setPod(pod);
      for (const p of world.policies) c.setPolicy(p);
      for (const p of world.palisade) c.setPalisadePolicy(p);
      for (const [name, ips] of world.dnsNames) c.setDnsName(name, ips);
      c.setIdentities(identities);
      c.snapshot();
      const namespaces = world.namespaces.map((ns, i) => {
        const labels: Record<string, string> = { ...ns.labels };
        delete labels.team;
        delete labels.env;
        for (const [k, v] of Object.entries(relabel[i % relabel.length]!)) if (v !== undefined) labels[k] = v;
        return { ...ns, labels };
      });
      const next = { ...world, namespaces };
      const nextIdentities = allocateIdentities(next);
      for (const ns of namespaces) c.setNamespace(ns);
      c.setIdentities(nextIdentities);
      const fresh = compile({ ...next, palisadePolicies: next.palisade, identities: nextIdentities, node: 'node-1', dnsServers: DNS_SERVERS });
      const got = c.snapshot();
      for (const [k, e] of fresh.endpoints) assert.deepEqual(got.endpoints.get(k), e, k);
    }),
    { numRuns: RUNS },
  );
});
