// Turns what a node cannot enforce as written into Kubernetes Warning events
// on the pod concerned (`EndpointFailClosed`: the pod is denied everything),
// where `kubectl get events` and `kubectl describe pod` show them. The node's
// PalisadeNode status carries the same problems.
//
// planEvents() is pure: one event per pod problem, naming the node.
// ProblemEvents posts each distinct event once per agent run.
import type { CoreV1Api } from '@kubernetes/client-node';
import { postWarningEvent } from '../lib/events.ts';
import type { PlanProblem } from './datapath-plan.ts';

export interface ProblemEvent {
  kind: 'Pod';
  namespace: string;
  name: string;
  reason: 'EndpointFailClosed';
  message: string;
}

export function planEvents(problems: readonly PlanProblem[], node: string): ProblemEvent[] {
  return problems.map((p) => {
    const [namespace = '', name = ''] = p.endpoint.split('/');
    return { kind: 'Pod', namespace, name, reason: 'EndpointFailClosed', message: `node ${node}: ${p.message}` };
  });
}

export class ProblemEvents {
  readonly #core: CoreV1Api;
  readonly #node: string;
  readonly #uid: (kind: ProblemEvent['kind'], namespace: string, name: string) => string | undefined;
  readonly #log: (line: string) => void;
  readonly #posted = new Set<string>();

  constructor(o: {
    core: CoreV1Api;
    node: string;
    /** The object's uid, so that the event is tied to this object and not a namesake. */
    uid: (kind: ProblemEvent['kind'], namespace: string, name: string) => string | undefined;
    log: (line: string) => void;
  }) {
    this.#core = o.core;
    this.#node = o.node;
    this.#uid = o.uid;
    this.#log = o.log;
  }

  /** Posts the events of `problems` not posted before; never throws (a failed post is logged and retried next time). */
  async report(problems: readonly PlanProblem[]): Promise<void> {
    for (const event of planEvents(problems, this.#node)) {
      const key = `${event.kind}/${event.namespace}/${event.name}\n${event.message}`;
      if (this.#posted.has(key)) continue;
      this.#posted.add(key);
      try {
        await postWarningEvent(this.#core, {
          involved: {
            apiVersion: 'v1',
            kind: event.kind,
            namespace: event.namespace,
            name: event.name,
            uid: this.#uid(event.kind, event.namespace, event.name),
          },
          reason: event.reason,
          message: event.message,
          component: 'palisade-agent',
          host: this.#node,
        });
      } catch (error) {
        this.#posted.delete(key);
        this.#log(`could not record event for ${event.kind} ${event.namespace}/${event.name}: ${(error as Error).message}`);
      }
    }
  }
}
