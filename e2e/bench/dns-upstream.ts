// A DNS server for the DNS benchmark, in its own process: answers every A
// query with one address derived from the name (so fresh names get fresh
// addresses), TTL 60. Prints its port, then serves until killed.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const host = process.argv[2] ?? '127.0.0.2';
const socket = dgram.createSocket('udp4');
socket.on('message', (msg, r) => {
  let q: dnsPacket.DecodedPacket;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return;
  }
  const name = q.questions?.[0]?.name ?? '';
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const address = `10.${100 + ((h >>> 16) & 63)}.${(h >>> 8) & 255}.${(h & 254) + 1}`;
  socket.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers: [{ type: 'A', name, ttl: 60, data: address }] }), r.port, r.address);
});
socket.bind(0, host, () => process.stdout.write(`${socket.address().port}\n`));
