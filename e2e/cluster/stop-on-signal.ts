// For the commands a person runs and may interrupt (`npm run demo`,
// `npm run scenarios`): whatever moment Ctrl-C (SIGINT) or SIGTERM arrives,
// also while a cluster is still starting, the cluster ends in its stop()
// and the process exits only after that. A start under way is let finish
// (or fail, which cleans up by itself) and the cluster is then stopped;
// signals that arrive while stopping are ignored (a second Ctrl-C does not
// leave processes, mounts and namespaces behind).

export interface Stoppable {
  stop(): Promise<void>;
}

export class StopOnSignal<C extends Stoppable> {
  #starting: Promise<C> | undefined;
  #stopping: Promise<void> | undefined;
  #stopped = false;
  #interrupted = false;

  /** A signal came: the process exits once the cluster is stopped. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** Where to tell the person what is happening (stderr for a command whose stdout is parsed). */
  readonly say: (text: string) => void;

  /** @param exitCode the process's exit code after a signal */
  constructor(say: (text: string) => void, exitCode = 130) {
    this.say = say;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (this.#stopping) {
          this.say('(still removing the cluster; it is nearly done)');
          return;
        }
        this.#interrupted = true;
        this.say('\nInterrupted: removing the cluster (processes, mounts, namespaces, files)...');
        void this.stop().then(() => process.exit(exitCode));
      });
    }
  }

  /** Starts the cluster through `start`; a signal meanwhile stops it as soon as it is up. */
  async start(start: () => Promise<C>): Promise<C> {
    if (this.#stopped) throw new Error('stopping: no new cluster');
    this.#starting = start();
    const cluster = await this.#starting;
    if (this.#stopped) {
      // Stopped while it started: stop() is waiting for this start; never hand the cluster out.
      await forever();
    }
    return cluster;
  }

  /** Stops the cluster, if one started (or is starting); idempotent. */
  stop(message?: string): Promise<void> {
    this.#stopped = true;
    this.#stopping ??= (async () => {
      const starting = this.#starting;
      if (!starting) return;
      const cluster = await starting.catch(() => undefined); // a failed start removed what it made
      if (!cluster) return;
      if (message) this.say(message);
      await cluster.stop();
    })();
    return this.#stopping;
  }
}

/** Never resolves, and keeps the process alive meanwhile (until process.exit, e.g. in the signal's handler). */
export function forever(): Promise<never> {
  return new Promise(() => setInterval(() => undefined, 60_000));
}
