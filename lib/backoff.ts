// Capped exponential backoff with jitter, for everything that retries
// against the API server: the agent's first read of its Node and every
// informer's watch restarts. Jitter keeps a fleet of agents that lost the
// API server together from coming back in lockstep.

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 500 ms. */
  initialMs?: number;
  /** No delay exceeds this. Default 30 s. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Source of jitter in [0, 1); default Math.random (tests pass their own). */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0 for the first): initialMs *
 * factor^attempt, capped at maxMs, then scaled by a random factor in
 * [0.5, 1), so it never falls below half the nominal delay.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { initialMs = 500, maxMs = 30_000, factor = 2, random = Math.random } = options;
  const nominal = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt));
  return Math.round(nominal * (0.5 + random() / 2));
}

export interface RetryOptions {
  backoff?: BackoffOptions;
  /** Told about each failure once, with the delay before the next attempt. */
  onError: (error: unknown, attempt: number, delayMs: number) => void;
  /** Waits ms; default a timer (tests pass one that records and returns at once). */
  sleep?: (ms: number) => Promise<void>;
}

/** Runs work until it succeeds, waiting longer after each failure. */
export async function retryWithBackoff<T>(work: () => Promise<T>, options: RetryOptions): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const delay = backoffDelay(attempt, options.backoff);
      options.onError(error, attempt, delay);
      await sleep(delay);
    }
  }
}
