// Property tests: the compiled entries, evaluated the way the datapath looks
// them up (evaluate.ts), agree with the reference reading of the spec
// (reference.ts) for random clusters, policies and connections.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EXTERNAL_ADDRESSES, namedEgressWorldArb, PORTS, PROTOCOLS, worldArb, type World } from './arbitraries.ts';
import { compile } from './compile.ts';
import { endpointsByIp, evaluate } from './evaluate.ts';
import { allocateIdentities } from './fixtures.ts';
import { allowed, type Party } from './reference.ts';
import type { CompiledPolicy } from './types.ts';
import { validateNetworkPolicy } from './validate.ts';

const RUNS = Number(process.env.POLICY_PROPERTY_RUNS ?? 150);

interface Mismatch {
  from: string;
  to: string;
  protocol: string;
  port: number;
  compiled: boolean;
  reference: boolean;
}

/** Every (source, destination, protocol, port) over the world's pods and some outside addresses. */
function compare(world: World, compiled: CompiledPolicy, ok: (compiled: boolean, reference: boolean) => boolean): Mismatch | undefined {
  const byIp = endpointsByIp(compiled);
  const parties: { label: string; ip: string; party: Party }[] = [
    ...world.pods.filter((p) => p.ip !== undefined).map((p) => ({ label: `${p.namespace}/${p.name}`, ip: p.ip!, party: { pod: p } })),
    ...EXTERNAL_ADDRESSES.map((ip) => ({ label: ip, ip, party: { ip } })),
  ];
  for (const from of parties) {
    for (const to of parties) {
      if (from === to || (!('pod' in from.party) && !('pod' in to.party))) continue;
      for (const protocol of PROTOCOLS) {
        for (const port of PORTS) {
          const c = evaluate(compiled, { src: from.ip, dst: to.ip, protocol, port }, byIp).allowed;
          const r = allowed(world.policies, world.pods, world.namespaces, from.party, to.party, protocol, port);
          if (!ok(c, r)) return { from: from.label, to: to.label, protocol, port, compiled: c, reference: r };
        }
      }
    }
  }
  return undefined;
}

test('generated policies are valid NetworkPolicies', () => {
  fc.assert(
    fc.property(fc.oneof(worldArb, namedEgressWorldArb), (world) => {
      for (const p of world.policies) {
        const r = validateNetworkPolicy({ metadata: { name: p.name, namespace: p.namespace }, spec: p.spec });
        assert.ok(r.ok, JSON.stringify(r));
      }
    }),
    { numRuns: RUNS },
  );
});

test('compiled policy, evaluated like the datapath, agrees with the reference', () => {
  fc.assert(
    fc.property(worldArb, (world) => {
      const compiled = compile({ ...world, identities: allocateIdentities(world) });
      assert.deepEqual(compiled.problems, []);
      assert.deepEqual(compiled.missingIdentities, []);
      const m = compare(world, compiled, (c, r) => c === r);
      assert.equal(m, undefined, JSON.stringify(m));
    }),
    { numRuns: RUNS },
  );
});

test('named egress ports towards ipBlocks and everywhere: compiled agrees with the reference', () => {
  fc.assert(
    fc.property(namedEgressWorldArb, (world) => {
      const compiled = compile({ ...world, identities: allocateIdentities(world) });
      assert.deepEqual(compiled.problems, []);
      const m = compare(world, compiled, (c, r) => c === r);
      assert.equal(m, undefined, JSON.stringify(m));
    }),
    { numRuns: RUNS },
  );
});

test('with identities missing, the compiled policy never allows what the reference refuses (fail closed)', () => {
  fc.assert(
    fc.property(worldArb, fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), (world, keep) => {
      const all = allocateIdentities(world);
      const identities = new Map([...all].filter((_, i) => keep[i % keep.length]));
      const compiled = compile({ ...world, identities });
      assert.equal(compiled.missingIdentities.length, all.size - identities.size);
      const m = compare(world, compiled, (c, r) => !c || r);
      assert.equal(m, undefined, JSON.stringify(m));
    }),
    { numRuns: RUNS },
  );
});

test('compiling the same input in another order gives the same output', () => {
  fc.assert(
    fc.property(worldArb, fc.nat(), (world, seed) => {
      const identities = allocateIdentities(world);
      const rotate = <T>(xs: T[]) => (xs.length ? [...xs.slice(seed % xs.length), ...xs.slice(0, seed % xs.length)].reverse() : xs);
      const a = compile({ ...world, identities });
      const b = compile({ policies: rotate(world.policies), pods: rotate(world.pods), namespaces: rotate(world.namespaces), identities });
      assert.deepEqual(b, a);
    }),
    { numRuns: RUNS },
  );
});
