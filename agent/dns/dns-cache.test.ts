import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DnsCache } from './dns-cache.ts';

function cache(inUse: Set<string> = new Set()) {
  const applied: Array<[string, readonly string[]]> = [];
  const c = new DnsCache({ minTtlSeconds: 2, maxTtlSeconds: 3600, apply: (n, a) => applied.push([n, a]), inUse: (a) => inUse.has(a) });
  return { c, applied };
}

test('dns cache: a new address is applied; the same answer again only refreshes its time', () => {
  const { c, applied } = cache();
  assert.equal(c.learn('api.example.com', ['203.0.113.10'], 30, 0), true);
  assert.equal(c.learn('api.example.com', ['203.0.113.10'], 30, 1000), false);
  assert.equal(c.learn('api.example.com', ['203.0.113.11'], 30, 1000), true, 'answers that change add up until the old ones expire');
  assert.deepEqual(applied, [['api.example.com', ['203.0.113.10']], ['api.example.com', ['203.0.113.10', '203.0.113.11']]]);
});

test('dns cache: addresses expire with their TTL, never before the minimum, and not while a connection uses them', () => {
  const inUse = new Set(['203.0.113.11']);
  const { c, applied } = cache(inUse);
  c.learn('a.example.com', ['203.0.113.10'], 0, 0); // TTL 0: the minimum (2 s) applies
  c.learn('b.example.com', ['203.0.113.11'], 1, 0);
  assert.deepEqual(c.expire(1999), []);
  assert.deepEqual(c.expire(2000), ['a.example.com']);
  assert.deepEqual(applied.at(-1), ['a.example.com', []]);
  assert.deepEqual(c.expire(60_000), [], 'b is in use: kept');
  inUse.clear();
  assert.deepEqual(c.expire(60_001), ['b.example.com']);
  assert.equal(c.size, 0);
});

test('dns cache: a huge TTL is capped', () => {
  const { c } = cache();
  c.learn('a.example.com', ['203.0.113.10'], 2 ** 31, 0);
  assert.deepEqual(c.expire(3600 * 1000), ['a.example.com']);
});

test('dns cache: saved and loaded across a restart, expired entries and garbage left out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pal-dns-cache-'));
  try {
    const file = join(dir, 'cache.json');
    const { c } = cache();
    c.learn('a.example.com', ['203.0.113.10'], 10, 0);
    c.learn('b.example.com', ['203.0.113.11'], 100, 0);
    await c.save(file);
    const next = cache();
    assert.equal(await next.c.load(file, 50_000), 1);
    assert.deepEqual([...next.c.entries()], [['b.example.com', ['203.0.113.11']]]);
    assert.deepEqual(next.applied, [['b.example.com', ['203.0.113.11']]]);
    // Expired while no agent ran, but a connection still uses it: kept (and due, so asked again).
    const inUse = cache();
    assert.equal(await inUse.c.load(file, 50_000, (a) => a === '203.0.113.10'), 2);
    assert.deepEqual([...inUse.c.entries()].map(([n]) => n).sort(), ['a.example.com', 'b.example.com']);
    assert.equal(inUse.c.due(50_000), true);
    await writeFile(file, '{"version":1,"names":{"x":[["1.2.3.4","soon"]],"y":7}}');
    assert.equal(await cache().c.load(file, 0), 0);
    await writeFile(file, 'not json');
    assert.equal(await cache().c.load(file, 0), 0);
    assert.equal(await cache().c.load(join(dir, 'absent.json'), 0), 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
