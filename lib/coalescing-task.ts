// A one-slot "sync requested" signal: event handlers call request(), and the
// work runs at most once at a time; requests that arrive while it runs fold
// into a single follow-up run. A failed run is retried after a delay, through
// an injectable timer so tests need not sleep. runSoon() is for a caller that
// must know its request took effect: it settles with the outcome of the first
// run that starts after the call.

export interface Timer {
  setTimeout(fn: () => void, ms: number): unknown;
}

export class CoalescingTask {
  readonly #work: () => Promise<void>;
  readonly #onError: (error: unknown) => void;
  readonly #retryMs: number;
  readonly #timer: Timer;
  #running: Promise<void> | undefined;
  #pending = false;
  /** Runs started so far; a waiter is settled by the first run numbered above its `after`. */
  #started = 0;
  #waiters: Array<{ after: number; resolve: () => void; reject: (error: unknown) => void }> = [];

  constructor(
    work: () => Promise<void>,
    options: { onError: (error: unknown) => void; retryMs?: number; timer?: Timer },
  ) {
    this.#work = work;
    this.#onError = options.onError;
    this.#retryMs = options.retryMs ?? 1000;
    this.#timer = options.timer ?? globalThis;
  }

  request(): void {
    if (this.#running) {
      this.#pending = true;
      return;
    }
    this.#running = this.#loop();
  }

  /**
   * Requests a run and settles with the outcome of the first run that starts
   * after this call: resolves when it succeeded, rejects with its error.
   */
  runSoon(): Promise<void> {
    const waiting = new Promise<void>((resolve, reject) => this.#waiters.push({ after: this.#started, resolve, reject }));
    this.request();
    return waiting;
  }

  /** Resolves when no run is in progress or queued, whether the last run failed or not (tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#pending = false;
      const run = ++this.#started;
      try {
        await this.#work();
        this.#settle(run, (w) => w.resolve());
      } catch (error) {
        this.#onError(error);
        this.#settle(run, (w) => w.reject(error));
        this.#timer.setTimeout(() => this.request(), this.#retryMs);
      }
    } while (this.#pending);
    this.#running = undefined;
  }

  #settle(run: number, how: (waiter: { resolve: () => void; reject: (error: unknown) => void }) => void): void {
    const due = this.#waiters.filter((w) => w.after < run);
    this.#waiters = this.#waiters.filter((w) => w.after >= run);
    for (const waiter of due) how(waiter);
  }
}
