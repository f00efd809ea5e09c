// Pure: the flow records of the datapath (bpf/lib/flows.h, `flowEvent` in
// abi.ts) as palisade-flow-reader streams them: `u32 length | record`,
// little-endian, cut anywhere by the pipe. FlowRecordDecoder takes chunks
// as they come and returns the whole records decoded; a record of the wrong
// size or with an impossible field is counted and skipped, never thrown.
import { FLOW_TYPE, flowEvent, type FlowEvent } from './abi.ts';

/** The longest record the reader passes on (it skips longer ones itself). */
const MAX_RECORD = 1 << 20;

export interface DecodedChunk {
  events: FlowEvent[];
  /** Records skipped: wrong size, or a type the datapath does not write. */
  malformed: number;
}

const KERNEL_TYPES = new Set<number>([FLOW_TYPE.NEW, FLOW_TYPE.DROP, FLOW_TYPE.END, FLOW_TYPE.UPDATE]);

export class FlowRecordDecoder {
  #pending: Buffer = Buffer.alloc(0);
  /** Records skipped so far. */
  malformed = 0;

  /** Decodes the whole records of `chunk` (with what the last chunk left over). */
  push(chunk: Buffer): DecodedChunk {
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const events: FlowEvent[] = [];
    let malformed = 0;
    let at = 0;
    while (at + 4 <= data.length) {
      const length = data.readUInt32LE(at);
      if (length > MAX_RECORD) {
        // Not a length the reader writes: the stream is out of step. Skip all of it.
        malformed++;
        at = data.length;
        break;
      }
      if (at + 4 + length > data.length) break;
      const record = data.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      const event = length === flowEvent.size ? flowEvent.decode(record) : undefined;
      if (!event || !KERNEL_TYPES.has(event.type)) malformed++;
      else events.push(event);
    }
    this.#pending = Buffer.from(data.subarray(at));
    this.malformed += malformed;
    return { events, malformed };
  }
}

/** The frame palisade-flow-reader writes for one record (tests, benchmarks). */
export function flowFrame(record: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(record.length);
  return Buffer.concat([header, record]);
}
