// A one-slot "sync requested" signal: event handlers call request(), and the
// work runs at most once at a time; requests that arrive while it runs fold
// into a single follow-up run. A failed run is retried after a delay, through
// an injectable timer so tests need not sleep.

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

  /** Resolves when no run is in progress or queued (used by tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#pending = false;
      try {
        await this.#work();
      } catch (error) {
        this.#onError(error);
        this.#timer.setTimeout(() => this.request(), this.#retryMs);
      }
    } while (this.#pending);
    this.#running = undefined;
  }
}
