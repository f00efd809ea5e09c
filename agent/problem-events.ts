// Turns what a node cannot enforce as written into Kubernetes Warning events
// on the policy at fault (or the pod), where `kubectl get events` and
// `kubectl describe pod` show them. The node's PalisadeNode status carries
// the same problems.
//
// planEvents() is pure: one event per (policy, message) naming the node and
// the pods concerned, or per pod when no policy is at fault (its entries do
// not fit, the pod is not known yet). ProblemEvents posts each distinct
// event once per agent run.
import type { CoreV1Api } from '@kubernetes/client-node';
import { postWarningEvent } from '../lib/events.ts';
import type { PlanProblem } from './datapath-plan.ts';

export interface ProblemEvent {
  kind: 'NetworkPolicy' | 'Pod';
  namespace: string;
  name: string;
  reason: 'PolicyNotEnforced' | 'EndpointFailClosed';
  message: string;
}

/** Pods named in an event's message, at most; the rest are counted. */
const LISTED_PODS = 10;

export function planEvents(problems: readonly PlanProblem[], node: string): ProblemEvent[] {
  const byPolicy = new Map<string, { policy: string; message: string; endpoints: string[] }>();
  const events: ProblemEvent[] = [];
  for (const p of problems) {
    if (p.policy === undefined) {
      const [namespace = '', name = ''] = p.endpoint.split('/');
      events.push({ kind: 'Pod', namespace, name, reason: 'EndpointFailClosed', message: `node ${node}: ${p.message}` });
      continue;
    }
    const key = `${p.policy}\n${p.message}`;
    const group = byPolicy.get(key) ?? { policy: p.policy, message: p.message, endpoints: [] };
    group.endpoints.push(p.endpoint);
    byPolicy.set(key, group);
  }
  for (const g of byPolicy.values()) {
    const [namespace = '', name = ''] = g.policy.split('/');
    const pods = [...g.endpoints].sort();
    const listed = pods.slice(0, LISTED_PODS).join(', ') + (pods.length > LISTED_PODS ? ` and ${pods.length - LISTED_PODS} more` : '');
    events.push({
      kind: 'NetworkPolicy',
      namespace,
      name,
      reason: 'PolicyNotEnforced',
      message: `${g.message}, for ${pods.length} pod${pods.length === 1 ? '' : 's'} on node ${node}: ${listed}`,
    });
  }
  return events;
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
            apiVersion: event.kind === 'Pod' ? 'v1' : 'networking.k8s.io/v1',
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
