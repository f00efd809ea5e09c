// The dns-first benchmark's client (dns-first.ts), run inside a pod's network
// namespace (`nsenter --net=PATH node dns-first-client.ts ...`), with
// e2e/cluster/dns-client.ts's lookup and connection as an application makes
// them (an A query over UDP from its own connected socket to the cluster's DNS
// server, so through the datapath's redirect and the node's DNS proxy):
//
//   dns-first-client.ts fresh --server IP --prefix n --domain fresh.example.com --count 1000
//                             [--concurrency 1] [--copies 1] [--port 80] [--timeout-ms 3000]
//       for each name PREFIX0.DOMAIN .. PREFIX<count-1>.DOMAIN: resolve it, and
//       at once (no sleep, no retry) open a TCP connection to the answer's
//       first address, closed as soon as it is established. `concurrency`
//       workers take the names in turn; with `copies` N, each name is looked
//       up by N lookups at once (as N applications or pods starting together
//       would), each followed by its own connection. One JSON line per lookup:
//       {i, copy, name, address?, resolveMs, connectMs?, ok, stage?, reason?}
//       (stage "resolve" or "connect" says where a failed one failed).
//   dns-first-client.ts connect --addresses A,B,... [--port 80] [--timeout-ms 2000]
//       a TCP connection to each address, all at once: {address, connectMs, ok, reason?}
//
// A connection's timeout is its own: the kernel resends an unanswered SYN
// after 1 s (its initial RTO), so the caller tells a connection made on its
// first SYN from one made on a resent SYN by connectMs.
import { parseArgs } from 'node:util';
import { connectTcp, firstAddress, queryA } from '../cluster/dns-client.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string' },
    prefix: { type: 'string', default: 'n' },
    domain: { type: 'string' },
    count: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
    copies: { type: 'string', default: '1' },
    addresses: { type: 'string' },
    port: { type: 'string', default: '80' },
    'timeout-ms': { type: 'string' },
  },
});
const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
const port = Number(values.port);
const round = (ms: number) => Math.round(ms * 1000) / 1000;

async function fresh(): Promise<void> {
  const server = values.server;
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const timeoutMs = Number(values['timeout-ms'] ?? 3000);
  if (!server || !values.domain || !(count > 0) || !(concurrency > 0) || !(timeoutMs > 0)) throw new Error('fresh needs --server, --domain, a positive --count, --concurrency and --timeout-ms');
  const copies = Number(values.copies);
  if (!(copies > 0)) throw new Error('--copies must be positive');
  const attempt = async (i: number, copy: number) => {
    const name = `${values.prefix}${i}.${values.domain}`;
    const t0 = performance.now();
    const r = await queryA(server, name, timeoutMs);
    const t1 = performance.now();
    const address = firstAddress(r);
    if (address === undefined) {
      print({ i, copy, name, resolveMs: round(t1 - t0), ok: false, stage: 'resolve', reason: 'error' in r ? r.error : `${r.rcode} (${r.addresses.length} addresses)` });
      return;
    }
    // Immediately: the answer is in, the connection starts.
    const failed = await connectTcp(address, port, timeoutMs);
    const t2 = performance.now();
    print({ i, copy, name, address, resolveMs: round(t1 - t0), connectMs: round(t2 - t1), ok: failed === undefined, ...(failed === undefined ? {} : { stage: 'connect', reason: failed }) });
  };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await Promise.all(Array.from({ length: copies }, (_, copy) => attempt(i, copy)));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function connect(): Promise<void> {
  const addresses = (values.addresses ?? '').split(',').filter(Boolean);
  const timeoutMs = Number(values['timeout-ms'] ?? 2000);
  if (addresses.length === 0 || !(timeoutMs > 0)) throw new Error('connect needs --addresses and a positive --timeout-ms');
  await Promise.all(addresses.map(async (address) => {
    const t0 = performance.now();
    const failed = await connectTcp(address, port, timeoutMs);
    print({ address, connectMs: round(performance.now() - t0), ok: failed === undefined, ...(failed === undefined ? {} : { reason: failed }) });
  }));
}

const mode = positionals[0];
const run = mode === 'fresh' ? fresh : mode === 'connect' ? connect : undefined;
if (!run) {
  process.stderr.write(`dns-first-client: unknown mode "${mode ?? ''}": fresh or connect\n`);
  process.exit(2);
}
run().catch((error: unknown) => {
  process.stderr.write(`dns-first-client: ${(error as Error).message}\n`);
  process.exit(2);
});
