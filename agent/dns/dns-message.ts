// DNS messages as the proxy needs them, on dns-packet (a well-kept parser
// whose name decoder refuses forward and looping compression pointers):
// the question of a query, a refusal built from it, and what an answer
// teaches (each name's IPv4 addresses and TTL, CNAME chains followed).
// Pure. Every function takes hostile bytes: a message that does not parse
// is `undefined`, never an exception.
import dnsPacket from 'dns-packet';
import { normalizeName } from '../../policy/fqdn.ts';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const RCODE_NAMES: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };
export const rcodeName = (rcode: number) => RCODE_NAMES[rcode] ?? `RCODE${rcode}`;

/** Largest DNS message over TCP (its length prefix is 16 bits). */
export const MAX_MESSAGE = 65535;

export interface Question {
  id: number;
  /** Lowercase, no trailing dot. */
  name: string;
  type: string;
}

function decode(buf: Buffer): dnsPacket.Packet | undefined {
  if (buf.length < 12 || buf.length > MAX_MESSAGE) return undefined;
  try {
    return dnsPacket.decode(buf);
  } catch {
    return undefined;
  }
}

/** The single question of a query (QR=0, one question); undefined otherwise. */
export function parseQuery(buf: Buffer): Question | undefined {
  const p = decode(buf);
  if (!p || p.type !== 'query' || p.questions?.length !== 1) return undefined;
  const q = p.questions[0]!;
  if (typeof q.name !== 'string') return undefined;
  return { id: p.id ?? 0, name: normalizeName(q.name), type: String(q.type) };
}

/**
 * A response to `query` carrying only its question and `rcode` (REFUSED or
 * NXDOMAIN for a name the policy does not allow; SERVFAIL when no upstream
 * answered). Built from the query's own bytes, so it echoes exactly what was
 * asked.
 */
export function refusal(query: Buffer, rcode: number): Buffer | undefined {
  const p = decode(query);
  if (!p || p.type !== 'query') return undefined;
  return dnsPacket.encode({
    type: 'response',
    id: p.id ?? 0,
    // QR, the query's opcode and RD, RA, the rcode.
    flags: ((p.flags ?? 0) & 0x7900) | 0x8080 | (rcode & 0xf),
    questions: p.questions ?? [],
  });
}

export interface AnswerFacts {
  id: number;
  rcode: number;
  question: Question | undefined;
  /** name -> its IPv4 addresses and the lowest TTL on the way to them (names lowercase). */
  names: Map<string, { addresses: string[]; ttl: number }>;
  /** Every IPv4 address in the answer (for the flow). */
  addresses: string[];
  /** Lowest TTL of the answer's records (0 when none). */
  ttl: number;
}

/** What a response teaches; undefined when it does not parse as a response. */
export function parseAnswer(buf: Buffer): AnswerFacts | undefined {
  const p = decode(buf);
  if (!p || p.type !== 'response') return undefined;
  const rcode = (p.flags ?? 0) & 0xf;
  const q = p.questions?.length === 1 && typeof p.questions[0]!.name === 'string'
    ? { id: p.id ?? 0, name: normalizeName(p.questions[0]!.name), type: String(p.questions[0]!.type) }
    : undefined;
  const cnames = new Map<string, { target: string; ttl: number }>();
  const a = new Map<string, { addresses: string[]; ttl: number }>();
  let minTtl = Infinity;
  for (const rr of p.answers ?? []) {
    if (typeof rr.name !== 'string') continue;
    const name = normalizeName(rr.name);
    const raw = (rr as { ttl?: unknown }).ttl;
    const ttl = typeof raw === 'number' && raw >= 0 ? raw : 0;
    if (rr.type === 'CNAME' && typeof rr.data === 'string') {
      cnames.set(name, { target: normalizeName(rr.data), ttl });
      minTtl = Math.min(minTtl, ttl);
    } else if (rr.type === 'A' && typeof rr.data === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(rr.data)) {
      const entry = a.get(name) ?? { addresses: [], ttl: Infinity };
      if (!entry.addresses.includes(rr.data)) entry.addresses.push(rr.data);
      entry.ttl = Math.min(entry.ttl, ttl);
      a.set(name, entry);
      minTtl = Math.min(minTtl, ttl);
    }
  }
  // Each name reaches addresses through at most a few CNAMEs (a loop, or a chain longer than 16, teaches nothing more).
  const names = new Map<string, { addresses: string[]; ttl: number }>();
  for (const start of new Set([...cnames.keys(), ...a.keys()])) {
    let name = start;
    let ttl = Infinity;
    for (let hops = 0; hops <= 16; hops++) {
      const direct = a.get(name);
      if (direct) {
        names.set(start, { addresses: [...direct.addresses].sort(), ttl: Math.min(ttl, direct.ttl) });
        break;
      }
      const c = cnames.get(name);
      if (!c) break;
      ttl = Math.min(ttl, c.ttl);
      name = c.target;
    }
  }
  const addresses = [...new Set([...a.values()].flatMap((e) => e.addresses))].sort();
  return { id: p.id ?? 0, rcode, question: q, names, addresses, ttl: minTtl === Infinity ? 0 : minTtl };
}

/** The message with another ID (the proxy multiplexes clients over one upstream socket). */
export function withId(buf: Buffer, id: number): Buffer {
  const out = Buffer.from(buf);
  out.writeUInt16BE(id & 0xffff, 0);
  return out;
}
