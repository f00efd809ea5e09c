// Addresses and prefixes: parsing, normalization, containment.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { addressInPrefix, aggregatePrefixes, formatAddress, parseAddress, parseCidr, prefixContains, type Prefix } from './cidr.ts';

// Each row: input, normalized prefix or the error.
const cidrs: [string, string][] = [
  ['10.0.0.0/8', '10.0.0.0/8'],
  // host bits cleared
  ['10.1.2.3/8', '10.0.0.0/8'],
  ['10.1.2.3/32', '10.1.2.3/32'],
  ['0.0.0.0/0', '0.0.0.0/0'],
  ['255.255.255.255/1', '128.0.0.0/1'],
  // leading zeros read as decimal
  ['010.001.0.0/16', '10.1.0.0/16'],
  // IPv6, RFC 5952 text
  ['fd00::/64', 'fd00::/64'],
  ['FD00:0000:0000:0000:0000:0000:0000:0001/128', 'fd00::1/128'],
  ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
  ['2001:db8::1/32', '2001:db8::/32'],
  ['::/0', '::/0'],
  ['::1/128', '::1/128'],
  ['1:0:0:2::/64', '1:0:0:2::/64'],
  ['1::2:3:4:5:6:7/128', '1:0:2:3:4:5:6:7/128'],
  ['::10.1.2.3/128', '::a01:203/128'],
  // errors
  ['10.0.0.0', 'syntax'],
  ['10.0.0/8', 'syntax'],
  ['10.0.0.0/33', 'prefix-length'],
  ['10.0.0.0/-1', 'prefix-length'],
  ['10.0.0.0/', 'prefix-length'],
  ['10.0.0.256/32', 'syntax'],
  ['fd00::/129', 'prefix-length'],
  ['fd00:::/64', 'syntax'],
  ['1:2:3:4:5:6:7:8::/64', 'syntax'],
  ['1:2:3:4:5:6:7/64', 'syntax'],
  ['fe80::1%eth0/64', 'syntax'],
  ['12345::/16', 'syntax'],
  ['::ffff:10.0.0.0/104', 'ipv4-mapped'],
  ['', 'syntax'],
];

for (const [input, want] of cidrs) {
  test(`cidr ${JSON.stringify(input)} -> ${want}`, () => {
    const p = parseCidr(input);
    assert.equal(typeof p === 'string' ? p : p.text, want);
  });
}

const P = (s: string) => parseCidr(s) as Prefix;

test('containment', () => {
  // outer, inner, contained
  for (const [outer, inner, want] of [
    ['10.0.0.0/8', '10.1.0.0/16', true],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.1.0.0/16', '10.0.0.0/8', false],
    ['10.0.0.0/8', '11.0.0.0/16', false],
    ['0.0.0.0/0', '192.168.1.1/32', true],
    ['::/0', '10.0.0.0/8', false],
    ['fd00::/8', 'fd12:3456::/32', true],
    ['fd00::/64', 'fd00:0:0:1::/64', false],
    ['2001:db8::/33', '2001:db8:8000::/33', false],
  ] as const) {
    assert.equal(prefixContains(P(outer), P(inner)), want, `${outer} ⊇ ${inner}`);
  }
  assert.equal(addressInPrefix(P('10.0.0.0/8'), parseAddress('10.255.0.1')!), true);
  assert.equal(addressInPrefix(P('10.0.0.0/8'), parseAddress('fd00::1')!), false);
  assert.equal(addressInPrefix(P('fd00::/16'), parseAddress('fd00:ffff::1')!), true);
});

test('addresses round-trip to their normal text', () => {
  for (const [a, want] of [
    ['10.0.0.1', '10.0.0.1'],
    ['fd00:0::1', 'fd00::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
  ]) {
    assert.equal(formatAddress(parseAddress(a!)!), want);
  }
  assert.equal(parseAddress('10.0.0'), undefined);
  assert.equal(parseAddress('x'), undefined);
});

test('aggregatePrefixes merges buddies and covers exactly the same addresses', () => {
  const agg = (xs: string[]) => aggregatePrefixes(xs.map(P)).map((p) => p.text);
  // Row by row: sorted disjoint prefixes, their aggregate.
  assert.deepEqual(agg(['10.0.0.0/32', '10.0.0.1/32']), ['10.0.0.0/31']);
  assert.deepEqual(agg(['10.0.0.1/32', '10.0.0.2/32']), ['10.0.0.1/32', '10.0.0.2/32']); // not buddies
  assert.deepEqual(agg(['10.0.0.0/32', '10.0.0.1/32', '10.0.0.2/32', '10.0.0.3/32']), ['10.0.0.0/30']);
  assert.deepEqual(agg(['10.0.0.0/32', '10.0.0.1/32', '10.0.0.2/31', '10.0.0.5/32']), ['10.0.0.0/30', '10.0.0.5/32']);
  assert.deepEqual(agg(['0.0.0.0/1', '128.0.0.0/1']), ['0.0.0.0/0']);
  assert.deepEqual(agg(['fd00::/128', 'fd00::1/128']), ['fd00::/127']);
  assert.deepEqual(agg(['10.0.0.1/32', 'fd00::/128']), ['10.0.0.1/32', 'fd00::/128']);
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 256 }), (hosts) => {
      const sorted = [...hosts].sort((a, b) => a - b).map((h) => P(`10.0.0.${h}/32`));
      const out = aggregatePrefixes(sorted);
      for (let h = 0; h < 256; h++) {
        const a = parseAddress(`10.0.0.${h}`)!;
        assert.equal(out.some((p) => addressInPrefix(p, a)), hosts.includes(h));
      }
    }),
  );
});
