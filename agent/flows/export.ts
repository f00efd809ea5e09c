// Every flow as a JSON line (lib/flow.ts, docs/flows.md) in a file on the
// node, for log shippers: rotated by size (FILE -> FILE.1 -> ... FILE.N,
// the oldest deleted). Writing never holds the pipeline up: lines queue in
// memory up to a bound, and what a slow disk cannot take is counted as lost.
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Flow } from '../../lib/flow.ts';
import { flowJson } from '../../lib/flow-json.ts';

export interface FlowExportOptions {
  file: string;
  maxBytes: number;
  /** Rotated files kept. */
  files: number;
  /** Bytes queued before new flows are dropped (default 16 MiB). */
  maxQueuedBytes?: number;
  log: (line: string) => void;
}

export class FlowExport {
  readonly #o: FlowExportOptions;
  #queue: string[] = [];
  #queuedBytes = 0;
  #handle: FileHandle | undefined;
  #size = 0;
  #writing: Promise<void> | undefined;
  /** Flows dropped because the disk did not keep up (or failed). */
  lost = 0;
  written = 0;

  constructor(options: FlowExportOptions) {
    this.#o = options;
  }

  add(flows: readonly Flow[]): void {
    const limit = this.#o.maxQueuedBytes ?? 16 << 20;
    for (const flow of flows) {
      const line = `${flowJson(flow)}\n`;
      if (this.#queuedBytes + line.length > limit) {
        this.lost++;
        continue;
      }
      this.#queue.push(line);
      this.#queuedBytes += line.length;
    }
    this.#writing ??= this.#drain().finally(() => (this.#writing = undefined));
  }

  /** Resolves once everything queued is written. */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#handle?.close();
    this.#handle = undefined;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const lines = this.#queue;
      this.#queue = [];
      this.#queuedBytes = 0;
      let done = 0;
      try {
        done = await this.#write(lines);
      } catch (error) {
        this.lost += lines.length - done;
        this.#o.log(`flows: export to ${this.#o.file} failed, ${lines.length - done} flows lost: ${(error as Error).message}`);
        await this.#handle?.close().catch(() => undefined);
        this.#handle = undefined;
      }
    }
  }

  /** Appends the lines, a file at a time: a file is rotated before a line would take it past maxBytes. Returns how many were written. */
  async #write(lines: string[]): Promise<number> {
    if (!this.#handle) {
      this.#handle = await open(this.#o.file, 'a');
      this.#size = (await stat(this.#o.file)).size;
    }
    let done = 0;
    while (done < lines.length) {
      let chunk = '';
      let bytes = 0;
      let n = done;
      for (; n < lines.length; n++) {
        const size = Buffer.byteLength(lines[n]!);
        if (this.#size + bytes + size > this.#o.maxBytes && this.#size + bytes > 0) break;
        chunk += lines[n];
        bytes += size;
      }
      if (n === done) {
        await this.#rotate();
        continue;
      }
      await this.#handle!.appendFile(chunk);
      this.#size += bytes;
      this.written += n - done;
      done = n;
    }
    return done;
  }

  async #rotate(): Promise<void> {
    await this.#handle?.close();
    const { file, files } = this.#o;
    if (files === 0) await rm(file, { force: true });
    else {
      await rm(`${file}.${files}`, { force: true });
      for (let n = files - 1; n >= 1; n--) await rename(`${file}.${n}`, `${file}.${n + 1}`).catch(() => undefined);
      await rename(file, `${file}.1`);
    }
    this.#handle = await open(file, 'a');
    this.#size = 0;
  }
}
