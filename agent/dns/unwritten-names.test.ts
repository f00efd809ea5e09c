import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnwrittenNames } from './unwritten-names.ts';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const settled = () => new Promise((r) => setImmediate(r));

test('unwritten names: a name is pending until the sync that writes it resolves', async () => {
  const u = new UnwrittenNames();
  const s = deferred();
  u.writing(['a.example.com', 'b.example.com'], s.promise);
  assert.equal(u.pending('a.example.com'), s.promise);
  assert.equal(u.pending('b.example.com'), s.promise);
  assert.equal(u.pending('c.example.com'), undefined);
  s.resolve();
  await settled();
  assert.equal(u.pending('a.example.com'), undefined);
  assert.equal(u.size, 0);
});

test('unwritten names: a later change of the name is waited for by its own sync; the earlier sync ending does not clear it', async () => {
  const u = new UnwrittenNames();
  const first = deferred();
  const second = deferred();
  u.writing(['a.example.com'], first.promise);
  u.writing(['a.example.com'], second.promise);
  first.resolve();
  await settled();
  assert.equal(u.pending('a.example.com'), second.promise);
  second.resolve();
  await settled();
  assert.equal(u.pending('a.example.com'), undefined);
});

test('unwritten names: a failed sync clears the name too (its waiters get the failure from the promise itself)', async () => {
  const u = new UnwrittenNames();
  const s = deferred();
  u.writing(['a.example.com'], s.promise);
  const waiter = u.pending('a.example.com')!;
  s.reject(new Error('map full'));
  await assert.rejects(waiter, /map full/);
  await settled();
  assert.equal(u.pending('a.example.com'), undefined);
});
