// The status of a Palisade policy (pure): conditions from the validator's
// and the enforcement's verdicts, transition times kept while a condition
// holds, writes only when a reader would see a change (a count included),
// capped messages, and the apply body.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { EnforcementVerdict } from './policy-enforcement.ts';
import { desiredStatus, invalidMessage, MAX_MESSAGE, needsWrite, statusApplyBody, type PolicyObject } from './policy-status.ts';

const T0 = new Date('2030-01-01T00:00:00.123Z');
const T1 = new Date('2030-01-01T00:05:00Z');
const policy = (spec: unknown, generation = 1, status?: PolicyObject['status']): PolicyObject => ({
  apiVersion: 'palisade.io/v1alpha1',
  kind: 'PalisadeNetworkPolicy',
  metadata: { name: 'p', namespace: 'x', uid: 'u', generation, resourceVersion: '7' },
  spec,
  ...(status ? { status } : {}),
});
const GOOD = { endpointSelector: {} };
const BAD = { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] };
const ENFORCED: EnforcementVerdict = { selectedEndpoints: 2, status: 'True', reason: 'Enforced', message: 'every node ...', settled: true };
const PENDING: EnforcementVerdict = { selectedEndpoints: 2, status: 'False', reason: 'Pending', message: 'not yet ...', settled: false };
const judge = (p: PolicyObject, now = T0, enforced = ENFORCED) => desiredStatus(p, validatePalisadePolicy(p), enforced, now);

test('Valid follows the validator, naming the field; Enforced and selectedEndpoints the enforcement verdict; times in whole seconds', () => {
  const good = judge(policy(GOOD, 3));
  assert.equal(good.observedGeneration, 3);
  assert.equal(good.selectedEndpoints, 2);
  assert.deepEqual(good.conditions.map(({ type, status, reason, observedGeneration, lastTransitionTime }) => ({ type, status, reason, observedGeneration, lastTransitionTime })), [
    { type: 'Valid', status: 'True', reason: 'Accepted', observedGeneration: 3, lastTransitionTime: '2030-01-01T00:00:00Z' },
    { type: 'Enforced', status: 'True', reason: 'Enforced', observedGeneration: 3, lastTransitionTime: '2030-01-01T00:00:00Z' },
  ]);
  assert.equal(good.conditions[1]!.message, 'every node ...');
  assert.equal(judge(policy(GOOD), T0, { ...PENDING, message: 'x'.repeat(MAX_MESSAGE * 2) }).conditions[1]!.message.length, MAX_MESSAGE);
  const bad = judge(policy(BAD));
  assert.deepEqual(bad.conditions[0], {
    type: 'Valid', status: 'False', reason: 'InvalidSpec', observedGeneration: 1, lastTransitionTime: '2030-01-01T00:00:00Z',
    message: 'spec.egress[0].toCIDRSet[0].except[0]: must be a strict subset of cidr 10.0.0.0/8',
  });
});

test('a condition keeps its transition time while its status holds, and a new generation alone is a write', () => {
  const first = judge(policy(GOOD, 1));
  const stored = policy(GOOD, 1, first);
  assert.equal(needsWrite(stored, judge(stored, T1)), false, 'nothing changed');
  const next = judge(policy(GOOD, 2, first), T1);
  assert.equal(next.conditions[0]!.lastTransitionTime, '2030-01-01T00:00:00Z');
  assert.equal(needsWrite(policy(GOOD, 2, first), next), true, 'observedGeneration moves');
  const broken = judge(policy(BAD, 2, first), T1);
  assert.equal(broken.conditions[0]!.lastTransitionTime, '2030-01-01T00:05:00Z', 'Valid flipped');
  assert.equal(broken.conditions[1]!.lastTransitionTime, '2030-01-01T00:00:00Z', 'Enforced did not');
  assert.equal(needsWrite(policy(BAD, 1, { ...first, conditions: [{ ...first.conditions[0]!, message: 'other' }, first.conditions[1]!] }), judge(policy(BAD, 1))), true);
  assert.equal(needsWrite(policy(GOOD, 1, {}), first), true, 'no status yet');
});

test('Enforced flips keep Valid\'s time; a new count alone is a write', () => {
  const first = judge(policy(GOOD, 1), T0, PENDING);
  const stored = policy(GOOD, 1, first);
  assert.equal(needsWrite(stored, judge(stored, T1, PENDING)), false);
  const enforced = judge(stored, T1, ENFORCED);
  assert.equal(needsWrite(stored, enforced), true);
  assert.equal(enforced.conditions[0]!.lastTransitionTime, '2030-01-01T00:00:00Z', 'Valid held');
  assert.equal(enforced.conditions[1]!.lastTransitionTime, '2030-01-01T00:05:00Z', 'Enforced flipped');
  assert.equal(needsWrite(stored, judge(stored, T1, { ...PENDING, selectedEndpoints: 3 })), true, 'count');
  assert.equal(needsWrite({ ...stored, status: { ...stored.status, selectedEndpoints: undefined } }, judge(stored, T1, PENDING)), true, 'count missing');
  assert.equal(needsWrite(stored, judge(stored, T1, { ...PENDING, reason: 'NoAgent' })), true, 'reason');
});

test('long messages are capped, saying how many errors were left out', () => {
  const errors = Array.from({ length: 500 }, (_, i) => `spec.egress[${i}].toCIDR[0]: must be an IPv4 CIDR: an address and a prefix length, such as 10.0.0.0/8`);
  const m = invalidMessage(errors);
  assert.ok(m.length <= MAX_MESSAGE, `${m.length}`);
  assert.match(m, /^spec\.egress\[0\]\.toCIDR\[0\]: .*; and \d+ more$/);
  assert.equal(invalidMessage(['a', 'b']), 'a; b');
  assert.equal(invalidMessage(['x'.repeat(MAX_MESSAGE + 10)]).length, MAX_MESSAGE);
});

test('the apply body names the object and carries only the status', () => {
  const p = policy(BAD);
  const desired = judge(p);
  assert.deepEqual(statusApplyBody(p, desired), { apiVersion: 'palisade.io/v1alpha1', kind: 'PalisadeNetworkPolicy', metadata: { name: 'p', namespace: 'x' }, status: desired });
  assert.deepEqual(statusApplyBody({ ...p, kind: 'PalisadeClusterNetworkPolicy', metadata: { name: 'c' } }, desired).metadata, { name: 'c' });
});
