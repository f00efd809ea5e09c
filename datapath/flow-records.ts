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
      at += 4 + length;
      const event = length === flowEvent.size ? decodeFlowEvent(data, at - length) : undefined;
      if (!event || !KERNEL_TYPES.has(event.type)) malformed++;
      else events.push(event);
    }
    this.#pending = Buffer.from(data.subarray(at));
    this.malformed += malformed;
    return { events, malformed };
  }
}

/**
 * flowEvent.decode, by hand for the hot path (a record costs a tenth of the
 * generic codec's time): fixed offsets, and addresses from a cache, since a
 * node sees the same few thousand addresses over and over. flow-records.test.ts
 * holds it equal to the codec.
 */
export function decodeFlowEvent(b: Buffer, at: number): FlowEvent {
  return {
    timeNs: b.readBigUInt64LE(at),
    packets: b.readBigUInt64LE(at + 8),
    bytes: b.readBigUInt64LE(at + 16),
    ifindex: b.readUInt32LE(at + 24),
    saddr: address(b.readUInt32BE(at + 28)),
    daddr: address(b.readUInt32BE(at + 32)),
    sport: b.readUInt16LE(at + 36),
    dport: b.readUInt16LE(at + 38),
    srcIdentity: b.readUInt32LE(at + 40),
    dstIdentity: b.readUInt32LE(at + 44),
    ruleId: b.readUInt32LE(at + 48),
    natAddr: address(b.readUInt32BE(at + 52)),
    natPort: b.readUInt16LE(at + 56),
    protocol: b[at + 58]!,
    direction: b[at + 59]!,
    type: b[at + 60]!,
    reason: b[at + 61]!,
    tcpFlags: b[at + 62]!,
    flags: b[at + 63]!,
  };
}

const addresses = new Map<number, string>();

function address(n: number): string {
  let text = addresses.get(n);
  if (text === undefined) {
    if (addresses.size >= 65_536) addresses.clear();
    text = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    addresses.set(n, text);
  }
  return text;
}

/** The frame palisade-flow-reader writes for one record (tests, benchmarks). */
export function flowFrame(record: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(record.length);
  return Buffer.concat([header, record]);
}
