import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import { backoffDelay, retryWithBackoff } from './backoff.ts';
import { watchInformer } from './informers.ts';

const top = () => 0.999999; // jitter at its largest: the nominal delay
const bottom = () => 0; // jitter at its smallest: half of it

test('the delay doubles from the initial one up to the cap', () => {
  const schedule = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, { initialMs: 500, maxMs: 30_000, random: top }));
  assert.deepEqual(schedule, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
});

test('jitter keeps each delay between half and all of its nominal value', () => {
  assert.equal(backoffDelay(3, { initialMs: 500, random: bottom }), 2000);
  for (let i = 0; i < 1000; i++) {
    const delay = backoffDelay(4, { initialMs: 500 });
    assert.ok(delay >= 4000 && delay <= 8000, `delay ${delay}`);
  }
});

test('a very late attempt stays at the cap (no overflow to Infinity or NaN)', () => {
  assert.equal(backoffDelay(10_000, { maxMs: 30_000, random: top }), 30_000);
});

test('retryWithBackoff waits longer after each failure and returns the first success', async () => {
  const slept: number[] = [];
  const errors: number[] = [];
  let calls = 0;
  const value = await retryWithBackoff(
    async () => {
      if (++calls < 5) throw new Error(`down ${calls}`);
      return 'node';
    },
    { backoff: { initialMs: 100, maxMs: 500, random: top }, sleep: async (ms) => void slept.push(ms), onError: (_e, attempt) => errors.push(attempt) },
  );
  assert.equal(value, 'node');
  assert.deepEqual(slept, [100, 200, 400, 500]);
  assert.deepEqual(errors, [0, 1, 2, 3], 'each failure is reported once');
});

/** An informer whose start() fails (reports 'error') while `down` is true. */
function fakeInformer() {
  const handlers = new Map<string, Array<(arg?: unknown) => void>>();
  const fake = {
    down: false,
    starts: 0,
    on(verb: string, fn: (arg?: unknown) => void) {
      handlers.set(verb, [...(handlers.get(verb) ?? []), fn]);
    },
    emit(verb: string, arg?: unknown) {
      for (const fn of handlers.get(verb) ?? []) fn(arg);
    },
    async start() {
      fake.starts++;
      if (fake.down) fake.emit('error', new Error('connection refused'));
    },
    async stop() {},
  };
  return fake;
}

test('watch restarts back off while the API server is down and start over after a clean restart', async () => {
  const fake = fakeInformer();
  const timers: Array<{ run: () => void; ms: number }> = [];
  const watch = watchInformer(fake as unknown as Informer<KubernetesObject>, () => undefined, () => undefined, {
    backoff: { initialMs: 1000, maxMs: 8000, random: top },
    setTimer: (run, ms) => void timers.push({ run, ms }),
  });
  await watch.start();
  const fire = async () => {
    const timer = timers.shift();
    assert.ok(timer, 'a restart is scheduled');
    timer.run();
    await new Promise((resolve) => setImmediate(resolve));
    return timer.ms;
  };

  fake.down = true;
  fake.emit('error', new Error('watch dropped'));
  const delays = [];
  for (let i = 0; i < 5; i++) delays.push(await fire());
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000]);

  fake.down = false;
  assert.equal(await fire(), 8000); // this restart lists and watches cleanly
  assert.equal(timers.length, 0, 'nothing more is scheduled after a clean restart');
  fake.emit('error', new Error('watch dropped again'));
  assert.equal(await fire(), 1000, 'the next failure starts from the initial delay');
  await watch.stop();
  fake.emit('error', new Error('aborted by stop'));
  assert.equal(timers.length, 0, 'no restart after stop()');
});
