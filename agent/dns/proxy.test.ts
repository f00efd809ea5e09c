// The DNS proxy over real sockets on loopback, against a real (small) DNS
// server: the answer is released only after learning, names the policy
// refuses never reach the server, TCP works like UDP, and what does not
// parse or was never asked is dropped.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { DnsProxy, type DnsEvent } from './proxy.ts';
import type { AnswerFacts } from './dns-message.ts';

const UPSTREAM = '127.0.0.2';
const RECORDS: Record<string, string[]> = { 'api.example.com': ['203.0.113.10'], 'www.example.com': ['203.0.113.11', '203.0.113.12'] };

/** A DNS server answering A queries from RECORDS (NXDOMAIN otherwise), over UDP and TCP, counting queries. */
async function upstreamServer(): Promise<{ port: number; queries: string[]; close(): Promise<void> }> {
  const queries: string[] = [];
  const answer = (msg: Buffer): Buffer => {
    const q = dnsPacket.decode(msg);
    const name = q.questions![0]!.name;
    queries.push(name);
    const ips = RECORDS[name];
    return dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (ips ? 0 : 3),
      questions: q.questions, answers: (ips ?? []).map((data) => ({ type: 'A' as const, name, ttl: 30, data })),
    });
  };
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, r) => udp.send(answer(msg), r.port, r.address));
  await new Promise<void>((r) => udp.bind(0, UPSTREAM, r));
  const port = udp.address().port;
  const tcp = net.createServer((s) => s.on('data', (d: Buffer) => {
    const reply = answer(d.subarray(2));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(reply.length);
    s.write(Buffer.concat([len, reply]));
  }));
  await new Promise<void>((r) => tcp.listen(port, UPSTREAM, r));
  return { port, queries, close: async () => { udp.close(); await new Promise((r) => tcp.close(r)); } };
}

let server: Awaited<ReturnType<typeof upstreamServer>>;
const learned: Array<{ facts: AnswerFacts; at: number }> = [];
const events: DnsEvent[] = [];
let failLearning = false;
let proxy: DnsProxy;
let proxyPort: number;

before(async () => {
  server = await upstreamServer();
  proxy = new DnsProxy({
    address: '127.0.0.1',
    upstreamPort: server.port,
    allows: (_client, _upstream, name) => name.endsWith('.example.com'),
    learn: async (facts) => {
      await new Promise((r) => setTimeout(r, 30)); // the maps take a moment
      if (failLearning) throw new Error('loader gone');
      learned.push({ facts, at: performance.now() });
    },
    onEvent: (e) => events.push(e),
  });
  await proxy.setUpstreams(new Map([[UPSTREAM, 0]]));
  proxyPort = proxy.ports().get(UPSTREAM)!;
});

after(async () => {
  await proxy.stop();
  await server.close();
});

async function askUdp(name: string, raw?: Buffer): Promise<{ packet: dnsPacket.DecodedPacket | undefined; at: number }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  try {
    const got = new Promise<Buffer | undefined>((resolve) => {
      s.once('message', (m) => resolve(m));
      setTimeout(() => resolve(undefined), 700).unref();
    });
    s.send(raw ?? dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), proxyPort, '127.0.0.1');
    const m = await got;
    return { packet: m && dnsPacket.decode(m), at: performance.now() };
  } finally {
    s.close();
  }
}

test('dns proxy: an allowed name is forwarded, learned, and only then answered, with the client\'s own ID', async () => {
  const before = server.queries.length;
  const { packet, at } = await askUdp('api.example.com');
  assert.equal(packet?.id, 4242);
  assert.deepEqual(packet?.answers?.map((a) => (a as { data?: unknown }).data), ['203.0.113.10']);
  assert.equal(server.queries.length, before + 1);
  const l = learned.at(-1)!;
  assert.deepEqual(l.facts.names.get('api.example.com')?.addresses, ['203.0.113.10']);
  assert.ok(l.at <= at, 'learned before the answer reached the client');
  const e = events.at(-1)!;
  assert.deepEqual([e.verdict, e.rcode, e.name, e.type, e.addresses, e.ttl, e.protocol], ['forwarded', 'NOERROR', 'api.example.com', 'A', ['203.0.113.10'], 30, 'UDP']);
});

test('dns proxy: a name the policy refuses is answered REFUSED and never reaches the server', async () => {
  const before = server.queries.length;
  const { packet } = await askUdp('evil.example.org');
  assert.equal((packet as unknown as { rcode: string }).rcode, 'REFUSED');
  assert.equal(server.queries.length, before);
  assert.equal(events.at(-1)!.verdict, 'refused');
});

test('dns proxy: TCP queries work the same way', async () => {
  const answer = await new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1', () => {
      const q = dnsPacket.encode({ type: 'query', id: 77, questions: [{ type: 'A', name: 'www.example.com' }] });
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      s.write(Buffer.concat([len, q]));
    });
    s.on('data', (d: Buffer) => (resolve(dnsPacket.decode(d.subarray(2))), s.destroy()));
    s.on('error', reject);
  });
  assert.equal(answer.id, 77);
  assert.deepEqual(answer.answers?.map((a) => String((a as { data?: unknown }).data)).sort(), ['203.0.113.11', '203.0.113.12']);
  assert.equal(events.at(-1)!.protocol, 'TCP');
});

test('dns proxy: garbage is dropped and counted, never forwarded', async () => {
  const before = proxy.malformed;
  const { packet } = await askUdp('', Buffer.from('not dns at all, just bytes'));
  assert.equal(packet, undefined);
  assert.equal(proxy.malformed, before + 1);
});

test('dns proxy: when learning fails the client gets SERVFAIL, never an address the maps do not allow', async () => {
  failLearning = true;
  try {
    const { packet } = await askUdp('api.example.com');
    assert.equal((packet as unknown as { rcode: string }).rcode, 'SERVFAIL');
    assert.deepEqual(packet?.answers ?? [], []);
  } finally {
    failLearning = false;
  }
});
