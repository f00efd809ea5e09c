// The prefilter's maps as the agent writes them (agent/prefilter.ts): their
// contents from policies and endpoints, the uplinks, and the two-phase
// writes, checked write by write on random changes: while narrowing, the
// maps never drop a frame the old contents did not drop, and end dropping
// only what both drop; while widening, never one the new contents do not
// drop, and end equal to them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ipv4Key, u32Key } from '../datapath/abi.ts';
import { PREFILTER_FLAG, prefilter4Key, prefilterConfig, prefilterDst, prefilterValue } from '../datapath/prefilter.ts';
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { PalisadePolicyInput } from '../policy/types.ts';
import { ruleId } from './datapath-plan.ts';
import { prefilterContents, prefilterWrites, uplinks, type PrefilterContents } from './prefilter.ts';

function pcnp(name: string, ingressDeny: unknown[], endpointSelector: unknown = {}): PalisadePolicyInput {
  const v = validatePalisadePolicy({ kind: 'PalisadeClusterNetworkPolicy', spec: { endpointSelector, ingressDeny } });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name, spec: v.spec };
}

const decoded = (c: PrefilterContents) => ({
  prefixes: Object.fromEntries([...c.get('pal_prefilter4')!].map(([k, v]) => [prefilter4Key.decode(Buffer.from(k, 'hex')), prefilterValue.decode(Buffer.from(v, 'hex')).ruleId])),
  dst: Object.fromEntries([...c.get('pal_prefilter_dst4')!].map(([k, v]) => [ipv4Key.decode(Buffer.from(k, 'hex')), prefilterDst.decode(Buffer.from(v, 'hex')).ifindex])),
  config: prefilterConfig.decode(Buffer.from(c.get('pal_prefilter_config')!.get(u32Key.encode(0).toString('hex'))!, 'hex')),
});

describe('contents', () => {
  test('prefixes with their rule numbers, endpoints with their veths, ACTIVE and WORLD', () => {
    const s = prefilterContents([pcnp('deny', [{ fromCIDR: ['203.0.113.0/24'] }, { fromEntities: ['world'] }])], [{ ip: '10.244.1.5', ifindex: 7 }, { ip: 'fd00::5', ifindex: 8 }]);
    const rule = (index: number) => ruleId({ kind: 'PalisadeClusterNetworkPolicy', namespace: '', name: 'deny', direction: 'ingress', index, deny: true });
    assert.deepEqual(decoded(s.contents), {
      prefixes: { '203.0.113.0/24': rule(0) },
      dst: { '10.244.1.5': 7 },
      config: { flags: PREFILTER_FLAG.ACTIVE | PREFILTER_FLAG.WORLD, worldRule: rule(1) },
    });
    assert.equal(s.summary, '1 denied prefixes and world from 2 deny rules (pcnp:deny/ingressDeny/0, pcnp:deny/ingressDeny/1)');
    assert.deepEqual(s.problems, []);
  });

  test('nothing qualifies: not ACTIVE', () => {
    const s = prefilterContents([pcnp('narrow', [{ fromCIDR: ['203.0.113.0/24'] }], { matchLabels: { app: 'a' } })], [{ ip: '10.244.1.5', ifindex: 7 }]);
    assert.deepEqual(decoded(s.contents).config, { flags: 0, worldRule: 0 });
    assert.deepEqual(decoded(s.contents).prefixes, {});
  });

  test('beyond the capacity, the shortest prefixes are kept and the rest reported', () => {
    const s = prefilterContents([pcnp('many', [{ fromCIDR: ['10.0.0.1/32', '10.0.0.3/32', '192.168.0.0/16'] }])], [], 2);
    assert.deepEqual(Object.keys(decoded(s.contents).prefixes), ['192.168.0.0/16', '10.0.0.1/32']);
    assert.match(s.problems[0]!, /3 denied prefixes, more than pal_prefilter4 holds \(2\): the 1 longest are left to the tc programs/);
  });
});

test('uplinks: the devices with the node address, never lo; or the named ones', () => {
  const links = [
    { ifindex: 1, ifname: 'lo', addr_info: [{ local: '127.0.0.1' }] },
    { ifindex: 2, ifname: 'eth0', addr_info: [{ local: '172.30.0.11' }] },
    { ifindex: 3, ifname: 'eth1', addr_info: [{ local: '192.168.9.1' }] },
    { ifindex: 9, ifname: 'pal1234', addr_info: [] },
  ];
  assert.deepEqual(uplinks(links, ['172.30.0.11']), [{ ifindex: 2, name: 'eth0' }]);
  assert.deepEqual(uplinks(links, ['10.9.9.9']), []);
  assert.deepEqual(uplinks(links, ['172.30.0.11'], ['eth1', 'eth9']), [{ ifindex: 3, name: 'eth1' }]);
});

// ---- the two phases, write by write ------------------------------------------------

/** Whether maps holding `c` drop a frame from src (world: no ipcache entry) to dst, as pal_prefilter does. */
function drops(c: PrefilterContents, src: number, world: boolean, dst: string): boolean {
  const config = prefilterConfig.decode(Buffer.from(c.get('pal_prefilter_config')?.get(u32Key.encode(0).toString('hex')) ?? '0000000000000000', 'hex'));
  if (!(config.flags & PREFILTER_FLAG.ACTIVE) || !c.get('pal_prefilter_dst4')?.has(ipv4Key.encode(dst).toString('hex'))) return false;
  for (const key of c.get('pal_prefilter4')?.keys() ?? []) {
    const b = Buffer.from(key, 'hex');
    const len = b.readUInt32LE(0);
    const base = b.readUInt32BE(4);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    if (((src & mask) >>> 0) === base) return true;
  }
  return world && (config.flags & PREFILTER_FLAG.WORLD) !== 0;
}

function apply(c: PrefilterContents, w: ReturnType<typeof prefilterWrites>['narrow'][number]): PrefilterContents {
  const next: PrefilterContents = new Map([...c].map(([m, entries]) => [m, new Map(entries)]));
  const map = next.get(w.map) ?? new Map<string, string>();
  next.set(w.map, map);
  for (const e of w.entries) {
    if (w.op === 'delete') map.delete(e.key);
    else map.set(e.key, e.value);
  }
  return next;
}

test('narrowing never drops more than before, ends within old and new; widening never drops more than the new, ends equal to it', () => {
  const cidrArb = fc.record({ a: fc.constantFrom(10, 192), b: fc.nat({ max: 3 }), len: fc.constantFrom(8, 16, 24, 31, 32) }).map(({ a, b, len }) => `${a}.${b}.0.0/${len}`);
  const ruleArb = fc.oneof(
    fc.record({ fromCIDR: fc.array(cidrArb, { minLength: 1, maxLength: 2 }) }),
    fc.record({ fromCIDRSet: fc.constant([{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }]) }),
    fc.constant({ fromEntities: ['world'] }),
  );
  const policiesArb = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.array(ruleArb, { minLength: 1, maxLength: 2 })), { maxLength: 3 }).map((ps) => {
    const byName = new Map(ps.map(([name, rules]) => [name, pcnp(name, rules)]));
    return [...byName.values()];
  });
  const endpointsArb = fc.uniqueArray(fc.record({ ip: fc.constantFrom('10.244.0.1', '10.244.0.2', '10.244.0.3'), ifindex: fc.constantFrom(5, 6) }), { selector: (e) => e.ip, maxLength: 3 });
  const sources = [0x0a000001, 0x0a010203, 0x0a020000, 0xc0000001, 0xc0030000, 0x0b000000].map((s) => s >>> 0);
  const dsts = ['10.244.0.1', '10.244.0.2', '10.244.0.3'];
  const frames = sources.flatMap((src) => [true, false].flatMap((world) => dsts.map((dst) => ({ src, world, dst }))));
  fc.assert(
    fc.property(policiesArb, endpointsArb, policiesArb, endpointsArb, (pa, ea, pb, eb) => {
      const before = prefilterContents(pa, ea).contents;
      const after = prefilterContents(pb, eb).contents;
      const { narrow, widen } = prefilterWrites(before, after);
      let state = before;
      for (const w of narrow) {
        const next = apply(state, w);
        for (const f of frames) if (drops(next, f.src, f.world, f.dst)) assert.ok(drops(state, f.src, f.world, f.dst), `narrowing ${w.map} ${w.op} drops more`);
        state = next;
      }
      for (const f of frames) {
        if (drops(state, f.src, f.world, f.dst)) assert.ok(drops(before, f.src, f.world, f.dst) && drops(after, f.src, f.world, f.dst), 'after narrowing');
      }
      for (const w of widen) {
        state = apply(state, w);
        for (const f of frames) if (drops(state, f.src, f.world, f.dst)) assert.ok(drops(after, f.src, f.world, f.dst), `widening ${w.map} ${w.op} drops what the new contents do not`);
      }
      for (const map of ['pal_prefilter4', 'pal_prefilter_dst4', 'pal_prefilter_config'] as const) {
        assert.deepEqual([...(state.get(map) ?? [])].sort(), [...after.get(map)!].sort(), map);
      }
      // Nothing left to write.
      assert.deepEqual(prefilterWrites(state, after), { narrow: [], widen: [] });
    }),
    { numRuns: 300 },
  );
});
