// The incremental Compiler: after any sequence of changes its output equals a
// fresh one-shot compile of the same state, and endpointsChangedSince reports
// exactly the endpoints whose result changed. Plus table tests of the API.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { namedEgressPolicyArb, namespacesArb, NAMESPACES, podArb, policyArb, POD_ADDRESSES, UNKNOWN_NAMESPACE } from './arbitraries.ts';
import { compile, Compiler } from './compile.ts';
import { allocateIdentities, np, scenarioCluster } from './fixtures.ts';
import { IDENTITY_INIT, identityKey } from './ids.ts';
import type { EndpointPolicy, NamespaceInput, NetworkPolicyInput, PodInput } from './types.ts';

const RUNS = Number(process.env.POLICY_PROPERTY_RUNS ?? 60);
const NS_NAMES = [...NAMESPACES, UNKNOWN_NAMESPACE];

type Op =
  | { kind: 'ns'; ns: NamespaceInput }
  | { kind: 'delNs'; name: string }
  | { kind: 'pod'; pod: PodInput }
  | { kind: 'delPod'; namespace: string; name: string }
  | { kind: 'policy'; policy: NetworkPolicyInput }
  | { kind: 'delPolicy'; namespace: string; name: string }
  | { kind: 'ids'; keep: boolean[] }
  | { kind: 'podEdit'; namespace: string; name: string; edit: Partial<PodInput> };

const nameArb = (prefix: string, n: number) => fc.integer({ min: 0, max: n - 1 }).map((i) => `${prefix}${i}`);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: namespacesArb.map((list) => ({ kind: 'ns' as const, ns: list[0]! })) },
  { weight: 1, arbitrary: fc.constantFrom(...NAMESPACES).map((name) => ({ kind: 'delNs' as const, name })) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(nameArb('p', 5).chain((name) => podArb(NS_NAMES.slice(0, 3), name)), fc.option(fc.constantFrom(...POD_ADDRESSES), { nil: undefined }))
      .map(([pod, ip]) => ({ kind: 'pod' as const, pod: (ip === undefined ? pod : { ...pod, ip }) as PodInput })),
  },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...NS_NAMES.slice(0, 3)), nameArb('p', 5)).map(([namespace, name]) => ({ kind: 'delPod' as const, namespace, name })) },
  { weight: 5, arbitrary: nameArb('np', 4).chain((name) => policyArb(NS_NAMES.slice(0, 3), name)).map((policy) => ({ kind: 'policy' as const, policy })) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...NS_NAMES.slice(0, 3)), nameArb('np', 4)).map(([namespace, name]) => ({ kind: 'delPolicy' as const, namespace, name })) },
  { weight: 3, arbitrary: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }).map((keep) => ({ kind: 'ids' as const, keep })) },
  { weight: 2, arbitrary: nameArb('np', 4).chain((name) => namedEgressPolicyArb(NS_NAMES.slice(0, 3), name)).map((policy) => ({ kind: 'policy' as const, policy })) },
  // An existing pod changes one thing: its labels, its address, or its container ports.
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...NS_NAMES.slice(0, 3)),
        nameArb('p', 5),
        podArb(['x'], 'p').chain((p) =>
          fc.oneof(
            fc.constant({ labels: p.labels }),
            fc.constant({ containerPorts: p.containerPorts }),
            fc.constantFrom(...POD_ADDRESSES).map((ip) => ({ ip })),
          ),
        ),
      )
      .map(([namespace, name, edit]) => ({ kind: 'podEdit' as const, namespace, name, edit: edit as Partial<PodInput> })),
  },
);

// Make-before-break (README, "Relabelled pods"): a pod whose labels change
// to a label set without an identity number keeps being judged by the labels
// it had, if those have a number, until the new ones get one. The model
// below tracks those "judged" labels; a fresh compile of the pods with their
// judged labels is what the incremental compiler must equal.
test('incremental compilation equals a fresh compile after every change, and reports exactly the changed endpoints', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(opArb, fc.nat({ max: 4 })), { minLength: 10, maxLength: 40, size: 'max' }), fc.constantFrom(undefined, 'node-1'), (steps, node) => {
      const namespaces = new Map<string, NamespaceInput>();
      const pods = new Map<string, PodInput>();
      const policies = new Map<string, NetworkPolicyInput>();
      // The allocator: stable numbers for every key ever seen; usually run after each change.
      const numbering = new Map<string, number>();
      let identities = new Map<string, number>();
      const allocate = () => {
        for (const k of allocateIdentities({ namespaces: [...namespaces.values()], pods: [...pods.values()] }).keys()) {
          if (!numbering.has(k)) numbering.set(k, 256 + numbering.size);
        }
        identitiesSet(new Map(numbering));
      };
      const c = new Compiler(node === undefined ? {} : { node });
      // The model of make-before-break: pod key -> the labels it is judged by.
      const judged = new Map<string, PodInput['labels']>();
      const nsLabels = (name: string) => ({ ...namespaces.get(name)?.labels, 'kubernetes.io/metadata.name': name });
      const keyOf = (p: PodInput, labels: PodInput['labels']) => identityKey(nsLabels(p.namespace), labels);
      const sameLabels = (a: PodInput['labels'], b: PodInput['labels']) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
      const podSet = (next: PodInput) => {
        const key = `${next.namespace}/${next.name}`;
        const before = pods.has(key) ? judged.get(key) : undefined;
        const hold = before !== undefined && !sameLabels(before, next.labels) && identities.has(keyOf(next, before)) && !identities.has(keyOf(next, next.labels));
        judged.set(key, hold ? before : next.labels);
        pods.set(key, next);
        c.setPod(next);
      };
      const identitiesSet = (map: Map<string, number>) => {
        identities = map;
        c.setIdentities(identities);
        for (const p of pods.values()) {
          const key = `${p.namespace}/${p.name}`;
          const j = judged.get(key)!;
          if (!sameLabels(j, p.labels) && (identities.has(keyOf(p, p.labels)) || !identities.has(keyOf(p, j)))) judged.set(key, p.labels);
        }
      };
      const namespaceSet = (name: string, apply: () => void) => {
        const before = JSON.stringify(Object.entries(nsLabels(name)).sort());
        apply();
        if (JSON.stringify(Object.entries(nsLabels(name)).sort()) === before) return;
        // A namespace relabel gives up every hold in it: its pods take their labels.
        for (const p of pods.values()) if (p.namespace === name) judged.set(`${p.namespace}/${p.name}`, p.labels);
      };
      let gen = c.endpointsChangedSince(0).generation;
      let prev = new Map<string, EndpointPolicy>();
      for (const [op, allocateAfter] of steps) {
        switch (op.kind) {
          case 'ns':
            namespaceSet(op.ns.name, () => {
              namespaces.set(op.ns.name, op.ns);
              c.setNamespace(op.ns);
            });
            break;
          case 'delNs':
            namespaceSet(op.name, () => {
              namespaces.delete(op.name);
              c.deleteNamespace(op.name);
            });
            break;
          case 'pod':
            podSet(op.pod);
            break;
          case 'delPod':
            pods.delete(`${op.namespace}/${op.name}`);
            judged.delete(`${op.namespace}/${op.name}`);
            c.deletePod(op.namespace, op.name);
            break;
          case 'policy':
            policies.set(`${op.policy.namespace}/${op.policy.name}`, op.policy);
            c.setPolicy(op.policy);
            break;
          case 'delPolicy':
            policies.delete(`${op.namespace}/${op.name}`);
            c.deletePolicy(op.namespace, op.name);
            break;
          case 'podEdit': {
            const key = `${op.namespace}/${op.name}`;
            const pod = pods.get(key);
            if (!pod) break;
            podSet({ ...pod, ...op.edit });
            break;
          }
          case 'ids': {
            // Some numbers withdrawn (or not yet allocated).
            identitiesSet(new Map([...numbering].filter((_, i) => op.keep[i % op.keep.length])));
            break;
          }
        }
        if (op.kind !== 'ids' && allocateAfter > 0) allocate();
        const changes = c.endpointsChangedSince(gen);
        gen = changes.generation;
        const snap = c.snapshot();
        const fresh = compile({
          policies: [...policies.values()],
          pods: [...pods.values()].map((p) => ({ ...p, labels: judged.get(`${p.namespace}/${p.name}`)! })),
          namespaces: [...namespaces.values()],
          identities,
          ...(node === undefined ? {} : { node }),
        });
        // Held pods' new label sets are still missing (what the operator must allocate).
        const pending = [...pods.values()].filter((p) => !sameLabels(p.labels, judged.get(`${p.namespace}/${p.name}`)!)).map((p) => keyOf(p, p.labels));
        fresh.missingIdentities = [...new Set([...fresh.missingIdentities, ...pending])].sort();
        assert.deepEqual(snap, fresh, `after ${JSON.stringify(op)}`);
        const keys = new Set([...prev.keys(), ...snap.endpoints.keys()]);
        for (const k of keys) {
          let differs = true;
          try {
            assert.deepEqual(snap.endpoints.get(k), prev.get(k));
            differs = false;
          } catch {}
          assert.equal(changes.changed.includes(k), differs, `${k} after ${JSON.stringify(op)}`);
        }
        prev = snap.endpoints;
      }
    }),
    { numRuns: RUNS },
  );
});

// ---- the API, row by row ----

function loaded() {
  const cluster = scenarioCluster(['x', 'y'], ['a', 'b']);
  const c = new Compiler();
  cluster.namespaces.forEach((n) => c.setNamespace(n));
  cluster.pods.forEach((p) => c.setPod(p));
  c.setIdentities(allocateIdentities(cluster));
  return { c, cluster };
}

test('the first read lists every endpoint; a read with nothing new lists none', () => {
  const { c } = loaded();
  const first = c.endpointsChangedSince(0);
  assert.deepEqual(first.changed, ['x/a', 'x/b', 'y/a', 'y/b']);
  assert.equal(first.full, false);
  assert.deepEqual(c.endpointsChangedSince(first.generation).changed, []);
});

test('re-applying an unchanged policy or pod changes nothing (resync)', () => {
  const { c, cluster } = loaded();
  const policy = np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] });
  c.setPolicy(policy);
  const g = c.endpointsChangedSince(0).generation;
  c.setPolicy(structuredClone(policy));
  cluster.pods.forEach((p) => c.setPod(structuredClone(p)));
  c.setIdentities(allocateIdentities(cluster));
  assert.deepEqual(c.endpointsChangedSince(g), { generation: g, changed: [], full: false });
});

test('a policy change recompiles only the endpoints it selects', () => {
  const { c } = loaded();
  const g = c.endpointsChangedSince(0).generation;
  c.setPolicy(np('y', 'b-only', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: {} }] }] }));
  assert.deepEqual(c.endpointsChangedSince(g).changed, ['y/b']);
  assert.deepEqual(c.result('y/b')?.ingress?.isolatedBy, [{ namespace: 'y', name: 'b-only' }]);
  assert.equal(c.result('y/a')?.ingress, undefined);
});

test('a pod whose labels change is re-selected, and the peers that see it are recompiled', () => {
  const { c, cluster } = loaded();
  // y/a admits ingress from pods labelled role=db in any namespace.
  c.setPolicy(np('y', 'from-db', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: 'db' } } }] }] }));
  const g = c.endpointsChangedSince(0).generation;
  const xb = cluster.pods.find((p) => p.namespace === 'x' && p.name === 'b')!;
  const moved = { ...xb, labels: { pod: 'b', role: 'db' } };
  c.setPod(moved);
  // x/b's new label set has no number yet: x/b keeps its identity (make-before-break), nothing changes until it has one.
  assert.deepEqual(c.endpointsChangedSince(g).changed, []);
  const key = identityKey({ 'kubernetes.io/metadata.name': 'x', ns: 'x' }, moved.labels);
  assert.deepEqual(c.missingIdentities(), [key]);
  const ids = new Map(allocateIdentities(cluster));
  ids.set(key, 999);
  const g2 = c.endpointsChangedSince(g).generation;
  c.setIdentities(ids);
  assert.deepEqual(c.endpointsChangedSince(g2).changed, ['x/b', 'y/a']);
  assert.deepEqual(
    c.result('y/a')?.ingress?.entries.map((e) => e.peer),
    [{ kind: 'identity', identity: 999 }],
  );
});

// ---- make-before-break: a relabelled pod keeps its verdicts until its new identity exists ----

/**
 * x/b relabelled from {pod: b} to {pod: b, rev: 2}: y/a admits ingress from
 * pods of x labelled pod=b and rev!=2 (so from x/b's old label set only); x-deny
 * isolates pods with pod=b, rev!=2 in x for egress (x/b's old labels select
 * it, its new ones do not).
 */
function relabelled() {
  const { c, cluster } = loaded();
  const notRev2 = { matchLabels: { pod: 'b' }, matchExpressions: [{ key: 'rev', operator: 'NotIn' as const, values: ['2'] }] };
  c.setPolicy(np('y', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: notRev2 }] }] }));
  c.setPolicy(np('x', 'x-deny', { podSelector: notRev2, policyTypes: ['Egress'] }));
  const xb = cluster.pods.find((p) => p.namespace === 'x' && p.name === 'b')!;
  const ids = allocateIdentities(cluster);
  const nsx = { 'kubernetes.io/metadata.name': 'x', ns: 'x' };
  const oldId = ids.get(identityKey(nsx, xb.labels))!;
  const newKey = identityKey(nsx, { pod: 'b', rev: '2' });
  return { c, ids, xb, oldId, newKey, moved: { ...xb, labels: { pod: 'b', rev: '2' } } };
}

test('make-before-break: a relabel whose new identity is missing keeps the old identity, selectors and ipcache entry', () => {
  const { c, xb, oldId, newKey, moved } = relabelled();
  const before = c.result('x/b')!;
  assert.equal(before.identity, oldId);
  assert.deepEqual(before.egress?.isolatedBy, [{ namespace: 'x', name: 'x-deny' }]);
  assert.deepEqual(c.result('y/a')?.ingress?.entries.map((e) => e.peer), [{ kind: 'identity', identity: oldId }]);
  const g = c.endpointsChangedSince(0).generation;
  c.setPod(moved);
  // Nothing changes anywhere: x/b is judged by its old label set, and its new one is pending.
  assert.deepEqual(c.endpointsChangedSince(g).changed, []);
  assert.deepEqual(c.result('x/b'), before, 'x/b keeps its identity and its own (old) policy, not a union');
  assert.equal(c.ipcache().get(xb.ip!), oldId, 'peers still see x/b as its old identity');
  assert.deepEqual(c.result('y/a')?.ingress?.entries.map((e) => e.peer), [{ kind: 'identity', identity: oldId }], 'selectors still select x/b');
  assert.deepEqual(c.missingIdentities(), [newKey]);
  // More churn while the identity is missing: still held on the old labels.
  c.setPod({ ...xb, labels: { pod: 'b', rev: '3' } });
  c.setPod(moved);
  assert.deepEqual(c.endpointsChangedSince(g).changed, []);
  assert.equal(c.ipcache().get(xb.ip!), oldId);
});

test('make-before-break: the switch happens at once when the new identity appears', () => {
  const { c, ids, xb, newKey, moved } = relabelled();
  const g = c.endpointsChangedSince(0).generation;
  c.setPod(moved);
  c.setIdentities(new Map([...ids, [newKey, 900]]));
  const r = c.endpointsChangedSince(g);
  assert.deepEqual(r.changed, ['x/b', 'y/a']);
  const now = c.result('x/b')!;
  assert.equal(now.identity, 900);
  assert.equal(now.identityKey, newKey);
  assert.equal(now.egress, undefined, 'x-deny no longer selects x/b: its new labels decide');
  assert.equal(c.ipcache().get(xb.ip!), 900);
  assert.deepEqual(c.result('y/a')?.ingress?.entries, [], 'from-b no longer selects x/b');
  assert.deepEqual(c.missingIdentities(), []);
});

test('make-before-break: relabelled back before the new identity exists, the pod simply keeps its labels', () => {
  const { c, ids, xb, oldId, newKey, moved } = relabelled();
  c.setPod(moved);
  c.setPod(xb);
  assert.deepEqual(c.missingIdentities(), []);
  // Its number arriving later changes nothing for x/b.
  const g = c.endpointsChangedSince(0).generation;
  c.setIdentities(new Map([...ids, [newKey, 900]]));
  assert.deepEqual(c.endpointsChangedSince(g).changed, []);
  assert.equal(c.ipcache().get(xb.ip!), oldId);
});

test('make-before-break: a new label set whose number is known applies at once', () => {
  const { c, ids, xb, newKey, moved } = relabelled();
  c.setIdentities(new Map([...ids, [newKey, 900]]));
  c.setPod(moved);
  assert.equal(c.result('x/b')!.identity, 900);
  assert.equal(c.ipcache().get(xb.ip!), 900);
});

test('make-before-break: the old number withdrawn while held: the pod takes its new labels, without identity (fail closed)', () => {
  const { c, ids, xb, oldId, newKey, moved } = relabelled();
  c.setPod(moved);
  c.setIdentities(new Map([...ids].filter(([, n]) => n !== oldId)));
  const r = c.result('x/b')!;
  assert.equal(r.identity, undefined);
  assert.equal(r.identityKey, newKey);
  assert.equal(r.egress, undefined);
  assert.equal(c.ipcache().get(xb.ip!), IDENTITY_INIT, 'an address of a pod without a number is INIT: matched by no selector, never world');
  assert.deepEqual(c.result('y/a')?.ingress?.entries, []);
});

test('make-before-break: a namespace relabel gives up the hold (its pods take their labels)', () => {
  const { c, xb, moved } = relabelled();
  c.setPod(moved);
  c.setNamespace({ name: 'x', labels: { ns: 'x', team: 't' } });
  const r = c.result('x/b')!;
  assert.equal(r.identity, undefined);
  assert.equal(r.identityKey, identityKey({ 'kubernetes.io/metadata.name': 'x', ns: 'x', team: 't' }, moved.labels));
  assert.equal(c.ipcache().get(xb.ip!), IDENTITY_INIT, 'an address of a pod without a number is INIT: matched by no selector, never world');
});

test('make-before-break: a new pod without an identity is fail closed; so is a relabel of a pod that had none', () => {
  const { c, ids } = relabelled();
  const fresh: PodInput = { namespace: 'x', name: 'new', labels: { pod: 'b', rev: '1' }, ip: '10.0.1.50', node: 'node-1', containerPorts: [] };
  c.setPod(fresh);
  const key = identityKey({ 'kubernetes.io/metadata.name': 'x', ns: 'x' }, fresh.labels);
  assert.equal(c.result('x/new')!.identity, undefined);
  assert.equal(c.ipcache().get('10.0.1.50'), IDENTITY_INIT, 'an address of a pod without a number is INIT: matched by no selector, never world');
  assert.deepEqual(c.result('y/a')?.ingress?.entries.map((e) => e.peer), [{ kind: 'identity', identity: ids.get(identityKey({ 'kubernetes.io/metadata.name': 'x', ns: 'x' }, { pod: 'b' })) }]);
  // Relabelled again, still without a number: nothing to keep, it takes its new labels.
  c.setPod({ ...fresh, labels: { pod: 'b', rev: '2' } });
  assert.equal(c.result('x/new')!.identityKey, identityKey({ 'kubernetes.io/metadata.name': 'x', ns: 'x' }, { pod: 'b', rev: '2' }));
  assert.equal(c.result('x/new')!.egress, undefined, 'judged by its new labels: x-deny does not select it');
  assert.deepEqual(c.missingIdentities().includes(key), false);
});

test('named egress ports of an identity whose pods disagree follow a pod that changes address or ports', () => {
  const c = new Compiler();
  const web = (name: string, ip: string, port: number): PodInput => ({ namespace: 'y', name, labels: { app: 'web' }, ip, containerPorts: [{ name: 'web', containerPort: port, protocol: 'TCP' }] });
  c.setPod({ namespace: 'x', name: 'client', labels: { app: 'client' }, ip: '10.0.0.1', containerPorts: [] });
  c.setPod(web('w1', '10.0.1.1', 8080));
  c.setPod(web('w2', '10.0.1.2', 9090));
  c.setIdentities(new Map([
    [identityKey({ 'kubernetes.io/metadata.name': 'x' }, { app: 'client' }), 300],
    [identityKey({ 'kubernetes.io/metadata.name': 'y' }, { app: 'web' }), 301],
  ]));
  c.setPolicy(np('x', 'to-web', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'web' }] }] }));
  const regions = () => c.result('x/client')!.egress!.cidrRegions.map((r) => `${r.prefix}:${r.entries.map((e) => (e.port === 'any' ? 'any' : e.port.from)).join(',')}`);
  const identityPorts = () => c.result('x/client')!.egress!.entries.map((e) => `${e.peer.kind === 'identity' ? e.peer.identity : e.peer.kind}:${e.port === 'any' ? 'any' : e.port.from}`);
  assert.deepEqual(regions(), ['10.0.1.1/32:8080', '10.0.1.2/32:9090']);
  assert.deepEqual(identityPorts(), []);
  c.setPod(web('w2', '10.0.1.7', 9090));
  assert.deepEqual(regions(), ['10.0.1.1/32:8080', '10.0.1.7/32:9090']);
  // Now they agree: back to one identity entry, no regions.
  c.setPod(web('w2', '10.0.1.7', 8080));
  assert.deepEqual(regions(), []);
  assert.deepEqual(identityPorts(), ['301:8080']);
});

test('a deleted pod is reported once and has no result', () => {
  const { c } = loaded();
  const g = c.endpointsChangedSince(0).generation;
  c.deletePod('x', 'a');
  const r = c.endpointsChangedSince(g);
  assert.deepEqual(r.changed, ['x/a']);
  assert.equal(c.result('x/a'), undefined);
  assert.deepEqual(c.endpointsChangedSince(r.generation).changed, []);
});

test('with a node, only that node’s pods are endpoints, and a pod moving in appears', () => {
  const cluster = scenarioCluster(['x', 'y'], ['a', 'b']);
  const c = new Compiler({ node: 'node-1' });
  cluster.pods.forEach((p) => c.setPod(p));
  assert.deepEqual(c.endpointKeys(), ['x/a', 'y/a']);
  c.setPod({ ...cluster.pods[1]!, node: 'node-1' });
  assert.deepEqual(c.endpointKeys(), ['x/a', 'x/b', 'y/a']);
});

test('a caller too far behind gets the full list', () => {
  const c = new Compiler();
  let g = 0;
  for (let i = 0; i < 1400; i++) {
    c.setPod({ namespace: 'x', name: `p${i}`, labels: {}, ip: `10.1.${i >> 8}.${i & 255}`, containerPorts: [] });
    g = c.endpointsChangedSince(g).generation;
    c.deletePod('x', `p${i}`);
    g = c.endpointsChangedSince(g).generation;
  }
  c.setPod({ namespace: 'x', name: 'last', labels: {}, ip: '10.2.0.1', containerPorts: [] });
  assert.deepEqual(c.endpointsChangedSince(0), { generation: g + 1, changed: ['x/last'], full: true });
  assert.deepEqual(c.endpointsChangedSince(g).changed, ['x/last']);
});

// ---- addresses claimed by several pods (a stale or evicted pod, an address reused) ----

const claimant = (name: string, labels: Record<string, string>, extra: Partial<PodInput> = {}): PodInput => ({
  namespace: 'x',
  name,
  labels,
  ip: '10.9.0.5',
  containerPorts: [],
  ...extra,
});

/** A compiler fed `pods` in order, with an identity number for each distinct label set (in order of appearance). */
function withClaimants(pods: PodInput[], node?: string): Compiler {
  const c = new Compiler(node === undefined ? {} : { node });
  const ids = new Map<string, number>();
  for (const p of pods) {
    const key = identityKey({ 'kubernetes.io/metadata.name': p.namespace }, p.labels);
    if (!ids.has(key)) ids.set(key, 300 + ids.size);
  }
  c.setIdentities(ids);
  pods.forEach((p) => c.setPod(p));
  return c;
}

test('an address claimed by two pods belongs to the most recently created one, whatever their names and the input order', () => {
  // The older pod's name sorts last: the old rule (greater pod key wins) would give it the address.
  const old = claimant('z-old', { app: 'old' }, { uid: 'u-1', createdAt: 1_000 });
  const reused = claimant('a-new', { app: 'new' }, { uid: 'u-2', createdAt: 2_000 });
  for (const order of [[old, reused], [reused, old]]) {
    const c = withClaimants(order);
    // Identities are numbered in order of appearance: a-new is 301 when fed second.
    const newId = order[0] === old ? 301 : 300;
    assert.equal(c.ipcache().get('10.9.0.5'), newId, 'the address maps to the newest pod’s identity');
    assert.deepEqual(c.addressOwners().get('10.9.0.5'), { pod: 'x/a-new', uid: 'u-2', identity: newId });
  }
});

test('equal creation times: the greater uid owns the address, never the greater name', () => {
  const c = withClaimants([
    claimant('z', { app: 'one' }, { uid: 'aaa', createdAt: 5 }), // identity 300
    claimant('a', { app: 'two' }, { uid: 'bbb', createdAt: 5 }), // identity 301
  ]);
  assert.equal(c.ipcache().get('10.9.0.5'), 301);
  assert.equal(c.addressOwners().get('10.9.0.5')?.pod, 'x/a');
});

test('when the owner leaves, the other claimant gets the address back; an owner without an identity keeps it (fail closed)', () => {
  const c = withClaimants([claimant('older', { app: 'one' }, { uid: 'u-1', createdAt: 1 }), claimant('newer', { app: 'two' }, { uid: 'u-2', createdAt: 2 })]);
  assert.equal(c.ipcache().get('10.9.0.5'), 301);
  // The newer pod relabelled to a label set with no number yet keeps its identity meanwhile (make-before-break)...
  c.setPod(claimant('newer', { app: 'three' }, { uid: 'u-2', createdAt: 2 }));
  assert.equal(c.ipcache().get('10.9.0.5'), 301);
  // ...and once its old number is withdrawn too, the address is nobody's identity, not the older pod's.
  c.setIdentities(new Map([[identityKey({ 'kubernetes.io/metadata.name': 'x' }, { app: 'one' }), 300]]));
  assert.equal(c.ipcache().get('10.9.0.5'), IDENTITY_INIT, 'an address of a pod without a number is INIT: matched by no selector, never world');
  assert.deepEqual(c.addressOwners().get('10.9.0.5'), { pod: 'x/newer', uid: 'u-2', identity: undefined });
  c.deletePod('x', 'newer');
  assert.equal(c.ipcache().get('10.9.0.5'), 300);
});

test('the node’s CNI registry decides who owns its local addresses', () => {
  const wired = claimant('wired', { app: 'one' }, { uid: 'u-1', createdAt: 1, node: 'node-1' }); // identity 300
  // Newer, but the registry did not give it this address: a stale status, or a claim from another node.
  const forged = claimant('forged', { app: 'two' }, { uid: 'u-2', createdAt: 2, node: 'node-2' }); // identity 301
  // A pod of this node whose sandbox is gone (the registry no longer lists it) claims another local address.
  const unwired = claimant('unwired', { app: 'three' }, { uid: 'u-3', createdAt: 3, node: 'node-1', ip: '10.9.0.6' }); // identity 302
  const c = withClaimants([wired, forged, unwired], 'node-1');
  // Before the registry is known: creation time decides, and every claim counts.
  assert.equal(c.ipcache().get('10.9.0.5'), 301);
  assert.equal(c.ipcache().get('10.9.0.6'), 302);
  c.setLocalAddresses(new Map([['10.9.0.5', 'x/wired']]));
  assert.equal(c.ipcache().get('10.9.0.5'), 300, 'the pod the registry wired with the address owns it');
  assert.equal(c.ipcache().has('10.9.0.6'), false, 'a local pod the registry does not list owns no address');
  // The registry hands 10.9.0.6 to `unwired` (CNI ADD): now it owns it.
  c.setLocalAddresses(new Map([['10.9.0.5', 'x/wired'], ['10.9.0.6', 'x/unwired']]));
  assert.equal(c.ipcache().get('10.9.0.6'), 302);
});

test('property: every claimed address goes to its newest claimant (uid on a tie), whatever the order of changes', () => {
  const claimArb = fc.record({
    name: fc.constantFrom('a', 'b', 'c', 'd'),
    app: fc.constantFrom('one', 'two', 'three'),
    ip: fc.constantFrom('10.9.0.1', '10.9.0.2', '10.9.0.3'),
    createdAt: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    uid: fc.constantFrom('u1', 'u2', 'u3', 'u4'),
    deleted: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(claimArb, { maxLength: 12 }), (ops) => {
      const c = new Compiler();
      const ids = new Map(['one', 'two', 'three'].map((app, i) => [identityKey({ 'kubernetes.io/metadata.name': 'x' }, { app }), 300 + i]));
      c.setIdentities(ids);
      const state = new Map<string, PodInput>();
      for (const op of ops) {
        if (op.deleted) {
          c.deletePod('x', op.name);
          state.delete(op.name);
        } else {
          const pod: PodInput = { namespace: 'x', name: op.name, labels: { app: op.app }, ip: op.ip, containerPorts: [], uid: op.uid, createdAt: op.createdAt };
          c.setPod(pod);
          state.set(op.name, pod);
        }
      }
      // A literal reading: per address, the claimant with the greatest (createdAt, uid, key).
      const rank = (p: PodInput) => [p.createdAt ?? -Infinity, p.uid ?? '', p.name] as const;
      const beats = (a: PodInput, b: PodInput) => {
        const [x, y] = [rank(a), rank(b)];
        return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] > y[1] : x[2] > y[2];
      };
      const expected = new Map<string, PodInput>();
      for (const p of state.values()) if (!expected.has(p.ip!) || beats(p, expected.get(p.ip!)!)) expected.set(p.ip!, p);
      const want = new Map([...expected].sort(([a], [b]) => (a < b ? -1 : 1)).map(([ip, p]) => [ip, ids.get(identityKey({ 'kubernetes.io/metadata.name': 'x' }, p.labels))!]));
      assert.deepEqual(c.ipcache(), want);
      // The same final state set in reverse order gives the same answer.
      const fresh = new Compiler();
      fresh.setIdentities(ids);
      [...state.values()].reverse().forEach((p) => fresh.setPod(p));
      assert.deepEqual(fresh.ipcache(), want);
    }),
    { numRuns: RUNS * 5 },
  );
});

test('a named port that comes to resolve to a number its rule already allows changes nothing, and is not reported', () => {
  // Found by the property test above (seed -485259759).
  const c = new Compiler();
  const src: PodInput = { namespace: 'x', name: 'p0', labels: {}, containerPorts: [], ip: '10.0.0.1' };
  const dst: PodInput = { namespace: 'y', name: 'p1', labels: { app: 'a' }, containerPorts: [] };
  c.setPolicy({ namespace: 'x', name: 'np3', spec: { podSelector: {}, egress: [{ to: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, namespaceSelector: {} }], ports: [{ port: 8080 }, { port: 'http' }] }] } });
  c.setPod(src);
  c.setPod(dst);
  c.setIdentities(allocateIdentities({ namespaces: [], pods: [src, dst] }));
  const { generation } = c.endpointsChangedSince(0);
  c.setPod({ ...dst, containerPorts: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] });
  assert.deepEqual(c.endpointsChangedSince(generation).changed, []);
});
