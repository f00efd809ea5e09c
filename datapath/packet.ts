// Pure: crafted Ethernet/IPv4 packets for BPF_PROG_TEST_RUN (differential
// tests and the per-packet benchmark). Checksums are left zero: the programs
// under test never verify them.

export type L4 = 'TCP' | 'UDP' | 'SCTP';
const PROTO: Record<L4, number> = { TCP: 6, UDP: 17, SCTP: 132 };

export interface PacketSpec {
  saddr: string;
  daddr: string;
  protocol: L4;
  sport: number;
  dport: number;
  /** TCP flags byte; default SYN (0x02). */
  tcpFlags?: number;
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

export function ipv4Packet(spec: PacketSpec): Buffer {
  const l4Length = spec.protocol === 'TCP' ? 20 : spec.protocol === 'UDP' ? 8 : 12;
  const packet = Buffer.alloc(14 + 20 + l4Length);
  packet.writeUInt16BE(0x0800, 12); // EtherType IPv4; MACs stay zero
  const ip = packet.subarray(14);
  ip[0] = 0x45; // version 4, IHL 5
  ip.writeUInt16BE(20 + l4Length, 2);
  ip[8] = 64; // TTL
  ip[9] = PROTO[spec.protocol];
  writeAddress(ip, 12, spec.saddr);
  writeAddress(ip, 16, spec.daddr);
  const l4 = ip.subarray(20);
  l4.writeUInt16BE(spec.sport, 0);
  l4.writeUInt16BE(spec.dport, 2);
  if (spec.protocol === 'TCP') {
    l4[12] = 0x50; // data offset 5
    l4[13] = spec.tcpFlags ?? TCP_SYN;
  } else if (spec.protocol === 'UDP') {
    l4.writeUInt16BE(8, 4);
  }
  return packet;
}

function writeAddress(buffer: Buffer, offset: number, address: string): void {
  address.split('.').forEach((part, i) => (buffer[offset + i] = Number(part)));
}
