// Lease-based leader election (coordination.k8s.io/v1), so that only one
// operator replica allocates identities at a time. The clock and the timer
// are injectable, so the takeover logic is testable without sleeping.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';

export interface LeaseDecision {
  /** Whether we hold (or may take) the lease now. */
  lead: boolean;
  /** The lease to write if we lead: renewed or taken over. */
  next: V1Lease | undefined;
}

/** Pure: may `identity` lead, given the lease as it stands at `now`? */
export function decideLease(current: V1Lease | undefined, identity: string, now: Date, durationSeconds: number, name: string, namespace: string): LeaseDecision {
  const spec = current?.spec;
  const renewed = spec?.renewTime ? new Date(spec.renewTime).getTime() : 0;
  const expired = now.getTime() - renewed > (spec?.leaseDurationSeconds ?? durationSeconds) * 1000;
  const ours = spec?.holderIdentity === identity;
  if (current && !ours && !expired) return { lead: false, next: undefined };
  const transitions = (spec?.leaseTransitions ?? 0) + (ours || !current ? 0 : 1);
  return {
    lead: true,
    next: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace, resourceVersion: current?.metadata?.resourceVersion },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        // MicroTime: the API server wants six fractional digits, which V1MicroTime writes.
        acquireTime: ours && spec?.acquireTime ? new V1MicroTime(spec.acquireTime) : new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: transitions,
      },
    },
  };
}

export interface LeaderOptions {
  name: string;
  namespace: string;
  identity: string;
  durationSeconds?: number;
  renewMs?: number;
  now?: () => Date;
}

/** Resolves once this replica leads; keeps renewing; calls onLost if the lease is lost. */
export async function acquireLeadership(kubeconfig: KubeConfig, options: LeaderOptions, onLost: () => void): Promise<{ stop(): void }> {
  const api = kubeconfig.makeApiClient(CoordinationV1Api);
  const now = options.now ?? (() => new Date());
  const duration = options.durationSeconds ?? 15;
  const renewMs = options.renewMs ?? 2000;
  let leading = false;
  let timer: NodeJS.Timeout | undefined;

  const attempt = async (): Promise<boolean> => {
    const current = await api.readNamespacedLease({ name: options.name, namespace: options.namespace }).catch(() => undefined);
    const decision = decideLease(current, options.identity, now(), duration, options.name, options.namespace);
    if (!decision.lead || !decision.next) return false;
    try {
      if (current) await api.replaceNamespacedLease({ name: options.name, namespace: options.namespace, body: decision.next });
      else await api.createNamespacedLease({ namespace: options.namespace, body: decision.next });
      return true;
    } catch {
      return false; // somebody else wrote first: not leading this round
    }
  };

  await new Promise<void>((resolve) => {
    const loop = async () => {
      const ok = await attempt().catch(() => false);
      if (ok && !leading) {
        leading = true;
        resolve();
      } else if (!ok && leading) {
        leading = false;
        onLost();
      }
      timer = setTimeout(() => void loop(), renewMs);
    };
    void loop();
  });
  return { stop: () => clearTimeout(timer) };
}
