// DNS messages from hostile bytes: fuzzed (nothing ever throws) and case by case.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { parseAnswer, parseQuery, RCODE, refusal, withId } from './dns-message.ts';

const query = (name: string, id = 7) => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });

test('dns: a query gives its question, lowercase without the trailing dot', () => {
  assert.deepEqual(parseQuery(query('API.Example.com.')), { id: 7, name: 'api.example.com', type: 'A' });
});

test('dns: a refusal echoes the question with the rcode, as a response', () => {
  const r = dnsPacket.decode(refusal(query('x.example.org', 99), RCODE.REFUSED)!);
  assert.equal(r.type, 'response');
  assert.equal(r.id, 99);
  assert.equal((r as unknown as { rcode: string }).rcode, 'REFUSED');
  assert.deepEqual(r.questions, [{ name: 'x.example.org', type: 'A', class: 'IN' }]);
});

test('dns: an answer teaches each name its addresses through CNAMEs, with the lowest TTL on the way', () => {
  const answer = dnsPacket.encode({
    type: 'response', id: 3, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name: 'www.example.com' }],
    answers: [
      { type: 'CNAME', name: 'www.example.com', ttl: 300, data: 'edge.cdn.example.net' },
      { type: 'A', name: 'edge.cdn.example.net', ttl: 20, data: '203.0.113.7' },
      { type: 'A', name: 'edge.cdn.example.net', ttl: 60, data: '203.0.113.8' },
    ],
  });
  const facts = parseAnswer(answer)!;
  assert.equal(facts.rcode, 0);
  assert.deepEqual(facts.names.get('www.example.com'), { addresses: ['203.0.113.7', '203.0.113.8'], ttl: 20 });
  assert.deepEqual(facts.names.get('edge.cdn.example.net'), { addresses: ['203.0.113.7', '203.0.113.8'], ttl: 20 });
  assert.deepEqual(facts.addresses, ['203.0.113.7', '203.0.113.8']);
});

test('dns: a CNAME loop teaches nothing and ends', () => {
  const answer = dnsPacket.encode({
    type: 'response', id: 3, questions: [{ type: 'A', name: 'a.example.com' }],
    answers: [
      { type: 'CNAME', name: 'a.example.com', ttl: 30, data: 'b.example.com' },
      { type: 'CNAME', name: 'b.example.com', ttl: 30, data: 'a.example.com' },
    ],
  });
  assert.equal(parseAnswer(answer)!.names.size, 0);
});

test('dns: compression pointers that loop or point forward are refused, quickly', () => {
  const self = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  const forward = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 1, 0x61, 0, 0, 1, 0, 1]);
  for (const b of [self, forward]) {
    assert.equal(parseAnswer(b), undefined);
    assert.equal(parseQuery(b), undefined);
  }
});

test('dns: random bytes, and valid messages with random corruption, never throw', () => {
  const valid = dnsPacket.encode({
    type: 'response', id: 1, questions: [{ type: 'A', name: 'api.example.com' }],
    answers: [{ type: 'CNAME', name: 'api.example.com', ttl: 5, data: 'x.example.net' }, { type: 'A', name: 'x.example.net', ttl: 5, data: '198.51.100.1' }],
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }).map((edits) => {
          const b = Buffer.from(valid);
          for (const [i, v] of edits) b[i] = v;
          return b;
        }),
        fc.nat(valid.length).map((n) => valid.subarray(0, n)),
      ),
      (b) => {
        parseQuery(b);
        parseAnswer(b);
        refusal(b, RCODE.REFUSED);
        if (b.length >= 2) withId(b, 1);
      },
    ),
    { numRuns: 3000 },
  );
});
