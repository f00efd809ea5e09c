import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoalescingTask, type Timer } from './coalescing-task.ts';

/** A timer that never fires on its own: the test decides when retries run. */
function manualTimer(): Timer & { fire(): void } {
  let due: Array<() => void> = [];
  return {
    setTimeout(fn: () => void) {
      due.push(fn);
      return undefined;
    },
    fire() {
      const now = due;
      due = [];
      for (const fn of now) fn();
    },
  };
}

test('runSoon resolves once a run that started after the call has succeeded', async () => {
  const seen: number[] = [];
  let state = 0;
  const task = new CoalescingTask(async () => void seen.push(state), { onError: () => undefined, timer: manualTimer() });
  state = 1;
  await task.runSoon();
  assert.deepEqual(seen, [1]);
});

test('runSoon rejects with the error of the run it waited for, where idle() resolves', async () => {
  const timer = manualTimer();
  let fail = true;
  const task = new CoalescingTask(
    async () => {
      if (fail) throw new Error('map write refused');
    },
    { onError: () => undefined, timer },
  );
  await assert.rejects(task.runSoon(), /map write refused/);
  await task.idle(); // idle() does not tell success from failure: that is why runSoon exists
  fail = false;
  const later = task.runSoon();
  await assert.doesNotReject(later);
});

test('a run already in progress when runSoon is called does not count: the follow-up run decides', async () => {
  const timer = manualTimer();
  let release!: () => void;
  let runs = 0;
  let failNext = false;
  const task = new CoalescingTask(
    async () => {
      runs++;
      if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
      if (failNext) throw new Error('second run failed');
    },
    { onError: () => undefined, timer },
  );
  task.request(); // run 1 starts and blocks
  await new Promise((resolve) => setImmediate(resolve));
  failNext = true;
  const waiting = task.runSoon(); // must wait for run 2, which fails
  release();
  await assert.rejects(waiting, /second run failed/);
  assert.equal(runs, 2);
});
