// Wiring shared by every informer in the agent and the operator: any change
// only requests a sync (handlers never do the work themselves), and a failed
// watch is restarted after a pause, until stop() is called.
import type { Informer, KubernetesObject } from '@kubernetes/client-node';

export interface WatchedInformer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function watchInformer<T extends KubernetesObject>(
  informer: Informer<T>,
  onChange: () => void,
  onError: (error: unknown) => void,
  restartMs = 1000,
): WatchedInformer {
  let stopped = false;
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, () => onChange());
  informer.on('error', (error) => {
    if (stopped) return; // stop() aborts the watch, which reports as an error
    onError(error);
    setTimeout(() => {
      if (!stopped) void informer.start().catch(onError);
    }, restartMs);
  });
  return {
    start: () => informer.start(),
    async stop() {
      stopped = true;
      await informer.stop();
    },
  };
}
