// Wiring shared by every informer in the agent and the operator: any change
// only requests a sync (handlers never do the work themselves), and a failed
// watch is restarted after a pause.
import type { Informer, KubernetesObject } from '@kubernetes/client-node';

export function watchInformer<T extends KubernetesObject>(
  informer: Informer<T>,
  onChange: () => void,
  onError: (error: unknown) => void,
  restartMs = 1000,
): void {
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, () => onChange());
  informer.on('error', (error) => {
    onError(error);
    setTimeout(() => void informer.start().catch(onError), restartMs);
  });
}
