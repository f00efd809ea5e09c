// Lease-based leader election (coordination.k8s.io/v1), so that at most one
// operator replica allocates and collects identities at a time. It follows
// client-go's leaderelection package:
//
// - A follower never compares the holder's renewTime with its own wall clock
//   (clocks of two machines disagree). It remembers when it last saw the lease
//   record change, on its own monotonic clock, and takes over only after a
//   whole lease duration without a change.
// - The leader renews every retry period (a quarter of it after a failure) and steps down once the renew
//   deadline (shorter than the lease) has passed since the start of its last
//   successful renewal: it has then stopped writing before any follower can
//   judge the lease expired, whatever happened to its calls or its process.
//   Outages shorter than the renew deadline are ridden out.
// - Every API call is bounded (an AbortSignal), so a hung call cannot hold up
//   the decision to step down.
// - On a clean exit the leader releases the lease (empty holder), so a
//   follower takes over at its next retry instead of waiting out the lease.
//
// The decisions are pure (observeLease, decideLease); LeaderElector does the
// I/O through an injected LeaseClient and Clock, so tests need no API server
// and no sleeping.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { callOptions, isHttpStatus } from './kube.ts';

export interface LeaseTimings {
  /** How long followers wait without seeing the record change before taking over. */
  leaseDurationMs: number;
  /** The leader steps down when this long has passed since its last successful renewal; < leaseDurationMs. */
  renewDeadlineMs: number;
  /** Pause between attempts to acquire or renew. */
  retryPeriodMs: number;
  /** Bound on one attempt (its read and its write); < renewDeadlineMs. */
  callTimeoutMs: number;
}

export const DEFAULT_TIMINGS: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, callTimeoutMs: 4_000 };

/** What a replica last saw of the lease record, and when (its monotonic clock, ms). */
export interface Observation {
  record: string;
  at: number;
}

/** The fields whose change proves the holder (or somebody) is alive and writing. */
const recordOf = (lease: V1Lease): string =>
  JSON.stringify([
    lease.spec?.holderIdentity ?? '',
    String(lease.spec?.renewTime ?? ''),
    lease.spec?.leaseDurationSeconds ?? 0,
    lease.spec?.leaseTransitions ?? 0,
    lease.metadata?.resourceVersion ?? '',
  ]);

/** Pure: the observation after reading `lease` at `now`; unchanged if the record is the same. */
export function observeLease(previous: Observation | undefined, lease: V1Lease | undefined, now: number): Observation | undefined {
  if (!lease) return undefined;
  const record = recordOf(lease);
  return previous?.record === record ? previous : { record, at: now };
}

export interface Candidate {
  identity: string;
  name: string;
  namespace: string;
  leaseDurationMs: number;
}

export type LeaseDecision =
  /** Somebody else holds a lease we must not judge expired yet. */
  | { kind: 'wait'; holder: string; expiresInMs: number }
  /** Write `lease` (create it if `create`); `acquired` if that takes it over from nobody or somebody else. */
  | { kind: 'write'; lease: V1Lease; create: boolean; acquired: boolean };

/**
 * Pure: what `me` does about the lease as read, given when the record was last
 * seen to change. `wall` only fills the times written for humans and for other
 * tools; no decision depends on it.
 */
export function decideLease(current: V1Lease | undefined, observed: Observation | undefined, me: Candidate, now: number, wall: Date): LeaseDecision {
  const spec = current?.spec;
  const holder = spec?.holderIdentity ?? '';
  const ours = current !== undefined && holder === me.identity;
  if (current && holder !== '' && !ours) {
    const durationMs = (spec?.leaseDurationSeconds ?? Math.ceil(me.leaseDurationMs / 1000)) * 1000;
    // Never seen before: it counts as just changed, so we wait a whole lease.
    const seenAt = observed?.at ?? now;
    const expiresInMs = seenAt + durationMs - now;
    if (expiresInMs > 0) return { kind: 'wait', holder, expiresInMs };
  }
  const micro = new V1MicroTime(wall); // MicroTime: the API server wants six fractional digits
  return {
    kind: 'write',
    create: current === undefined,
    acquired: !ours,
    lease: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      // The resourceVersion makes the write conditional: if anyone wrote since our read, it fails (409).
      metadata: { name: me.name, namespace: me.namespace, resourceVersion: current?.metadata?.resourceVersion },
      spec: {
        holderIdentity: me.identity,
        leaseDurationSeconds: Math.ceil(me.leaseDurationMs / 1000),
        acquireTime: ours && spec?.acquireTime ? new V1MicroTime(spec.acquireTime) : micro,
        renewTime: micro,
        leaseTransitions: (spec?.leaseTransitions ?? 0) + (current && !ours && holder !== '' ? 1 : 0),
      },
    },
  };
}

/** Pure: the record a leader writes on a clean exit (as client-go's ReleaseOnCancel): nobody holds it. */
export function releasedLease(held: V1Lease, wall: Date): V1Lease {
  const micro = new V1MicroTime(wall);
  return {
    ...held,
    metadata: { ...held.metadata, resourceVersion: held.metadata?.resourceVersion },
    spec: { ...held.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: micro, renewTime: micro },
  };
}

export interface LeaseClient {
  /** The lease, or undefined if it does not exist. */
  get(signal: AbortSignal): Promise<V1Lease | undefined>;
  create(lease: V1Lease, signal: AbortSignal): Promise<V1Lease>;
  replace(lease: V1Lease, signal: AbortSignal): Promise<V1Lease>;
}

export interface Clock {
  /** Monotonic milliseconds (performance.now()); keeps counting while the process is stopped. */
  now(): number;
  wall(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => new Date(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface LeaderCallbacks {
  /** We lead: start allocating. */
  onStartedLeading(): void;
  /** We no longer lead (deadline passed, lease taken, release): stop writing now. */
  onStoppedLeading(reason: string): void;
}

export class LeaderElector {
  readonly #client: LeaseClient;
  readonly #me: Candidate;
  readonly #timings: LeaseTimings;
  readonly #callbacks: LeaderCallbacks;
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  #leading = false;
  /** Monotonic time at which our last successful renewal was sent. */
  #renewedAt = -Infinity;
  #observed: Observation | undefined;
  /** The lease as we last wrote it (for release). */
  #held: V1Lease | undefined;
  /** Monotonic time at which that write was sent. */
  #heldAt = -Infinity;
  #stopped = false;
  #tickTimer: unknown;
  #deadlineTimer: unknown;
  #tick: Promise<void> | undefined;
  #lastReport = '';

  constructor(client: LeaseClient, me: Omit<Candidate, 'leaseDurationMs'>, options: { timings?: Partial<LeaseTimings>; callbacks: LeaderCallbacks; clock?: Clock; log?: (line: string) => void }) {
    this.#timings = { ...DEFAULT_TIMINGS, ...options.timings };
    const t = this.#timings;
    if (!(t.callTimeoutMs < t.renewDeadlineMs && t.renewDeadlineMs < t.leaseDurationMs)) {
      throw new Error(`leader election needs callTimeout < renewDeadline < leaseDuration, got ${t.callTimeoutMs}, ${t.renewDeadlineMs}, ${t.leaseDurationMs} ms`);
    }
    this.#client = client;
    this.#me = { ...me, leaseDurationMs: t.leaseDurationMs };
    this.#callbacks = options.callbacks;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? (() => undefined);
  }

  /** Starts competing for the lease; the callbacks report the outcome. */
  start(): void {
    this.#schedule(0);
  }

  /**
   * Whether writes may go out now. Evaluated against the clock, not a flag a
   * timer clears, so a process resumed after a stop is fenced at once, before
   * any of its timers run.
   */
  isLeading(): boolean {
    return this.#leading && this.#clock.now() - this.#renewedAt < this.#timings.renewDeadlineMs;
  }

  /** Stops competing; if we lead, steps down and releases the lease so a follower takes over at once. */
  async release(): Promise<void> {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#tickTimer);
    if (this.#leading) this.#stepDown('releasing the lease');
    // An attempt in flight may still write the lease (even acquire it): release after it.
    await this.#tick?.catch(() => undefined);
    const held = this.#held;
    // Followers may still count on a record we wrote within the last lease duration. If anyone
    // wrote since, the resourceVersion makes this fail (409) and changes nothing.
    if (!held || this.#clock.now() - this.#heldAt >= this.#timings.leaseDurationMs) return;
    await this.#bounded((signal) => this.#client.replace(releasedLease(held, this.#clock.wall()), signal));
    this.#log(`leader: released lease ${this.#me.namespace}/${this.#me.name}`);
  }

  /** Stops competing without writing anything (tests). */
  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#tickTimer);
    this.#clock.clearTimeout(this.#deadlineTimer);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#tickTimer = this.#clock.setTimeout(() => {
      this.#tick = this.#attempt();
    }, ms);
  }

  async #bounded<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    const timer = this.#clock.setTimeout(() => abort.abort(new Error(`no answer within ${this.#timings.callTimeoutMs} ms`)), this.#timings.callTimeoutMs);
    try {
      // Also rejects if the client ignores the signal.
      return await Promise.race([
        call(abort.signal),
        new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true })),
      ]);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  async #attempt(): Promise<void> {
    this.#checkDeadline();
    const started = this.#clock.now();
    let outcome: 'renewed' | 'waiting' | 'failed';
    try {
      outcome = await this.#bounded(async (signal) => {
        const current = await this.#client.get(signal);
        this.#observed = observeLease(this.#observed, current, this.#clock.now());
        const decision = decideLease(current, this.#observed, this.#me, this.#clock.now(), this.#clock.wall());
        if (decision.kind === 'wait') {
          this.#report(`leader: candidate; lease held by ${decision.holder}, expires in ${Math.ceil(decision.expiresInMs)} ms unless renewed`);
          return 'waiting';
        }
        signal.throwIfAborted(); // the read answered too late: do not write on its basis
        const written = decision.create ? await this.#client.create(decision.lease, signal) : await this.#client.replace(decision.lease, signal);
        this.#held = written;
        this.#heldAt = started;
        this.#observed = observeLease(this.#observed, written, this.#clock.now());
        return 'renewed';
      });
    } catch (error) {
      outcome = 'failed';
      this.#report(`leader: ${this.#leading ? 'renewal' : 'acquisition'} failed: ${(error as Error).message}`);
    }
    if (this.#stopped) return;
    this.#checkDeadline();
    if (outcome === 'renewed' && this.#clock.now() - started < this.#timings.renewDeadlineMs) {
      if (this.#leading && this.#lastReport.startsWith('leader: renewal failed')) {
        this.#log(`leader: renewed again, ${Math.round(this.#clock.now() - this.#renewedAt)} ms after the last successful renewal`);
      }
      this.#lastReport = '';
      this.#renewedAt = started;
      this.#armDeadline();
      if (!this.#leading) {
        this.#leading = true;
        this.#callbacks.onStartedLeading();
      }
    } else if (outcome === 'waiting' && this.#leading) {
      this.#stepDown('another replica holds the lease');
    }
    // A leader whose renewal failed tries again sooner, so that an outage
    // ending just before the deadline does not cost it the lease.
    const retryMs = this.#leading && outcome === 'failed' ? this.#timings.retryPeriodMs / 4 : this.#timings.retryPeriodMs;
    this.#schedule(retryMs);
  }

  #checkDeadline(): void {
    if (this.#leading && this.#clock.now() - this.#renewedAt >= this.#timings.renewDeadlineMs) {
      this.#stepDown(`renew deadline of ${this.#timings.renewDeadlineMs} ms passed without a successful renewal`);
    }
  }

  #armDeadline(): void {
    this.#clock.clearTimeout(this.#deadlineTimer);
    const left = this.#renewedAt + this.#timings.renewDeadlineMs - this.#clock.now();
    this.#deadlineTimer = this.#clock.setTimeout(() => this.#checkDeadline(), Math.max(0, left));
  }

  #stepDown(reason: string): void {
    this.#leading = false;
    this.#clock.clearTimeout(this.#deadlineTimer);
    this.#callbacks.onStoppedLeading(reason);
  }

  /** Logs a state line once, not at every retry. */
  #report(line: string): void {
    const shape = line.replace(/\d+ ms/g, '');
    if (shape === this.#lastReport) return;
    this.#lastReport = shape;
    this.#log(line);
  }
}

/** The LeaseClient of a real API server. */
export function kubeLeaseClient(kubeconfig: KubeConfig, name: string, namespace: string): LeaseClient {
  const api = kubeconfig.makeApiClient(CoordinationV1Api);
  return {
    get: (signal) =>
      api.readNamespacedLease({ name, namespace }, callOptions(signal)).catch((error: unknown) => {
        if (isHttpStatus(error, 404)) return undefined;
        throw error;
      }),
    create: (lease, signal) => api.createNamespacedLease({ namespace, body: lease }, callOptions(signal)),
    replace: (lease, signal) => api.replaceNamespacedLease({ name, namespace, body: lease }, callOptions(signal)),
  };
}
