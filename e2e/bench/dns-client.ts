// The DNS benchmark's client, in its own process: sends A queries one at a
// time, alternating direct (to the upstream) and through the proxy, and
// prints each latency in microseconds as JSON lines.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const [upstream, upstreamPort, proxyPort, count, fresh] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6] === 'fresh'];
const socket = dgram.createSocket('udp4');
await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));

function ask(port: number, host: string, name: string, id: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 2000);
    socket.once('message', (m) => {
      clearTimeout(timer);
      const a = dnsPacket.decode(m);
      if (a.id !== id) return reject(new Error('answer to another query'));
      resolve(Number(process.hrtime.bigint() - t) / 1000);
    });
    socket.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, host);
  });
}

const out: string[] = [];
for (let i = 0; i < count; i++) {
  const name = fresh ? `n${i}.bench.example.com` : `api${i % 10}.bench.example.com`;
  const direct = await ask(upstreamPort, upstream, name, (2 * i) & 0xffff);
  const proxied = await ask(proxyPort, '127.0.0.1', fresh ? `p${i}.bench.example.com` : name, (2 * i + 1) & 0xffff);
  out.push(JSON.stringify([direct, proxied]));
}
process.stdout.write(`${out.join('\n')}\n`);
socket.close();
