import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowEvent } from './abi.ts';
import { decodeFlowEvent, FlowRecordDecoder, flowFrame } from './flow-records.ts';

const event = (n: number) => ({
  timeNs: 1_764_547_200_123_456_789n + BigInt(n), packets: 2n ** 40n + BigInt(n), bytes: 3n, ifindex: 4 + n, saddr: `10.0.${n}.5`, daddr: '192.168.255.1',
  sport: 40000, dport: 80, srcIdentity: 300, dstIdentity: 2 ** 31 + 5, ruleId: 0xfedcba98, natAddr: '0.0.0.0', natPort: 53,
  protocol: 17, direction: 1, type: 2, reason: 128, tcpFlags: 0x12, flags: 0x0b,
});

test('the hand decoder equals the codec, field by field', () => {
  for (let n = 0; n < 50; n++) {
    const bytes = flowEvent.encode(event(n));
    assert.deepEqual(decodeFlowEvent(Buffer.concat([Buffer.alloc(3), bytes]), 3), flowEvent.decode(bytes));
  }
});

test('records cut anywhere by the pipe are put together; wrong sizes and unknown types are counted and skipped', () => {
  const good = [0, 1, 2].map((n) => flowFrame(flowEvent.encode(event(n))));
  const wrongSize = flowFrame(Buffer.alloc(10));
  const unknownType = flowFrame(flowEvent.encode({ ...event(3), type: 9 }));
  const stream = Buffer.concat([good[0]!, wrongSize, good[1]!, unknownType, good[2]!]);
  const decoder = new FlowRecordDecoder();
  const seen = [];
  for (let at = 0; at < stream.length; at += 7) seen.push(...decoder.push(stream.subarray(at, Math.min(stream.length, at + 7))).events);
  assert.deepEqual(seen.map((e) => e.saddr), ['10.0.0.5', '10.0.1.5', '10.0.2.5']);
  assert.equal(decoder.malformed, 2);
});
