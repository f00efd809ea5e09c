// Followers' lines written by the worker thread: the same bytes as
// JSON.stringify's lines, batches answered in order, and after close the
// lines are still written (on the calling thread).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIRECTION, FLOW_FLAG, FLOW_TYPE, REASON, type FlowEvent } from '../../datapath/abi.ts';
import type { Flow } from '../../lib/flow.ts';
import { ruleId } from '../datapath-plan.ts';
import { enrichFlow, RuleIndex, type FlowContext } from './enrich.ts';
import { FlowLines } from './flow-lines.ts';

const rules = new RuleIndex();
rules.setPolicy({ namespace: 'db', name: 'allow-web' }, { ingress: 1, egress: 0 });
const isolating = [{ namespace: 'db', name: 'allow-web' }];
const context: FlowContext = {
  node: 'node-1',
  endpoint: (ifindex) => (ifindex === 7 ? 'db/pg' : undefined),
  owner: (ip) => (ip === '10.200.2.9' ? 'db/pg' : ip === '10.200.1.5' ? 'shop/web' : undefined),
  pod: (key) => ({ namespace: key.split('/')[0]!, name: key.split('/')[1]!, labels: { app: key.split('/')[1]! } }),
  rules,
  isolatedBy: (pod, direction) => (pod === 'db/pg' && direction === 'ingress' ? isolating : undefined),
};
const flow = (k: number): Flow => enrichFlow({
  timeNs: 1_764_547_200_000_000_000n + BigInt(k), packets: 1n, bytes: 60n, ifindex: 7, saddr: k % 3 ? '10.200.1.5' : '192.0.2.1', daddr: '10.200.2.9',
  sport: 30000 + k, dport: 80, srcIdentity: 300, dstIdentity: 400, ruleId: k % 2 ? ruleId({ namespace: 'db', name: 'allow-web', direction: 'ingress', index: 0 }) : 0,
  natAddr: '10.96.0.10', natPort: 80, protocol: 6, direction: DIRECTION.INGRESS, type: k % 5 ? FLOW_TYPE.NEW : FLOW_TYPE.DROP,
  reason: k % 5 ? REASON.ALLOW_POLICY : REASON.DROP_POLICY, tcpFlags: 2, flags: k % 5 ? (k % 7 ? 0 : FLOW_FLAG.SERVICE) : FLOW_FLAG.DEFAULT_DENY,
} satisfies FlowEvent, context);
const expected = (flows: Flow[]) => flows.map((f) => `{"flow":${JSON.stringify(f)}}\n`).join('');

test('the worker writes exactly JSON.stringify\'s lines, batches answered in the order given', async () => {
  const lines = new FlowLines();
  try {
    const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 500 }, (_, i) => flow(b * 500 + i)));
    const answers = await Promise.all(batches.map((batch) => lines.lines(batch)));
    answers.forEach((bytes, b) => assert.equal(Buffer.from(bytes).toString(), expected(batches[b]!), `batch ${b}`));
  } finally {
    await lines.close();
  }
});

test('after close (or should the worker die) the lines are written on this thread, the same', async () => {
  const lines = new FlowLines();
  await lines.close();
  const batch = Array.from({ length: 50 }, (_, i) => flow(i));
  assert.equal(Buffer.from(await lines.lines(batch)).toString(), expected(batch));
});
