// Pure IPv4 arithmetic on numbers (unsigned 32-bit), for IPAM and CIDR parsing.

export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit number (host bits zero). */
  network: number;
  prefix: number;
}

export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`invalid IPv4 address "${text}"`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const match = /^([^/]+)\/(\d{1,2})$/.exec(text);
  const prefix = match ? Number(match[2]) : NaN;
  if (!match || prefix > 32) throw new Error(`invalid IPv4 CIDR "${text}"`);
  const address = parseIpv4(match[1]!);
  const size = 2 ** (32 - prefix);
  return { network: address - (address % size), prefix };
}

export function cidrSize(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/**
 * The addresses of a range that may be handed to pods: all but the network
 * and broadcast addresses, except on /31 and /32 where every address counts.
 */
export function assignableRange(cidr: Ipv4Cidr): { first: number; last: number } {
  const size = cidrSize(cidr);
  if (size <= 2) return { first: cidr.network, last: cidr.network + size - 1 };
  return { first: cidr.network + 1, last: cidr.network + size - 2 };
}
