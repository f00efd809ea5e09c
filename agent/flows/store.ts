// The agent's most recent flows, in a ring of fixed size (oldest out
// first), with sequence numbers, queries and followers. Nothing here
// blocks: a follower that does not keep up is told how many flows it
// missed, and one that stays behind is cut off.
import type { Flow } from '../../lib/flow.ts';

export interface StoredFlow {
  seq: number;
  flow: Flow;
}

export interface FlowQuery {
  filter?: (flow: Flow) => boolean;
  /** Only the last N that match. */
  last?: number;
  /** Only flows at or after this time (ms since the epoch). */
  sinceMs?: number;
}

export interface FollowBatch {
  flows: StoredFlow[];
  /** Flows that matched but were dropped from this follower's queue because it fell behind. */
  missed: number;
}

export class FlowStore {
  readonly capacity: number;
  readonly #ring: Array<StoredFlow | undefined>;
  #next = 0;
  readonly #followers = new Set<Follower>();
  /** Flows pushed out of the ring by newer ones. */
  evicted = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow store capacity ${capacity}`);
    this.capacity = capacity;
    this.#ring = new Array(capacity);
  }

  get size(): number {
    return Math.min(this.#next, this.capacity);
  }

  /** The sequence number the next flow will get. */
  get nextSeq(): number {
    return this.#next;
  }

  add(flows: readonly Flow[]): void {
    const stored: StoredFlow[] = [];
    for (const flow of flows) {
      const slot = this.#next % this.capacity;
      if (this.#ring[slot]) this.evicted++;
      const s = { seq: this.#next++, flow };
      this.#ring[slot] = s;
      stored.push(s);
    }
    for (const follower of this.#followers) follower.offer(stored);
  }

  /** The stored flows that match, oldest first. */
  query(q: FlowQuery = {}): StoredFlow[] {
    const out: StoredFlow[] = [];
    const since = q.sinceMs;
    for (let seq = Math.max(0, this.#next - this.capacity); seq < this.#next; seq++) {
      const s = this.#ring[seq % this.capacity]!;
      if (since !== undefined && Date.parse(s.flow.time) < since) continue;
      if (q.filter && !q.filter(s.flow)) continue;
      out.push(s);
    }
    return q.last === undefined ? out : out.slice(Math.max(0, out.length - q.last));
  }

  /**
   * Follows new flows that match. A follower holds at most `queueLimit`
   * flows; beyond, the oldest are dropped and counted in the next batch's
   * `missed`. One whose missed flows exceed `cutOffAfterMissed` is closed.
   */
  follow(filter: ((flow: Flow) => boolean) | undefined, options: { queueLimit?: number; cutOffAfterMissed?: number } = {}): Follower {
    const follower = new Follower(filter, options.queueLimit ?? 10_000, options.cutOffAfterMissed ?? Infinity, () => this.#followers.delete(follower));
    this.#followers.add(follower);
    return follower;
  }

  get followers(): number {
    return this.#followers.size;
  }
}

export class Follower {
  readonly #filter: ((flow: Flow) => boolean) | undefined;
  readonly #limit: number;
  readonly #cutOff: number;
  readonly #onClose: () => void;
  #queue: StoredFlow[] = [];
  #missed = 0;
  #missedTotal = 0;
  #wake: (() => void) | undefined;
  #closedResolve!: (why: 'closed' | 'cut-off') => void;
  /** Set when the follower was closed; `cutOff` when it fell too far behind. */
  closed: 'closed' | 'cut-off' | undefined;
  /** Settles when the follower is closed, with why. */
  readonly whenClosed = new Promise<'closed' | 'cut-off'>((resolve) => (this.#closedResolve = resolve));

  constructor(filter: ((flow: Flow) => boolean) | undefined, limit: number, cutOff: number, onClose: () => void) {
    this.#filter = filter;
    this.#limit = limit;
    this.#cutOff = cutOff;
    this.#onClose = onClose;
  }

  offer(flows: readonly StoredFlow[]): void {
    if (this.closed) return;
    for (const s of flows) if (!this.#filter || this.#filter(s.flow)) this.#queue.push(s);
    const over = this.#queue.length - this.#limit;
    if (over > 0) {
      this.#queue.splice(0, over);
      this.#missed += over;
      this.#missedTotal += over;
      if (this.#missedTotal > this.#cutOff) this.close('cut-off');
    }
    this.#wake?.();
  }

  /** The flows queued since the last call (waits for one), or undefined once closed. */
  async next(): Promise<FollowBatch | undefined> {
    while (this.#queue.length === 0 && this.#missed === 0 && !this.closed) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    if (this.closed && this.#queue.length === 0 && this.#missed === 0) return undefined;
    const batch = { flows: this.#queue, missed: this.#missed };
    this.#queue = [];
    this.#missed = 0;
    return batch;
  }

  close(why: 'closed' | 'cut-off' = 'closed'): void {
    if (this.closed) return;
    this.closed = why;
    this.#onClose();
    this.#closedResolve(why);
    this.#wake?.();
  }
}
