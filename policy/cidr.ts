// IPv4 and IPv6 addresses and prefixes: parsing (as leniently as the API
// server's ipBlock validation), normalization, containment. Addresses are kept
// as 32-bit words (1 for IPv4, 4 for IPv6), most significant first.

export type Family = 4 | 6;

export interface Address {
  family: Family;
  words: readonly number[];
}

export interface Prefix {
  family: Family;
  /** Address words with the host bits cleared. */
  words: readonly number[];
  len: number;
  /** Normalized text: `10.0.0.0/8`, `fd00::/64`. */
  text: string;
}

export type CidrError = 'syntax' | 'prefix-length' | 'ipv4-mapped';

const V4_OCTET = /^[0-9]{1,3}$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4Words(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    // Leading zeros are read as decimal, as Go's ParseCIDRSloppy (used by the
    // API server for this legacy field) does.
    if (!V4_OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

function parseV6Words(s: string): number[] | undefined {
  if (s.length === 0) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (i === fields.length - 1 && f.includes('.')) {
        const v4 = parseV4Words(f);
        if (v4 === undefined) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!HEX_GROUP.test(f)) return undefined;
        out.push(parseInt(f, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  if (head === undefined) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const tail = groups(halves[1]!);
    if (tail === undefined) return undefined;
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined; // `::` stands for at least one group
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const words: number[] = [];
  for (let i = 0; i < 8; i += 2) words.push(all[i]! * 65536 + all[i + 1]!);
  return words;
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix). */
export function parseAddress(s: string): Address | undefined {
  if (s.includes(':')) {
    const words = parseV6Words(s);
    return words && { family: 6, words };
  }
  const v4 = parseV4Words(s);
  return v4 === undefined ? undefined : { family: 4, words: [v4] };
}

function maskWord(word: number, bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return word >>> 0;
  return (word & ~(0xffffffff >>> bits)) >>> 0;
}

function maskWords(words: readonly number[], len: number): number[] {
  return words.map((w, i) => maskWord(w, len - 32 * i));
}

export function formatAddress(a: Address): string {
  if (a.family === 4) {
    const w = a.words[0]!;
    return [w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255].join('.');
  }
  const g: number[] = [];
  for (const w of a.words) g.push(w >>> 16, w & 0xffff);
  // RFC 5952: the longest run (first on a tie) of two or more zero groups becomes `::`.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export function makePrefix(a: Address, len: number): Prefix {
  const words = maskWords(a.words, len);
  return { family: a.family, words, len, text: `${formatAddress({ family: a.family, words })}/${len}` };
}

/**
 * Parses `addr/len`. Host bits may be set (the API server accepts them in
 * ipBlock.cidr and except); the result is the normalized network.
 * IPv4-mapped IPv6 prefixes (`::ffff:a.b.c.d/n`) are refused: their meaning
 * differs between implementations.
 */
export function parseCidr(s: string): Prefix | CidrError {
  const slash = s.indexOf('/');
  if (slash < 0) return 'syntax';
  const addr = parseAddress(s.slice(0, slash));
  if (!addr) return 'syntax';
  const lenText = s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText)) return 'prefix-length';
  const len = Number(lenText);
  if (len > (addr.family === 4 ? 32 : 128)) return 'prefix-length';
  if (addr.family === 6 && addr.words[0] === 0 && addr.words[1] === 0 && addr.words[2] === 0xffff) {
    return 'ipv4-mapped';
  }
  return makePrefix(addr, len);
}

/** The /32 or /128 of an address. */
export function hostPrefix(a: Address): Prefix {
  return makePrefix(a, a.family === 4 ? 32 : 128);
}

/** Whether `outer` contains every address of `inner` (a prefix contains itself). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.len > inner.len) return false;
  return wordsMatch(outer, inner.words);
}

export function addressInPrefix(p: Prefix, a: Address): boolean {
  return p.family === a.family && wordsMatch(p, a.words);
}

function wordsMatch(p: Prefix, words: readonly number[]): boolean {
  for (let i = 0; i < p.words.length; i++) {
    const bits = p.len - 32 * i;
    if (bits <= 0) return true;
    if (maskWord(words[i]!, bits) !== p.words[i]) return false;
  }
  return true;
}

/** Total order: family, then address, then length (shorter first). */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.words.length; i++) {
    const d = a.words[i]! - b.words[i]!;
    if (d !== 0) return d;
  }
  return a.len - b.len;
}

/**
 * The fewest prefixes covering exactly the same addresses as `sorted`
 * (prefixes sorted by comparePrefixes, disjoint): adjacent "buddy" prefixes
 * (the two halves of one prefix) are merged, repeatedly.
 */
export function aggregatePrefixes(sorted: readonly Prefix[]): Prefix[] {
  // Work on (family, words, len) and give the merged ones their text at the end.
  const stack: { family: Family; words: number[]; len: number; original: Prefix | undefined }[] = [];
  for (const p of sorted) {
    let cur = { family: p.family, words: [...p.words], len: p.len, original: p as Prefix | undefined };
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top || top.family !== cur.family || top.len !== cur.len || top.len === 0) break;
      // Buddies: `top` is the lower half of its parent and `cur` the upper half.
      const bit = top.len - 1;
      const w = bit >> 5;
      const mask = 1 << (31 - (bit & 31));
      if ((top.words[w]! & mask) !== 0 || ((cur.words[w]! ^ top.words[w]!) >>> 0) !== mask >>> 0) break;
      if (top.words.some((x, i) => i !== w && x !== cur.words[i])) break;
      stack.pop();
      cur = { family: top.family, words: top.words, len: top.len - 1, original: undefined };
    }
    stack.push(cur);
  }
  return stack.map((e) => e.original ?? makePrefix({ family: e.family, words: e.words }, e.len));
}
