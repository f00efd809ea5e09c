// Pure: how many drops each drop event stands for, and the drops no event
// reported. The datapath summarises drops per key (device, peer, reason,
// direction) in pal_drop_agg: a key's event carries its running total, and
// the drops after its last event stay in the map (bpf/lib/flows.h). This
// remembers the last total seen per key: an event stands for the drops
// since, and a key whose total has grown and then held still for a whole
// read of the map (no event can still be on its way) has a tail to report.
import { dropAggKey } from '../../datapath/abi.ts';

export interface DropTail {
  key: ReturnType<typeof dropAggKey.decode>;
  drops: bigint;
}

export class DropTotals {
  /** Key (hex) -> the total accounted for. */
  readonly #accounted = new Map<string, bigint>();
  /** Key (hex) -> the total the previous read of the map found. */
  #lastRead = new Map<string, bigint>();

  /** The drops an event with running total `total` stands for (0 for a late or stale one). */
  event(key: Buffer | string, total: bigint): bigint {
    const k = typeof key === 'string' ? key : key.toString('hex');
    const before = this.#accounted.get(k) ?? 0n;
    if (total <= before) return 0n;
    this.#accounted.set(k, total);
    return total - before;
  }

  /** The tails of a read of pal_drop_agg (key and total per entry); keys the map no longer has are forgotten. */
  read(entries: ReadonlyArray<{ key: Buffer; total: bigint }>): DropTail[] {
    const tails: DropTail[] = [];
    const read = new Map<string, bigint>();
    for (const { key, total } of entries) {
      const k = key.toString('hex');
      read.set(k, total);
      const accounted = this.#accounted.get(k) ?? 0n;
      if (total > accounted && this.#lastRead.get(k) === total) {
        tails.push({ key: dropAggKey.decode(key), drops: total - accounted });
        this.#accounted.set(k, total);
      }
    }
    for (const k of this.#accounted.keys()) if (!read.has(k)) this.#accounted.delete(k);
    this.#lastRead = read;
    return tails;
  }
}
