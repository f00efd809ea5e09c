// Leader election decisions, with an injected monotonic clock and an
// in-memory lease "API server" whose calls can fail or hang: no sleeping, and
// no wall clock involved in any decision.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Lease } from '@kubernetes/client-node';
import { decideLease, LeaderElector, observeLease, type Candidate, type Clock, type LeaseClient } from './leader.ts';

const me: Candidate = { identity: 'b', name: 'palisade-operator', namespace: 'kube-system', leaseDurationMs: 15_000 };
const WALL = new Date('2026-11-30T12:00:00Z');

function leaseHeldBy(holder: string, renewTime: Date, resourceVersion: string): V1Lease {
  return {
    metadata: { name: me.name, namespace: me.namespace, resourceVersion },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: renewTime as never, leaseTransitions: 0 },
  };
}

test('a follower judges expiry by when it saw the record change, not by the holder renewTime (clock skew)', () => {
  // Each row: the holder's renewTime as written (its wall clock may be far off ours),
  // and the expected decision of the follower `b` at its monotonic time `at`.
  const rows: Array<{ what: string; renewTime: Date; at: number; kind: 'wait' | 'write' }> = [
    // Holder's clock an hour behind ours, but it just renewed: not expired.
    { what: 'renewTime an hour in the past, just changed', renewTime: new Date(WALL.getTime() - 3_600_000), at: 0, kind: 'wait' },
    // Holder's clock an hour ahead, record unchanged for a whole lease: expired.
    { what: 'renewTime an hour in the future, unchanged for 15 s', renewTime: new Date(WALL.getTime() + 3_600_000), at: 15_000, kind: 'write' },
    // Unchanged, but not yet for a whole lease.
    { what: 'renewTime an hour in the future, unchanged for 14.999 s', renewTime: new Date(WALL.getTime() + 3_600_000), at: 14_999, kind: 'wait' },
  ];
  for (const row of rows) {
    const lease = leaseHeldBy('a', row.renewTime, '7');
    const observed = observeLease(undefined, lease, 0);
    const decision = decideLease(lease, observeLease(observed, lease, row.at), me, row.at, WALL);
    assert.equal(decision.kind, row.kind, row.what);
  }
});

test('a record seen for the first time counts as just changed, and every change restarts the wait', () => {
  const first = leaseHeldBy('a', WALL, '1');
  const seen = observeLease(undefined, first, 100_000);
  assert.equal(decideLease(first, seen, me, 100_000, WALL).kind, 'wait');
  const renewed = leaseHeldBy('a', WALL, '2'); // same renewTime text, new resourceVersion: still a change
  const seenAgain = observeLease(seen, renewed, 110_000);
  assert.equal(seenAgain?.at, 110_000);
  assert.equal(decideLease(renewed, seenAgain, me, 124_999, WALL).kind, 'wait');
  const taken = decideLease(renewed, seenAgain, me, 125_000, WALL);
  assert.equal(taken.kind, 'write');
  assert.ok(taken.kind === 'write' && taken.acquired && taken.lease.spec?.leaseTransitions === 1);
});

test('a released lease (no holder) is taken at once; our own lease is renewed', () => {
  const released = leaseHeldBy('', WALL, '3');
  assert.equal(decideLease(released, observeLease(undefined, released, 0), me, 0, WALL).kind, 'write');
  const ours = leaseHeldBy('b', WALL, '4');
  const renew = decideLease(ours, observeLease(undefined, ours, 0), me, 0, WALL);
  assert.ok(renew.kind === 'write' && !renew.acquired && !renew.create);
});

/** Timers on a fake monotonic clock; advance() runs them in order, letting promises settle between. */
class FakeClock implements Clock {
  t = 0;
  wallOffsetMs = 0;
  #timers: Array<{ id: number; at: number; fn: () => void }> = [];
  #ids = 0;
  now = () => this.t;
  wall = () => new Date(WALL.getTime() + this.t + this.wallOffsetMs);
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.#ids;
    this.#timers.push({ id, at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  };
  /** Runs due timers up to now + ms; `check` runs after each one. */
  async advance(ms: number, check: () => void = () => undefined): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      check();
      const next = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await settle();
    check();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One Lease with optimistic concurrency, as the API server keeps it; per-caller outages. */
class FakeLeaseServer {
  lease: V1Lease | undefined;
  #version = 0;
  /** Callers whose calls hang until their signal aborts. */
  hung = new Set<string>();
  /** Callers whose calls fail at once (connection refused). */
  refused = new Set<string>();
  writes: string[] = [];
  /** Calls answer after this long on `clock` (0: at once). */
  latencyMs = 0;
  clock: FakeClock | undefined;

  client(who: string): LeaseClient {
    const call = <T>(signal: AbortSignal, fn: () => T): Promise<T> => {
      if (this.hung.has(who)) {
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
      }
      if (this.refused.has(who)) return Promise.reject(new Error('connect ECONNREFUSED'));
      if (this.latencyMs > 0 && this.clock) {
        return new Promise((resolve, reject) =>
          this.clock!.setTimeout(() => {
            try {
              resolve(fn());
            } catch (error) {
              reject(error as Error);
            }
          }, this.latencyMs),
        );
      }
      return Promise.resolve().then(fn);
    };
    return {
      get: (signal) => call(signal, () => structuredClone(this.lease)),
      create: (lease, signal) => call(signal, () => this.#write(who, lease, true)),
      replace: (lease, signal) => call(signal, () => this.#write(who, lease, false)),
    };
  }

  #write(who: string, lease: V1Lease, create: boolean): V1Lease {
    if (create ? this.lease !== undefined : lease.metadata?.resourceVersion !== String(this.#version)) {
      throw new Error(`HTTP 409 from ${who}`);
    }
    this.#version++;
    this.lease = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(this.#version) } };
    this.writes.push(who);
    return structuredClone(this.lease);
  }
}

interface Replica {
  elector: LeaderElector;
  events: Array<[number, string]>;
}

function replica(server: FakeLeaseServer, clock: FakeClock, identity: string): Replica {
  const events: Array<[number, string]> = [];
  const elector = new LeaderElector(server.client(identity), { identity, name: me.name, namespace: me.namespace }, {
    clock,
    callbacks: {
      onStartedLeading: () => events.push([clock.now(), 'started']),
      onStoppedLeading: (reason) => events.push([clock.now(), `stopped: ${reason}`]),
    },
  });
  return { elector, events };
}

/** Fails if both replicas may write at the same instant. */
const neverTwoLeaders = (...replicas: Replica[]) => () =>
  assert.ok(replicas.filter((r) => r.elector.isLeading()).length <= 1, 'two replicas lead at once');

test('a stalled leader steps down at its renew deadline; the follower takes over only a whole lease after the last change it saw', async () => {
  const server = new FakeLeaseServer();
  const clock = new FakeClock();
  const a = replica(server, clock, 'a');
  a.elector.start();
  await clock.advance(1);
  assert.ok(a.elector.isLeading());
  const b = replica(server, clock, 'b');
  b.elector.start();
  await clock.advance(5_000, neverTwoLeaders(a, b));
  assert.ok(a.elector.isLeading() && !b.elector.isLeading());

  // a's calls hang from now on (a hung API call, or a stopped process).
  const lastRenewal = 4_000; // renewals at 0, 2000, 4000
  assert.equal(server.writes.at(-1), 'a');
  server.hung.add('a');
  await clock.advance(30_000, neverTwoLeaders(a, b));

  const stopped = a.events.find(([, e]) => e.startsWith('stopped'));
  assert.ok(stopped, `a never stepped down: ${JSON.stringify(a.events)}`);
  assert.equal(stopped[0], lastRenewal + 10_000, 'a steps down exactly at its renew deadline');
  assert.match(stopped[1], /renew deadline/);
  const started = b.events.find(([, e]) => e === 'started');
  assert.ok(started, 'b took over');
  // b saw the last change at 4000 (it polls every 2 s, in step with a here).
  assert.ok(started[0] >= lastRenewal + 15_000, `b took over at ${started[0]}, before a whole lease had passed`);
  assert.ok(started[0] <= lastRenewal + 15_000 + 2_000, `b took over at ${started[0]}, a retry period late`);
  a.elector.stop();
  b.elector.stop();
});

test('a leader rides out an API outage shorter than its renew deadline, and steps down after a longer one', async () => {
  const server = new FakeLeaseServer();
  const clock = new FakeClock();
  const a = replica(server, clock, 'a');
  a.elector.start();
  await clock.advance(1);
  server.refused.add('a');
  await clock.advance(8_000);
  assert.ok(a.elector.isLeading(), 'an 8 s outage made the leader step down');
  server.refused.delete('a');
  await clock.advance(2_000);
  assert.deepEqual(a.events.map(([, e]) => e), ['started']);
  server.refused.add('a');
  await clock.advance(12_000);
  assert.ok(!a.elector.isLeading());
  assert.match(a.events.at(-1)![1], /stopped: renew deadline/);
  // Back as a candidate: the lease still names it and nobody took it, so it leads again.
  server.refused.delete('a');
  await clock.advance(2_000);
  assert.equal(a.events.at(-1)![1], 'started');
  a.elector.stop();
});

test('a leader whose wall clock is an hour behind keeps the lease: followers do not judge by renewTime', async () => {
  const server = new FakeLeaseServer();
  const clock = new FakeClock();
  clock.wallOffsetMs = -3_600_000;
  const a = replica(server, clock, 'a');
  a.elector.start();
  await clock.advance(1);
  const b = replica(server, clock, 'b');
  b.elector.start();
  await clock.advance(60_000, neverTwoLeaders(a, b));
  assert.deepEqual(b.events, []);
  assert.deepEqual(a.events.map(([, e]) => e), ['started']);
  a.elector.stop();
  b.elector.stop();
});

test('a leader that releases the lease is replaced at the follower next retry, not after the lease', async () => {
  const server = new FakeLeaseServer();
  const clock = new FakeClock();
  const a = replica(server, clock, 'a');
  a.elector.start();
  await clock.advance(1);
  const b = replica(server, clock, 'b');
  b.elector.start();
  await clock.advance(3_000);
  const released = a.elector.release();
  await clock.advance(1);
  await released;
  assert.equal(server.lease?.spec?.holderIdentity, '');
  assert.ok(!a.elector.isLeading());
  const at = clock.now();
  await clock.advance(3_000, neverTwoLeaders(a, b));
  const started = b.events.find(([, e]) => e === 'started');
  assert.ok(started && started[0] - at <= 2_000, `b took over ${started ? started[0] - at : 'never'} ms after the release`);
  b.elector.stop();
});

test('SIGTERM during an acquisition in flight: the lease that attempt writes is released too', async () => {
  const server = new FakeLeaseServer();
  const clock = new FakeClock();
  server.clock = clock;
  server.latencyMs = 300; // the read answers at 300, the create at 600
  const a = replica(server, clock, 'a');
  a.elector.start();
  await clock.advance(400); // the read has answered, the create is on its way
  const released = a.elector.release();
  await clock.advance(1_000);
  await released;
  assert.equal(server.writes.length, 2, 'the create, then the release');
  assert.equal(server.lease?.spec?.holderIdentity, '');
  assert.ok(!a.elector.isLeading());
  assert.deepEqual(a.events, [], 'never started leading');
});
