// observe's flags: what is asked of the API, and malformed filters refused
// before any request, naming what is wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CliError, EXIT } from './errors.ts';
import { flowsPath, planObserve, unknownNodes, type ObserveFlags } from './observe.ts';

const ctx = { namespace: 'default', nowMs: 1_800_000_000_000 };
const plan = (flags: ObserveFlags) => planObserve(flags, ctx);

test('where flows are asked for', () => {
  const rows: Array<[string, ObserveFlags, Array<string | undefined>]> = [
    ['no flag: the context\'s namespace, like kubectl', {}, ['default']],
    ['-A: one request across the cluster', { allNamespaces: true }, [undefined]],
    ['-A wins over -n, like kubectl', { allNamespaces: true, namespace: ['shop'] }, [undefined]],
    ['every -n, once each', { namespace: ['shop', 'db', 'shop'] }, ['shop', 'db']],
    ['pods named and no -n: their namespaces', { pod: ['shop/web', 'db/pg'] }, ['db', 'shop']],
    ['--from-pod and --to-pod: the source\'s namespace is enough', { fromPod: ['shop/web'], toPod: ['db/pg', 'db/pg2'] }, ['shop']],
  ];
  for (const [what, flags, expected] of rows) assert.deepEqual(plan(flags).scopes, expected, what);
});

test('filters become the criteria every agent applies', () => {
  const p = plan({
    namespace: ['shop'],
    pod: ['web'],
    toPod: ['db/pg'],
    label: ['app=web'],
    identity: ['256'],
    ip: ['10.0.0.0/8'],
    port: ['80', '443'],
    protocol: ['tcp'],
    verdict: ['Dropped'],
    reason: ['drop_policy'],
    policy: ['db/allow-shop', 'deny-all', 'NetworkPolicy db/x'],
    node: ['node-1'],
    type: ['new', 'drop-summary'],
  });
  assert.deepEqual(p.criteria, {
    pods: ['shop/web'], // a bare name is in the one -n namespace
    toPods: ['db/pg'],
    labels: ['app=web'],
    identities: [256],
    ips: ['10.0.0.0/8'],
    ports: [80, 443],
    protocols: ['TCP'],
    verdicts: ['dropped'],
    reasons: ['DROP_POLICY'],
    policies: ['NetworkPolicy db/allow-shop', 'NetworkPolicy shop/deny-all', 'NetworkPolicy db/x'],
    nodes: ['node-1'],
    types: ['new', 'drop-summary'],
  });
  assert.deepEqual(p.pods, ['shop/web', 'db/pg']);
  assert.equal(p.output, 'table');
});

test('malformed filters are usage errors (exit 2) that name the filter', () => {
  const rows: Array<[string, ObserveFlags, RegExp]> = [
    ['malformed CIDR', { ip: ['10.0.0.0/33'] }, /invalid filter: not an IPv4 address or CIDR: "10\.0\.0\.0\/33"/],
    ['malformed label', { label: ['app=we b'] }, /invalid filter: not a label as key=value or key: "app=we b"/],
    ['malformed pod', { pod: ['Shop/Web'] }, /invalid filter: not a pod as namespace\/name: "Shop\/Web"/],
    ['port out of range', { port: ['70000'] }, /--port "70000": must be a whole number from 1 to 65535/],
    ['not a port number', { port: ['http'] }, /--port "http"/],
    ['unknown protocol', { protocol: ['IGMP'] }, /--protocol "IGMP": must be one of TCP, UDP, SCTP, ICMP/],
    ['unknown verdict', { verdict: ['allowed'] }, /--verdict "allowed": must be one of forwarded, dropped/],
    ['misspelt drop reason', { reason: ['DROP_POLCY'] }, /--reason "DROP_POLCY": must be one of .*DROP_POLICY/],
    ['unknown event type', { type: ['start'] }, /--type "start"/],
    ['malformed policy', { policy: ['a b c'] }, /--policy "a b c": write it as ns\/name/],
    ['malformed namespace', { namespace: ['Shop'] }, /-n "Shop": not a namespace name/],
    ['malformed duration', { since: '5' }, /--since: duration "5" has no unit/],
    ['unknown output', { output: 'yaml' }, /-o "yaml": must be one of table, json, compact/],
    ['negative --last', { last: '-1' }, /--last "-1"/],
  ];
  for (const [what, flags, message] of rows) {
    assert.throws(() => plan(flags), (e: unknown) => e instanceof CliError && e.exitCode === EXIT.USAGE && message.test(e.message), what);
  }
});

test('the time window: --since is relative to now; following alone starts now', () => {
  assert.equal(plan({ since: '5m' }).sinceMs, ctx.nowMs - 300_000);
  assert.equal(plan({}).sinceMs, undefined);
  assert.equal(plan({ follow: true }).sinceMs, ctx.nowMs);
  assert.equal(plan({ follow: true, last: '20' }).sinceMs, undefined);
});

test('request paths: namespaced or cluster-wide, criteria as URL-encoded JSON', () => {
  const p = plan({ namespace: ['shop'], port: ['80'], last: '10', since: '1s', follow: true });
  const path = flowsPath(p, 'shop');
  const url = new URL(path, 'https://api');
  assert.equal(url.pathname, '/apis/flows.palisade.io/v1alpha1/namespaces/shop/flows');
  assert.deepEqual(JSON.parse(url.searchParams.get('criteria')!), { ports: [80] });
  assert.deepEqual([url.searchParams.get('last'), url.searchParams.get('since'), url.searchParams.get('follow')], ['10', String(ctx.nowMs - 1000), 'true']);
  assert.equal(new URL(flowsPath(plan({ allNamespaces: true }), undefined), 'https://api').pathname, '/apis/flows.palisade.io/v1alpha1/flows');
});

test('a --node that no agent answered for is reported, not an empty result', () => {
  assert.deepEqual(unknownNodes(plan({ node: ['node-1', 'nod-2'] }), ['node-1', 'node-2']), ['nod-2']);
});
