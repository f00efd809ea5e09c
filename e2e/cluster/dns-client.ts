// A DNS client that runs inside a pod's (or an external host's) network
// namespace, started there with `nsenter --net=PATH node dns-client.ts ...`
// (resolve.ts does that), and resolves as an application does: an A query
// over UDP from a connected socket of its own to the cluster's DNS server on
// port 53, so the query takes the pod's own path through the datapath (and
// its node's DNS proxy, when the pod's policy has FQDN or DNS rules).
//
//   dns-client.ts resolve --server IP [--timeout-ms N] NAME...
//       one JSON line per name, in order: {name, rcode, addresses, ttl}
//       (addresses: the answer's A records in their order, CNAMEs followed)
//       or {name, error} when no answer came back ("timeout", an errno name)
//   dns-client.ts stream --server IP --names A,B,... [--per-second 20] [--seconds 15] [--port 80] [--timeout-ms 1000]
//       prints {start} (the wall clock, ms), then starts, every 1/per-second s,
//       one lookup of the next name (in turn)
//       followed by a TCP connection to the answer's first address on
//       --port; one JSON line per attempt when it has finished:
//       {t, name, ok, stage?, reason?, address?, ms} where t is when the
//       attempt started (ms since the stream started), stage "resolve" or
//       "connect" says where a failed one failed; then {done: true}.
//   dns-client.ts hold --server IP --names NAME [--seconds 15] [--port 80] [--interval-ms 500]
//       resolves NAME, opens one TCP connection to its first address and
//       sends a byte every --interval-ms (the hosts echo it): {start, address},
//       then one line per byte {t, ok, rtt?}, ok false when its echo had not
//       come back by the next byte; then {done: true}.
//
// The query is resent every 250 ms until the timeout (datagrams may be
// lost); the first answer with the query's ID and question counts.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';

export type Resolution =
  | { name: string; rcode: string; addresses: string[]; ttl: number | undefined }
  | { name: string; error: string; port?: number };

const RESEND_MS = 250;
const RCODES: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };

/** One A query for `name` to `server`:53 over UDP from a connected socket; never rejects. */
export function queryA(server: string, name: string, timeoutMs: number): Promise<Resolution> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const id = randomInt(0, 65536);
    const query = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', class: 'IN', name }] });
    let resend: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (result: Resolution) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearInterval(resend);
      socket.close();
      resolve(result);
    };
    // A lookup that fails says from which port it asked (to find its packets in logs and flows).
    const port = () => {
      try {
        return socket.address().port;
      } catch {
        return undefined;
      }
    };
    const deadline = setTimeout(() => finish({ name, error: 'timeout', port: port() }), timeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // An ICMP error on the connected socket (ECONNREFUSED: nothing listens on 53) ends the query, as for an application.
      finish({ name, error: error.code ?? error.message, port: port() });
    });
    socket.on('message', (message) => {
      let answer: dnsPacket.Packet;
      try {
        answer = dnsPacket.decode(message);
      } catch {
        return; // not a DNS message: keep waiting, as a resolver does
      }
      const question = answer.questions?.[0];
      if (answer.type !== 'response' || answer.id !== id || question?.name.toLowerCase() !== name.toLowerCase().replace(/\.$/, '')) return;
      const records = (answer.answers ?? []).filter((a): a is dnsPacket.StringAnswer => a.type === 'A');
      finish({ name, rcode: RCODES[(answer.flags ?? 0) & 0xf] ?? `RCODE${(answer.flags ?? 0) & 0xf}`, addresses: records.map((a) => a.data), ttl: records[0]?.ttl });
    });
    socket.connect(53, server, () => {
      const send = () => socket.send(query, (error) => error && finish({ name, error: (error as NodeJS.ErrnoException).code ?? error.message }));
      send();
      resend = setInterval(send, RESEND_MS);
    });
  });
}

/** The address to connect to: the answer's first A record, when the answer is a NOERROR with one. */
export function firstAddress(r: Resolution): string | undefined {
  return 'rcode' in r && r.rcode === 'NOERROR' ? r.addresses[0] : undefined;
}

/** A TCP connection to address:port, closed as soon as it is established; resolves to undefined or the reason it failed. */
export function connectTcp(address: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code ?? error.message);
    });
  });
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      'timeout-ms': { type: 'string', default: '1000' },
      names: { type: 'string' },
      'per-second': { type: 'string', default: '20' },
      seconds: { type: 'string', default: '15' },
      port: { type: 'string', default: '80' },
      'interval-ms': { type: 'string', default: '500' },
    },
  });
  const [mode, ...names] = positionals;
  const server = values.server;
  const timeoutMs = Number(values['timeout-ms']);
  if (!server || !(timeoutMs > 0)) throw new Error('--server IP is required, and --timeout-ms must be positive');
  const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
  if (mode === 'resolve') {
    for (const r of await Promise.all(names.map((name) => queryA(server, name, timeoutMs)))) print(r);
    return;
  }
  if (mode === 'stream') {
    const list = (values.names ?? '').split(',').filter(Boolean);
    const perSecond = Number(values['per-second']);
    const seconds = Number(values.seconds);
    const port = Number(values.port);
    if (list.length === 0 || !(perSecond > 0) || !(seconds > 0)) throw new Error('stream needs --names, a positive --per-second and --seconds');
    const start = performance.now();
    print({ start: Date.now() });
    const attempts: Array<Promise<void>> = [];
    const total = Math.round(perSecond * seconds);
    for (let i = 0; i < total; i++) {
      // Paced from the start, so a slow attempt delays none of the next.
      const due = start + (i * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const name = list[i % list.length]!;
      const t = Math.round(performance.now() - start);
      attempts.push((async () => {
        const began = performance.now();
        const r = await queryA(server, name, timeoutMs);
        const address = firstAddress(r);
        const ms = () => Math.round(performance.now() - began);
        if (address === undefined) {
          print({ t, name, ok: false, stage: 'resolve', reason: 'error' in r ? r.error : r.rcode, ...('port' in r ? { port: r.port } : {}), ms: ms() });
          return;
        }
        const failed = await connectTcp(address, port, timeoutMs);
        print(failed === undefined ? { t, name, ok: true, address, ms: ms() } : { t, name, ok: false, stage: 'connect', reason: failed, address, ms: ms() });
      })());
    }
    await Promise.all(attempts);
    print({ done: true });
    return;
  }
  if (mode === 'hold') {
    const name = values.names ?? '';
    const r = await queryA(server, name, timeoutMs);
    const address = firstAddress(r);
    if (address === undefined) throw new Error(`${name} did not resolve: ${JSON.stringify(r)}`);
    const start = Date.now();
    print({ start, address });
    const socket = net.connect({ host: address, port: Number(values.port) });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    let pending: number | undefined;
    socket.on('data', () => {
      if (pending !== undefined) print({ t: pending - start, ok: true, rtt: Date.now() - pending });
      pending = undefined;
    });
    socket.on('error', () => undefined); // a cut connection shows as echoes that never come
    const interval = Number(values['interval-ms']);
    while (Date.now() - start < Number(values.seconds) * 1000) {
      if (pending !== undefined) print({ t: pending - start, ok: false });
      pending = Date.now();
      socket.write('x');
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
    socket.destroy();
    print({ done: true });
    return;
  }
  throw new Error(`unknown mode "${mode ?? ''}": resolve, stream or hold`);
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`dns-client: ${(error as Error).message}\n`);
    process.exit(2);
  });
}
