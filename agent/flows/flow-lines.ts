// Followers' JSON lines, written off the main thread: the main thread only
// encodes a batch into numbers (flow-codec.ts, about 0.3 us a flow), and a
// worker thread writes the text and its UTF-8 bytes. Batches are answered
// in the order they were given. Should the worker die, lines are written
// here again (lib/flow-json.ts), slower but the same.
import { Worker } from 'node:worker_threads';
import type { Flow } from '../../lib/flow.ts';
import { flowJson } from '../../lib/flow-json.ts';
import { FlowEncoder } from './flow-codec.ts';

type Pending = { resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void; flows: readonly Flow[] };

export class FlowLines {
  readonly #encoder = new FlowEncoder();
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | undefined;
  #next = 0;

  readonly #log: (line: string) => void;

  constructor(log: (line: string) => void = () => undefined) {
    this.#log = log;
    const worker = new Worker(new URL('./flow-lines-worker.ts', import.meta.url));
    worker.unref(); // it never keeps the agent alive
    worker.on('message', ({ id, bytes, error }: { id: number; bytes?: Uint8Array; error?: string }) => {
      const p = this.#pending.get(id);
      this.#pending.delete(id);
      if (!p) return;
      if (bytes) p.resolve(bytes);
      else p.reject(new Error(`flow lines: ${error}`));
    });
    worker.on('error', (error) => this.#lost(`failed: ${error.message}`));
    worker.on('exit', (code) => this.#lost(`exited (${code})`));
    this.#worker = worker;
  }

  /** The `{"flow":...}` lines of the flows, as UTF-8. */
  lines(flows: readonly Flow[]): Promise<Uint8Array> {
    if (!this.#worker) return Promise.resolve(inThread(flows));
    const id = this.#next++;
    const batch = this.#encoder.encode(flows);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, flows });
      this.#worker!.postMessage({ id, batch }, [batch.data.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }

  /** The worker is gone: what it had not answered is written here, and so is everything after. */
  #lost(why: string): void {
    if (!this.#worker) return;
    this.#worker = undefined;
    this.#log(`flows: the line writer thread ${why}; writing followers' lines on the main thread`);
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.resolve(inThread(p.flows));
    }
  }
}

function inThread(flows: readonly Flow[]): Uint8Array {
  return Buffer.from(flows.map((f) => `{"flow":${flowJson(f)}}\n`).join(''));
}
