// Wiring shared by every informer in the agent and the operator: any change
// only requests a sync (handlers never do the work themselves), and a failed
// watch is restarted after a pause that grows with each failure in a row
// (capped, jittered; see backoff.ts) and starts over once a restart has
// listed and watched without error, until stop() is called.
import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import { backoffDelay, type BackoffOptions } from './backoff.ts';

export interface WatchedInformer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface RestartOptions {
  /** Default: 1 s doubling to 30 s. */
  backoff?: BackoffOptions;
  /** Schedules a restart; default setTimeout (tests pass their own clock). */
  setTimer?: (run: () => void, ms: number) => void;
}

export function watchInformer<T extends KubernetesObject>(
  informer: Informer<T>,
  onChange: () => void,
  onError: (error: unknown) => void,
  options: RestartOptions = {},
): WatchedInformer {
  const backoff = { initialMs: 1000, maxMs: 30_000, ...options.backoff };
  const setTimer = options.setTimer ?? ((run: () => void, ms: number) => void setTimeout(run, ms));
  let stopped = false;
  /** Failed restarts in a row: the next delay grows with it. */
  let attempt = 0;
  let pending = false;
  /** Set by every error, so a restart can tell whether it went through clean. */
  let failedSince = false;

  const restart = async () => {
    failedSince = false;
    try {
      await informer.start(); // lists, then opens the watch; an error on the way is reported as 'error'
    } catch (error) {
      failed(error);
      return;
    }
    if (!failedSince) attempt = 0;
  };
  const failed = (error: unknown) => {
    if (stopped) return; // stop() aborts the watch, which reports as an error
    failedSince = true;
    onError(error);
    if (pending) return; // one restart at a time
    pending = true;
    setTimer(() => {
      pending = false;
      if (!stopped) void restart();
    }, backoffDelay(attempt++, backoff));
  };

  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, () => onChange());
  informer.on('error', failed);
  return {
    start: () => informer.start(),
    async stop() {
      stopped = true;
      await informer.stop();
    },
  };
}
