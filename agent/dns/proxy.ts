// The node's DNS proxy. The datapath redirects the DNS queries of pods that
// FQDN or DNS rules select to `address:port` (one port per upstream DNS
// server, so the proxy knows whom the pod asked; docs/adr/0012). For each
// query the proxy:
//   1. refuses (REFUSED, or NXDOMAIN by setting) a name the pod's DNS rules
//      do not allow, without asking the server;
//   2. forwards the rest to the upstream, on one socket per upstream with
//      its own query IDs;
//   3. on the answer, has the agent learn its names and write the kernel
//      maps (`learn`), and only then hands the answer to the pod, byte for
//      byte but for the ID: the first connection to a freshly resolved
//      address never races the policy.
// UDP and TCP alike. Every message is parsed as hostile (dns-message.ts);
// what does not parse is dropped and counted, never forwarded.
import dgram from 'node:dgram';
import net from 'node:net';
import { parseAnswer, parseQuery, rcodeName, RCODE, refusal, withId, type AnswerFacts, type Question } from './dns-message.ts';

export type DnsProtocol = 'UDP' | 'TCP';

/** One query's outcome, for flows and metrics. */
export interface DnsEvent {
  time: Date;
  client: { ip: string; port: number };
  upstream: string;
  protocol: DnsProtocol;
  name: string;
  type: string;
  verdict: 'forwarded' | 'refused' | 'failed';
  rcode: string;
  addresses: string[];
  ttl: number;
  /** From the query's arrival to the answer's release, ms (learning included). */
  latencyMs: number;
}

export interface DnsProxyOptions {
  /** The node address the datapath redirects queries to. */
  address: string;
  /** The port upstreams listen on (53; tests use others). */
  upstreamPort?: number;
  /** Whether `client` may resolve `name` through `upstream` (the pod's DNS rules). */
  allows(client: string, upstream: string, name: string, protocol: DnsProtocol): boolean;
  /** Learns an answer's names; resolves once the kernel maps allow their addresses. */
  learn(facts: AnswerFacts, client: string): Promise<void>;
  onEvent?(e: DnsEvent): void;
  /** The answer to a name the policy does not allow. Default REFUSED. */
  refuseWith?: 'REFUSED' | 'NXDOMAIN';
  /** How long a forwarded query waits for its answer. Default 5 s. */
  timeoutMs?: number;
  log?(line: string): void;
}

interface Pending {
  query: Buffer;
  client: { ip: string; port: number };
  clientId: number;
  question: Question;
  started: number;
  timer: NodeJS.Timeout;
}

/** One upstream: where its redirected queries arrive, and the socket that asks it. */
class Upstream {
  readonly ip: string;
  readonly port: number;
  listener: dgram.Socket | undefined;
  server: net.Server | undefined;
  forwarder: dgram.Socket | undefined;
  readonly pending = new Map<number, Pending>();
  nextId = Math.floor(Math.random() * 0x10000);
  readonly connections = new Set<net.Socket>();
  constructor(ip: string, port: number) {
    this.ip = ip;
    this.port = port;
  }
}

export class DnsProxy {
  readonly #o: DnsProxyOptions;
  readonly #upstreams = new Map<string, Upstream>();
  /** Messages dropped because they did not parse, or answered nothing we asked. */
  malformed = 0;

  constructor(options: DnsProxyOptions) {
    this.#o = options;
  }

  /** Listens for the upstreams' redirected queries (upstream address -> proxy port); stops listening for the others. */
  async setUpstreams(upstreams: ReadonlyMap<string, number>): Promise<void> {
    for (const [ip, u] of this.#upstreams) {
      if (upstreams.get(ip) === u.port) continue;
      await this.#close(u);
      this.#upstreams.delete(ip);
    }
    for (const [ip, port] of upstreams) {
      if (this.#upstreams.has(ip)) continue;
      const u = new Upstream(ip, port);
      this.#upstreams.set(ip, u);
      try {
        await this.#open(u);
      } catch (error) {
        await this.#close(u);
        this.#upstreams.delete(ip);
        throw error;
      }
    }
  }

  /** The proxy port of each upstream it serves. */
  ports(): Map<string, number> {
    return new Map([...this.#upstreams].map(([ip, u]) => [ip, u.listener?.address().port ?? u.port]));
  }

  async stop(): Promise<void> {
    for (const u of this.#upstreams.values()) await this.#close(u);
    this.#upstreams.clear();
  }

  async #open(u: Upstream): Promise<void> {
    const listener = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    u.listener = listener;
    listener.on('message', (msg, rinfo) => this.#onUdpQuery(u, msg, { ip: rinfo.address, port: rinfo.port }));
    listener.on('error', (e) => this.#o.log?.(`dns: udp ${this.#o.address}:${u.port}: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.bind(u.port, this.#o.address, () => (listener.off('error', reject), resolve()));
    });
    const forwarder = dgram.createSocket('udp4');
    u.forwarder = forwarder;
    forwarder.on('message', (msg, rinfo) => void this.#onUdpAnswer(u, msg, rinfo));
    forwarder.on('error', (e) => this.#o.log?.(`dns: upstream ${u.ip}: ${e.message}`));
    await new Promise<void>((resolve) => forwarder.bind(0, resolve));
    const server = net.createServer((socket) => this.#onTcpClient(u, socket));
    u.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: u.listener!.address().port, host: this.#o.address }, () => (server.off('error', reject), resolve()));
    });
  }

  async #close(u: Upstream): Promise<void> {
    for (const p of u.pending.values()) clearTimeout(p.timer);
    u.pending.clear();
    for (const c of u.connections) c.destroy();
    await Promise.all([
      new Promise<void>((r) => (u.listener ? u.listener.close(() => r()) : r())),
      new Promise<void>((r) => (u.forwarder ? u.forwarder.close(() => r()) : r())),
      new Promise<void>((r) => (u.server ? u.server.close(() => r()) : r())),
    ]).catch(() => undefined);
  }

  #refuseRcode(): number {
    return this.#o.refuseWith === 'NXDOMAIN' ? RCODE.NXDOMAIN : RCODE.REFUSED;
  }

  #event(e: Omit<DnsEvent, 'time'>): void {
    this.#o.onEvent?.({ time: new Date(), ...e });
  }

  // ---- UDP ----

  #onUdpQuery(u: Upstream, msg: Buffer, client: { ip: string; port: number }): void {
    const started = performance.now();
    const q = parseQuery(msg);
    if (!q) {
      this.malformed++;
      return;
    }
    if (!this.#o.allows(client.ip, u.ip, q.name, 'UDP')) {
      const r = refusal(msg, this.#refuseRcode());
      if (r) u.listener?.send(r, client.port, client.ip);
      this.#event({ client, upstream: u.ip, protocol: 'UDP', name: q.name, type: q.type, verdict: 'refused', rcode: rcodeName(this.#refuseRcode()), addresses: [], ttl: 0, latencyMs: performance.now() - started });
      return;
    }
    let id = u.nextId;
    for (let tries = 0; u.pending.has(id); tries++) {
      if (tries > 0xffff) return; // 65,536 queries in flight to one upstream: drop (the client retries)
      id = (id + 1) & 0xffff;
    }
    u.nextId = (id + 1 + Math.floor(Math.random() * 64)) & 0xffff;
    const timer = setTimeout(() => {
      if (u.pending.get(id)?.timer !== timer) return;
      u.pending.delete(id);
      this.#event({ client, upstream: u.ip, protocol: 'UDP', name: q.name, type: q.type, verdict: 'failed', rcode: 'TIMEOUT', addresses: [], ttl: 0, latencyMs: performance.now() - started });
    }, this.#o.timeoutMs ?? 5000);
    timer.unref();
    u.pending.set(id, { query: msg, client, clientId: q.id, question: q, started, timer });
    u.forwarder?.send(withId(msg, id), this.#o.upstreamPort ?? 53, u.ip);
  }

  async #onUdpAnswer(u: Upstream, msg: Buffer, from: dgram.RemoteInfo): Promise<void> {
    // Only the upstream's own answers to questions we asked.
    if (from.address !== u.ip || from.port !== (this.#o.upstreamPort ?? 53)) return void this.malformed++;
    const facts = parseAnswer(msg);
    const p = facts && u.pending.get(facts.id);
    if (!facts || !p || !facts.question || facts.question.name !== p.question.name || facts.question.type !== p.question.type) return void this.malformed++;
    u.pending.delete(facts.id);
    clearTimeout(p.timer);
    const reply = await this.#release(u, facts, msg, p.query, p.client, p.question, 'UDP', p.started);
    u.listener?.send(withId(reply, p.clientId), p.client.port, p.client.ip);
  }

  /** Learns the answer, then gives what the client gets: the answer, or SERVFAIL when the maps could not be written. */
  async #release(u: Upstream, facts: AnswerFacts, msg: Buffer, query: Buffer, client: { ip: string; port: number }, q: Question, protocol: DnsProtocol, started: number): Promise<Buffer> {
    try {
      if (facts.rcode === RCODE.NOERROR && facts.names.size > 0) await this.#o.learn(facts, client.ip);
    } catch (error) {
      this.#o.log?.(`dns: learning ${q.name} failed, answering SERVFAIL: ${(error as Error).message}`);
      this.#event({ client, upstream: u.ip, protocol, name: q.name, type: q.type, verdict: 'failed', rcode: 'SERVFAIL', addresses: facts.addresses, ttl: facts.ttl, latencyMs: performance.now() - started });
      return refusal(query, RCODE.SERVFAIL)!;
    }
    this.#event({ client, upstream: u.ip, protocol, name: q.name, type: q.type, verdict: 'forwarded', rcode: rcodeName(facts.rcode), addresses: facts.addresses, ttl: facts.ttl, latencyMs: performance.now() - started });
    return msg;
  }

  // ---- TCP: 2-byte length-prefixed messages, one upstream connection per client connection ----

  #onTcpClient(u: Upstream, socket: net.Socket): void {
    u.connections.add(socket);
    const client = { ip: socket.remoteAddress?.replace(/^::ffff:/, '') ?? '', port: socket.remotePort ?? 0 };
    let upstream: net.Socket | undefined;
    const asked: Array<{ q: Question; query: Buffer; started: number }> = [];
    let chain = Promise.resolve();
    const close = () => {
      u.connections.delete(socket);
      socket.destroy();
      upstream?.destroy();
    };
    socket.on('error', close);
    socket.on('close', close);
    const toUpstream = () => {
      if (upstream) return upstream;
      upstream = net.connect({ host: u.ip, port: this.#o.upstreamPort ?? 53 });
      upstream.on('error', close);
      upstream.on('close', close);
      frames(upstream, (msg) => {
        chain = chain.then(async () => {
          const facts = parseAnswer(msg);
          const asked0 = asked.shift();
          if (!facts || !asked0 || facts.question?.name !== asked0.q.name) return close();
          const reply = await this.#release(u, facts, msg, asked0.query, client, asked0.q, 'TCP', asked0.started);
          if (!socket.destroyed) socket.write(frame(reply));
        });
      }, close);
      return upstream;
    };
    frames(socket, (msg) => {
      chain = chain.then(() => {
        const started = performance.now();
        const q = parseQuery(msg);
        if (!q) {
          this.malformed++;
          return close();
        }
        if (!this.#o.allows(client.ip, u.ip, q.name, 'TCP')) {
          const r = refusal(msg, this.#refuseRcode());
          if (r) socket.write(frame(r));
          this.#event({ client, upstream: u.ip, protocol: 'TCP', name: q.name, type: q.type, verdict: 'refused', rcode: rcodeName(this.#refuseRcode()), addresses: [], ttl: 0, latencyMs: performance.now() - started });
          return;
        }
        asked.push({ q, query: Buffer.from(msg), started });
        toUpstream().write(frame(msg));
      });
    }, close);
  }
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Calls `onMessage` per length-prefixed message; a message under 12 bytes closes. */
function frames(socket: net.Socket, onMessage: (msg: Buffer) => void, onBad: () => void): void {
  let buf: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (len < 12) return onBad();
      if (buf.length < 2 + len) break;
      onMessage(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
    }
  });
}
