// lib/flow-json.ts, and a follower's lines made through the codec
// (flow-codec.ts: numbers and a dictionary, as they cross to the worker),
// must be exactly what JSON.stringify writes for every flow the enricher can
// make: the export file and followers depend on it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DIRECTION, FLOW_FLAG, FLOW_TYPE, REASON, type FlowEvent } from '../../datapath/abi.ts';
import { flowJson } from '../../lib/flow-json.ts';
import { DICTIONARY_LIMIT, FlowEncoder, FlowLineWriter } from './flow-codec.ts';
import { defaultRuleNumber, ruleId } from '../datapath-plan.ts';
import { enrichFlow, RuleIndex, type FlowContext, type PodFacts } from './enrich.ts';
import { dnsFlow, type DnsFlowContext } from '../dns/dns-flow.ts';

const rules = new RuleIndex();
rules.setPolicy({ namespace: 'db', name: 'allow-web' }, { ingress: 2, egress: 1 });
rules.setPolicy({ namespace: 'db', name: 'deny "all"' }, { ingress: 0, egress: 0 });
const pods = new Map<string, PodFacts>([
  ['db/pg', { namespace: 'db', name: 'pg', labels: { app: 'pg', 'tier\\n': 'a"b\u2028' } }],
  ['shop/web', { namespace: 'shop', name: 'web', labels: {} }],
]);
const owners = new Map([['10.200.1.5', 'shop/web'], ['10.200.2.9', 'db/pg']]);
const isolating = [{ namespace: 'db', name: 'allow-web' }, { namespace: 'db', name: 'deny "all"' }];
const context: FlowContext = {
  node: 'node-2',
  endpoint: (ifindex) => (ifindex === 7 ? 'db/pg' : ifindex === 8 ? 'shop/web' : undefined),
  owner: (ip) => owners.get(ip),
  pod: (key) => pods.get(key),
  rules,
  isolatedBy: (pod, direction) => (pod === 'db/pg' && direction === 'ingress' ? isolating : undefined),
};

const ip = fc.constantFrom('10.200.1.5', '10.200.2.9', '8.8.8.8', '0.0.0.0');
const eventArb: fc.Arbitrary<FlowEvent> = fc.record({
  timeNs: fc.bigInt({ min: 0n, max: 4_000_000_000_000_000_000n }),
  packets: fc.bigInt({ min: 0n, max: 1n << 40n }),
  bytes: fc.bigInt({ min: 0n, max: 1n << 50n }),
  ifindex: fc.constantFrom(7, 8, 9),
  saddr: ip, daddr: ip,
  sport: fc.integer({ min: 0, max: 65535 }), dport: fc.integer({ min: 0, max: 65535 }),
  srcIdentity: fc.constantFrom(0, 1, 2, 6, 300), dstIdentity: fc.constantFrom(0, 1, 2, 6, 400),
  ruleId: fc.constantFrom(0, 12345, ruleId({ namespace: 'db', name: 'allow-web', direction: 'ingress', index: 1 }), ruleId({ namespace: 'db', name: 'allow-web', direction: 'egress', index: 0 }), defaultRuleNumber(isolating[1]!, 'ingress')),
  natAddr: ip, natPort: fc.integer({ min: 0, max: 65535 }),
  protocol: fc.constantFrom(1, 6, 17, 132, 47),
  direction: fc.constantFrom(DIRECTION.INGRESS, DIRECTION.EGRESS),
  type: fc.constantFrom(FLOW_TYPE.NEW, FLOW_TYPE.DROP, FLOW_TYPE.END, FLOW_TYPE.UPDATE, FLOW_TYPE.DROP_SUMMARY, 99),
  reason: fc.constantFrom(REASON.ALLOW_POLICY, REASON.DROP_POLICY, REASON.PASS_UNSELECTED, 250),
  tcpFlags: fc.integer({ min: 0, max: 255 }),
  flags: fc.integer({ min: 0, max: FLOW_FLAG.DEFAULT_DENY | FLOW_FLAG.SERVICE | FLOW_FLAG.RUNNING_TOTAL }),
});

test('flowJson writes the text JSON.stringify writes, for any flow the enricher makes', () => {
  fc.assert(fc.property(eventArb, fc.option(fc.bigInt({ min: 0n, max: 1n << 40n }), { nil: undefined }), (event, packets) => {
    const flow = enrichFlow(event, context, packets);
    // Twice: the second time from the cached texts of the shared parts.
    assert.equal(flowJson(flow), JSON.stringify(flow));
    assert.equal(flowJson(enrichFlow(event, context, packets)), JSON.stringify(flow));
  }), { numRuns: 3000 });
});

test('a pod whose labels change is written with its new labels', () => {
  const e: FlowEvent = {
    timeNs: 1n, packets: 1n, bytes: 60n, ifindex: 7, saddr: '10.200.1.5', daddr: '10.200.2.9', sport: 1, dport: 80, srcIdentity: 300, dstIdentity: 400,
    ruleId: 0, natAddr: '0.0.0.0', natPort: 0, protocol: 6, direction: DIRECTION.INGRESS, type: FLOW_TYPE.NEW, reason: REASON.ALLOW_POLICY, tcpFlags: 2, flags: 0,
  };
  assert.match(flowJson(enrichFlow(e, context)), /"labels":\{\}/);
  pods.set('shop/web', { namespace: 'shop', name: 'web', labels: { app: 'web' } });
  assert.match(flowJson(enrichFlow(e, context)), /"labels":\{"app":"web"\}/);
  // A flow's parts are frozen: a consumer cannot change what other flows share.
  assert.throws(() => { (enrichFlow(e, context).source.labels as Record<string, string>).app = 'x'; }, TypeError);
});

test('a follower\'s lines through the codec are JSON.stringify\'s, batch after batch, the dictionary sent once and started over past its limit', () => {
  const encoder = new FlowEncoder();
  const writer = new FlowLineWriter();
  const line = (f: object) => `{"flow":${JSON.stringify(f)}}\n`;
  let entries = 0;
  fc.assert(fc.property(fc.array(fc.tuple(eventArb, fc.option(fc.bigInt({ min: 0n, max: 1n << 40n }), { nil: undefined })), { maxLength: 30 }), (batch) => {
    const flows = batch.map(([event, packets]) => enrichFlow(event, context, packets));
    const encoded = encoder.encode(flows);
    entries += encoded.dictionary.length;
    assert.equal(writer.lines(encoded), flows.map(line).join(''));
  }), { numRuns: 500 });
  // Shared parts and strings went once: far fewer entries than flows times fields.
  assert.ok(entries < 500 * 30, `${entries} dictionary entries`);
  // A flow the enricher did not make (plain objects, odd strings) is written right too.
  const odd = { ...enrichFlow(eventArbSample(), context), time: 'not "a" time', node: 'n\u2028"1"', source: { ip: '::1', identity: 2, entity: 'world' as const } };
  assert.equal(writer.lines(encoder.encode([odd])), line(odd));
});

test('past its limit the dictionary starts over on both sides', () => {
  const encoder = new FlowEncoder();
  const writer = new FlowLineWriter();
  const flow = enrichFlow(eventArbSample(), context);
  let resets = 0;
  for (let i = 0; i <= DICTIONARY_LIMIT / 2 + 2; i++) {
    // A new address each time: two new strings per flow.
    const f = { ...flow, source: { ...flow.source, ip: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}` }, node: `node-${i}` };
    const encoded = encoder.encode([f]);
    if (encoded.reset) resets++;
    assert.equal(writer.lines(encoded), `{"flow":${JSON.stringify(f)}}\n`);
  }
  assert.equal(resets, 1);
});

function eventArbSample(): FlowEvent {
  return fc.sample(eventArb, { numRuns: 1, seed: 7 })[0]!;
}

const dnsEventArb = fc.record({
  time: fc.date({ min: new Date(0), max: new Date(4_000_000_000_000), noInvalidDate: true }),
  client: fc.record({ ip: ip, port: fc.integer({ min: 1, max: 65535 }) }),
  upstream: ip,
  protocol: fc.constantFrom('UDP' as const, 'TCP' as const),
  name: fc.constantFrom('api.example.com', 'we"ird\u2028.example', ''),
  type: fc.constantFrom('A', 'AAAA', 'TXT'),
  verdict: fc.constantFrom('forwarded' as const, 'refused' as const, 'failed' as const),
  rcode: fc.constantFrom('NOERROR', 'REFUSED', 'NXDOMAIN', 'TIMEOUT'),
  addresses: fc.array(fc.constantFrom('203.0.113.10', '198.51.100.1'), { maxLength: 2 }),
  ttl: fc.nat(86400),
  latencyMs: fc.double({ min: 0, max: 5000, noNaN: true }),
});
const dnsContext: DnsFlowContext = {
  node: 'node-2',
  pod: (a) => (owners.has(a) ? { key: owners.get(a)!, identity: 300 } : undefined),
  labels: (key) => pods.get(key)?.labels,
  isolated: (key) => key === 'db/pg',
};
const fqdnContext: FlowContext = { ...context, dnsNamesOf: (a) => (a === '8.8.8.8' ? Object.freeze(['api.example.com', 'x"y.example']) : Object.freeze([])) };
const fqdnEventArb = eventArb.map((e) => ({ ...e, dstIdentity: 2 ** 30 + 7, srcIdentity: 2 ** 30 + 9 }));

test('DNS flows and flows to learned addresses: flowJson and the codec write what JSON.stringify writes', () => {
  const encoder = new FlowEncoder();
  const writer = new FlowLineWriter();
  fc.assert(fc.property(fc.array(fc.oneof(dnsEventArb.map((e) => dnsFlow(e, dnsContext)), fqdnEventArb.map((e) => enrichFlow(e, fqdnContext))), { maxLength: 20 }), (flows) => {
    for (const f of flows) assert.equal(flowJson(f), JSON.stringify(f));
    assert.equal(writer.lines(encoder.encode(flows)), flows.map((f) => `{"flow":${JSON.stringify(f)}}\n`).join(''));
  }), { numRuns: 500 });
  const learned = enrichFlow({ ...fc.sample(fqdnEventArb, 1)[0]!, direction: DIRECTION.EGRESS, daddr: '8.8.8.8' }, fqdnContext);
  assert.deepEqual(learned.fqdn, ['api.example.com', 'x"y.example']);
});
