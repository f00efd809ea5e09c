// Runs build/bin/palisade-flow-reader on the pinned pal_flows ring buffer
// and hands its records, decoded in batches (flow-records.ts), to `onEvents`.
// The reader runs in the caller's mount namespace (where the pin is); it
// dies with its parent. A reader that exits is reported through `exited`.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FlowEvent } from './abi.ts';
import { FlowRecordDecoder } from './flow-records.ts';

export const DEFAULT_FLOW_READER_BINARY = fileURLToPath(new URL('../build/bin/palisade-flow-reader', import.meta.url));

export interface FlowReaderOptions {
  /** The pinned ring buffer: `<pin dir>/pal_flows`. */
  ringPath: string;
  onEvents: (events: FlowEvent[], malformed: number) => void;
  binary?: string;
  onLog?: (line: string) => void;
}

export class FlowReader {
  readonly #child: ChildProcess;
  readonly #decoder = new FlowRecordDecoder();
  /** Resolves with the reader's exit code (or signal) once it has exited. */
  readonly exited: Promise<string>;

  constructor(options: FlowReaderOptions) {
    const onLog = options.onLog ?? ((line: string) => process.stderr.write(`[palisade-flow-reader] ${line}\n`));
    this.#child = spawn(options.binary ?? DEFAULT_FLOW_READER_BINARY, [options.ringPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      const { events, malformed } = this.#decoder.push(chunk);
      if (events.length > 0 || malformed > 0) options.onEvents(events, malformed);
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n')) if (line) onLog(line);
    });
    this.exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => resolve(signal ?? `exit ${code}`));
      this.#child.on('error', (error) => resolve(`failed to start: ${error.message}`));
    });
  }

  /** Records skipped as malformed so far. */
  get malformed(): number {
    return this.#decoder.malformed;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    await this.exited;
  }
}
