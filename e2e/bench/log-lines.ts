// Reads the complete lines appended to a log file since the last call:
// benchmarks follow their helpers' output (written straight to a file by
// startProcess) without a pipe into this process.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export class LogLines {
  readonly #file: string;
  #offset: number;
  #partial = '';
  readonly #decoder = new StringDecoder('utf8');

  /** Starts at the file's current end, or at `offset` if given. */
  constructor(file: string, offset?: number) {
    this.#file = file;
    this.#offset = offset ?? statSync(file).size;
  }

  /** The whole lines written since the last call. */
  next(): string[] {
    const fd = openSync(this.#file, 'r');
    let text = '';
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.#offset);
        if (n === 0) break;
        this.#offset += n;
        text += this.#decoder.write(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    return lines;
  }
}
