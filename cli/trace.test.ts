// policy trace on the scenario cluster (namespaces x, y, z labelled ns=<name>;
// pods a, b, c labelled pod=<name> at 10.0.<ns>.<pod>): the verdict of each
// hook with the policies and rules behind it, as the user reads it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocateIdentities, np, scenarioCluster } from '../policy/fixtures.ts';
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { NetworkPolicyInput, PalisadePolicyInput, Protocol } from '../policy/types.ts';
import { CliError, EXIT } from './errors.ts';
import { kernelDisagreements, kernelQuestions, parseSide, rangeText, renderTrace, trace, type TraceCluster } from './trace.ts';

const base = scenarioCluster();
const cluster = (policies: NetworkPolicyInput[], identities: TraceCluster['identities'] = allocateIdentities(base)): TraceCluster => ({ ...base, policies, identities });
const run = (from: string, to: string, policies: NetworkPolicyInput[], port = 80, protocol: Protocol = 'TCP', c = cluster(policies)) =>
  trace({ from: parseSide('--from', from, 'default'), to: parseSide('--to', to, 'default'), protocol, port }, c);

const denyIngressY = np('y', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
const allowXtoY80 = np('y', 'allow-x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }], ports: [{ port: 80 }] }] });
const egressA = np('x', 'a-out', {
  podSelector: { matchLabels: { pod: 'a' } },
  policyTypes: ['Egress'],
  egress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] } }], ports: [{ port: 443 }] }, { to: [{ podSelector: {} }] }],
});

test('no policy: both directions unselected, allowed', () => {
  const r = run('x/a', 'y/b', []);
  assert.equal(r.allowed, true);
  assert.deepEqual([r.egress?.pieces[0]?.verdict.decision, r.ingress?.pieces[0]?.verdict.decision], ['unselected', 'unselected']);
  assert.equal(renderTrace(r), [
    'TCP/80 from x/a (10.0.1.1 on node-1, identity 256) to y/b (10.0.2.2 on node-2, identity 260)',
    '',
    'egress of x/a: allowed: no policy selects x/a for egress (not isolated)',
    'ingress of y/b: allowed: no policy selects y/b for ingress (not isolated)',
    '',
    'verdict: allowed',
    '',
  ].join('\n'));
});

test('default deny: denied at the ingress of the destination, naming the isolating policy', () => {
  const r = run('x/a', 'y/b', [denyIngressY]);
  assert.equal(r.allowed, false);
  const text = renderTrace(r);
  assert.match(text, /^egress of x\/a: allowed: no policy selects x\/a for egress \(not isolated\)$/m, 'the unisolated direction passes');
  assert.match(text, /^ingress of y\/b: denied: default deny, no rule of NetworkPolicy y\/deny-all allows it$/m);
  assert.match(text, /^verdict: denied at the ingress of y\/b$/m);
});

test('an allowing rule is named with its index; another port is denied by every isolating policy', () => {
  const allowed = run('x/a', 'y/b', [denyIngressY, allowXtoY80]);
  assert.equal(allowed.allowed, true);
  assert.match(renderTrace(allowed), /^ingress of y\/b: allowed by NetworkPolicy y\/allow-x, ingress rule 0 \(it selects the peer\)$/m);
  const otherPort = run('x/a', 'y/b', [denyIngressY, allowXtoY80], 81);
  assert.match(renderTrace(otherPort), /^ingress of y\/b: denied: default deny, no rule of NetworkPolicy y\/allow-x, NetworkPolicy y\/deny-all allows it$/m);
  const fromZ = run('z/a', 'y/b', [denyIngressY, allowXtoY80]);
  assert.equal(fromZ.allowed, false, 'the rule selects namespace x only');
});

test('egress to a CIDR outside the cluster: judged for every address, in the pieces the policy tells apart', () => {
  const r = run('x/a', '192.0.2.0/24', [egressA], 443);
  assert.equal(r.allowed, false);
  assert.equal(r.ingress, undefined);
  assert.deepEqual(r.egress?.pieces.map((p) => [p.peer, p.verdict.decision]), [['192.0.2.0/25', 'allow'], ['192.0.2.128/25', 'deny']]);
  const text = renderTrace(r);
  assert.match(text, /^egress of x\/a: denied for part of it$/m);
  assert.match(text, /^ {2}192\.0\.2\.0\/25: allowed by NetworkPolicy x\/a-out, egress rule 0 \(CIDR region 192\.0\.2\.0\/24\)$/m);
  assert.match(text, /^ingress: the destination is outside the cluster, no Palisade hook judges it$/m);
  // the allowed half alone, and a single address outside every ipBlock
  assert.equal(run('x/a', '192.0.2.0/25', [egressA], 443).allowed, true);
  assert.equal(run('x/a', '198.51.100.7', [egressA], 443).allowed, false);
  assert.equal(run('x/a', '192.0.2.1', [egressA], 80).allowed, false, 'the ipBlock rule is for port 443 only');
});

test('from an address outside the cluster: only the destination\'s ingress judges', () => {
  const r = run('198.51.100.7', 'y/b', [denyIngressY]);
  assert.equal(r.egress, undefined);
  assert.equal(r.allowed, false);
  assert.match(renderTrace(r), /^egress: the source is outside the cluster/m);
  assert.equal(run('198.51.100.7', 'x/b', [denyIngressY]).allowed, true, 'x is not isolated for ingress');
});

test('an address that a pod owns is traced as that pod', () => {
  const r = run('10.0.1.1', 'y/b', [egressA]);
  assert.ok(r.egress, 'the source pod\'s egress is judged');
  assert.equal(r.egress.endpoint, 'x/a');
  assert.deepEqual(r.notes, ['10.0.1.1 is the address of pod x/a']);
});

test('SecurityIdentities unreadable: placeholders give the same verdicts, and the output says so', () => {
  const unknown: TraceCluster = { ...base, policies: [denyIngressY, allowXtoY80], identities: undefined };
  assert.equal(run('x/a', 'y/b', [], 80, 'TCP', unknown).allowed, true);
  const r = run('z/a', 'y/b', [], 80, 'TCP', unknown);
  assert.equal(r.allowed, false);
  assert.match(renderTrace(r), /^note: SecurityIdentities could not be read \(RBAC\): assumed every pod has its identity/m);
});

test('a pod without an identity number matches no selector (fail closed), and the output says why', () => {
  const identities = allocateIdentities(base);
  const key = [...identities.keys()].find((k) => k.includes('"x"') && k.includes('"pod","a"'))!;
  identities.delete(key);
  const r = run('x/a', 'y/b', [denyIngressY, allowXtoY80], 80, 'TCP', cluster([denyIngressY, allowXtoY80], identities));
  assert.equal(r.allowed, false);
  assert.match(renderTrace(r), /^note: x\/a has no security identity yet/m);
});

test('what cannot be traced is an error with the right exit code', () => {
  const rows: Array<[string, () => unknown, number, RegExp]> = [
    ['unknown pod', () => run('x/zz', 'y/b', []), EXIT.NOT_FOUND, /^unknown pod x\/zz$/],
    ['malformed CIDR', () => parseSide('--to', '10.0.0.0/33', 'default'), EXIT.USAGE, /--to "10\.0\.0\.0\/33": malformed CIDR \(the prefix length must be 0 to 32\)/],
    ['malformed address', () => parseSide('--to', '10.0.0.300', 'default'), EXIT.USAGE, /malformed IPv4 address/],
    ['not a pod', () => parseSide('--from', 'X/Y', 'default'), EXIT.USAGE, /not a pod \(namespace\/name\)/],
    ['two addresses', () => run('198.51.100.7', '192.0.2.1', []), EXIT.USAGE, /needs a pod on at least one side/],
  ];
  for (const [what, f, code, message] of rows) {
    assert.throws(f, (e: unknown) => e instanceof CliError && e.exitCode === code && message.test(e.message), what);
  }
});

test('a bare name is a pod of the context namespace', () => {
  assert.deepEqual(parseSide('--from', 'web', 'shop'), { kind: 'pod', namespace: 'shop', name: 'web' });
});

test('the kernel maps are asked about every judged piece, and a disagreement is a warning', () => {
  const r = run('x/a', 'y/b', [denyIngressY]);
  const questions = kernelQuestions(r);
  assert.deepEqual(questions.map((q) => [q.namespace, q.pod, q.direction, q.peer, q.allowed]), [
    ['x', 'a', 'egress', '10.0.2.2', true],
    ['y', 'b', 'ingress', '10.0.1.1', false],
  ]);
  assert.deepEqual(kernelDisagreements(questions, [{ node: 'node-1', reason: 'PASS_UNSELECTED' }, { node: 'node-2', reason: 'DROP_POLICY' }]), []);
  assert.deepEqual(kernelDisagreements(questions, [{ node: 'node-1', reason: 'PASS_UNSELECTED' }, { node: 'node-2', reason: 'ALLOW_POLICY' }]), [
    'the kernel maps of node-2 disagree: ALLOW_POLICY for the ingress of y/b from 10.0.1.1 TCP/80, where the policies say denied; the agent may not have realized the latest change yet (kubectl palisade status)',
  ]);
});

test('ranges print as a CIDR when they are one', () => {
  assert.equal(rangeText(0xc0000200, 0xc000027f), '192.0.2.0/25');
  assert.equal(rangeText(0xc0000201, 0xc0000201), '192.0.2.1');
  assert.equal(rangeText(0xc0000201, 0xc00002ff), '192.0.2.1 - 192.0.2.255');
});

test('Palisade kinds: a deny rule is named with its kind and list, and wins over a NetworkPolicy allow', () => {
  const v = validatePalisadePolicy({
    kind: 'PalisadeClusterNetworkPolicy',
    spec: { endpointSelector: { matchLabels: { 'io.kubernetes.pod.namespace': 'y' } }, ingressDeny: [{ fromEntities: ['cluster'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
  });
  assert.ok(v.ok);
  const deny: PalisadePolicyInput = { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name: 'no-80', spec: v.spec };
  const r = run('x/a', 'y/b', [allowXtoY80], 80, 'TCP', { ...cluster([allowXtoY80]), palisadePolicies: [deny] });
  assert.equal(r.allowed, false);
  assert.match(renderTrace(r), /^ingress of y\/b: denied by PalisadeClusterNetworkPolicy no-80, ingressDeny rule 0 \(the peer is in the cluster\): a deny rule wins over every allow$/m);
  assert.equal(run('x/a', 'y/b', [allowXtoY80], 81, 'TCP', { ...cluster([allowXtoY80]), palisadePolicies: [deny] }).allowed, false, '81: the NetworkPolicy allows only 80');
});
