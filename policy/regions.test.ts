// CIDR regions: the exactness argument of regions.ts, checked exhaustively on
// a small address space, plus collisions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { addressInPrefix, makePrefix, parseAddress, parseCidr, type Prefix } from './cidr.ts';
import { computeRegions, type CidrItem } from './regions.ts';
import type { RuleRef } from './types.ts';

const rule = (index: number): RuleRef => ({ namespace: 'x', name: 'p', direction: 'ingress', index });

test('regions: for every address, the entries of its most specific region are exactly the items that contain it and do not except it', () => {
  // Prefixes of 10.0.0.0/24 only, so every one of its 256 addresses can be checked.
  const prefixArb = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 24, max: 32 })).map(([host, len]) => makePrefix(parseAddress(`10.0.0.${host}`)!, len));
  const itemArb = fc.tuple(prefixArb, fc.array(prefixArb, { maxLength: 3 }), fc.integer({ min: 0, max: 5 })).map(([prefix, excepts, i]) => ({
    prefix,
    except: excepts.filter((e) => e.len > prefix.len && e.words[0]! >>> (32 - prefix.len) === prefix.words[0]! >>> (32 - prefix.len)),
    index: i,
  }));
  fc.assert(
    fc.property(fc.array(itemArb, { maxLength: 6 }), (raw) => {
      const items: CidrItem[] = raw.map((r) => ({ prefix: r.prefix, except: r.except, protocol: 'TCP', port: { from: r.index, to: r.index }, rule: rule(r.index) }));
      const res = computeRegions(items);
      assert.ok(res.ok);
      if (!res.ok) return;
      const parsed = res.regions.map((r) => parseCidr(r.prefix) as Prefix);
      for (let host = 0; host < 256; host++) {
        const a = parseAddress(`10.0.0.${host}`)!;
        let best = -1;
        parsed.forEach((p, i) => {
          if (addressInPrefix(p, a) && (best < 0 || p.len > parsed[best]!.len)) best = i;
        });
        const got: number[] = best < 0 ? [] : res.regions[best]!.entries.map((e) => e.rule.index);
        const want = [...new Set(items.filter((it) => addressInPrefix(it.prefix, a) && !it.except.some((e) => addressInPrefix(e, a))).map((it) => it.rule.index))].sort((x, y) => x - y);
        assert.deepEqual(got, want, `10.0.0.${host}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('regions: no items, no regions; an except with no item of its own is an empty region', () => {
  assert.deepEqual(computeRegions([]), { ok: true, regions: [] });
  const res = computeRegions([{ prefix: parseCidr('10.0.0.0/8') as Prefix, except: [parseCidr('10.1.0.0/16') as Prefix], protocol: 'ANY', port: 'any', rule: rule(0) }]);
  assert.ok(res.ok);
  if (res.ok) assert.deepEqual(res.regions.map((r) => [r.prefix, r.entries.length]), [['10.0.0.0/8', 1], ['10.1.0.0/16', 0]]);
});

test('regions: a region id collision between two prefixes is reported', () => {
  const item = (cidr: string): CidrItem => ({ prefix: parseCidr(cidr) as Prefix, except: [], protocol: 'ANY', port: 'any', rule: rule(0) });
  const res = computeRegions([item('10.0.107.237/32'), item('10.2.219.40/32')]);
  assert.deepEqual(res, { ok: false, collision: ['10.0.107.237/32', '10.2.219.40/32'], regionId: 2764744744 });
});
