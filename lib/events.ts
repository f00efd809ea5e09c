// Posts a Warning Event about one object, the way the API server's own
// components do, so that `kubectl get events` shows it. Shared by the
// operator (invalid policies) and the agents (what a node cannot enforce).
import type { CoreV1Api } from '@kubernetes/client-node';

export interface WarningEvent {
  involved: { apiVersion: string; kind: string; namespace: string; name: string; uid?: string; resourceVersion?: string };
  reason: string;
  message: string;
  /** The reporting component, e.g. palisade-agent. */
  component: string;
  /** The reporting node, for components that run per node. */
  host?: string;
}

export async function postWarningEvent(core: CoreV1Api, event: WarningEvent): Promise<void> {
  const now = new Date();
  const { name } = event.involved;
  // Events about cluster-scoped objects (a Node, a PalisadeNode) live in `default`, as the kubelet's do.
  const namespace = event.involved.namespace || 'default';
  await core.createNamespacedEvent({
    namespace,
    body: {
      metadata: { generateName: `${name}.`, namespace },
      involvedObject: event.involved,
      reason: event.reason,
      message: event.message,
      type: 'Warning',
      source: { component: event.component, host: event.host },
      reportingComponent: event.component,
      reportingInstance: event.host ?? event.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
  });
}
