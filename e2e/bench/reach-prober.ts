// A 1 kHz reachability prober for the apply-latency benchmark, run inside a
// source pod's network namespace (startProcess with `netns`):
//
//   node reach-prober.ts tcp|udp IP PORT [INTERVAL_MS] [TIMEOUT_MS]
//
// Every INTERVAL_MS it makes one attempt to reach IP:PORT (a pod's echo
// server):
//   tcp  a new non-blocking connection (a new source port, so every attempt
//        is a NEW connection for the policy: its SYN is always decided by
//        policy); `ok` when it is established within TIMEOUT_MS, which is
//        then reset at once (no TIME_WAIT is left behind);
//   udp  one datagram with a sequence number, always from the SAME socket
//        (one long-lived flow, one 5-tuple); `ok` when its echo comes back
//        within TIMEOUT_MS.
// Anything else is `fail`. Attempts are judged in order, and every change of
// verdict is printed as
//
//   change VERDICT SENT_AT_MS SEQ PREVIOUS_SENT_AT_MS
//
// SENT_AT_MS is the wall-clock time (ms since the epoch, fractional, the same
// clock as Date.now()) at which the first attempt with the new verdict was
// made; its packet crossed the datapath right after. The datapath changed
// between PREVIOUS_SENT_AT_MS (the attempt before it; 0 if none) and
// SENT_AT_MS: the resolution is the attempt interval.
//
// A stalled prober (descheduled on a busy machine) must not mistake answers
// still queued in its sockets for missing ones: attempts are judged only
// after the event loop has polled its sockets (setImmediate after each
// attempt), and a missing answer counts as `fail` only once the loop has run
// without a stall for STALL_DRAIN_MS, enough to read what queued up meanwhile.
// On SIGTERM it prints `summary {...}` (attempts, gap percentiles, late
// answers, connection errors) and exits.
import dgram from 'node:dgram';
import net from 'node:net';

const [protocol, ip, portArg, intervalArg, timeoutArg] = process.argv.slice(2);
if ((protocol !== 'tcp' && protocol !== 'udp') || !ip || !portArg) {
  console.error('usage: reach-prober.ts tcp|udp IP PORT [INTERVAL_MS] [TIMEOUT_MS]');
  process.exit(2);
}
const port = Number(portArg);
const intervalMs = Number(intervalArg ?? 1);
const timeoutMs = Number(timeoutArg ?? 50);
/** A gap between attempts longer than this is a stall of the prober itself. */
const STALL_MS = 5;
const STALL_DRAIN_MS = 10;

const wallNow = () => performance.timeOrigin + performance.now();

interface Attempt {
  seq: number;
  sentAt: number;
  answered: boolean;
  socket?: net.Socket;
}

// Attempts not yet judged, oldest first (a FIFO with a moving head).
const pending: Attempt[] = [];
let head = 0;
const bySeq = new Map<number, Attempt>();
let seq = 0;
let verdict: 'ok' | 'fail' | undefined;
let previousSentAt = 0;
let late = 0;
let errors = 0;
let lastSendAt: number | undefined;
let liveSince = 0;
// Attempt gaps in 10 µs buckets up to 100 ms (for the resolution baseline).
const gapBuckets = new Uint32Array(10_001);
let gaps = 0;
const out: string[] = [];

const udp = protocol === 'udp' ? dgram.createSocket('udp4') : undefined;
udp?.on('message', (msg) => {
  if (msg.length < 8) return;
  const attempt = bySeq.get(Number(msg.readBigUInt64BE(0)));
  if (attempt) attempt.answered = true;
  else late++;
});
udp?.on('error', (error) => {
  console.error(`reach-prober: ${error.message}`);
  process.exit(1);
});

function attemptTcp(attempt: Attempt): void {
  const socket = net.connect({ host: ip!, port });
  attempt.socket = socket;
  socket.on('connect', () => {
    if (bySeq.has(attempt.seq)) attempt.answered = true;
    else late++;
    socket.resetAndDestroy();
  });
  // A refused or reset connection is a failed attempt (policy only ever drops).
  socket.on('error', () => errors++);
}

function judge(now: number): void {
  while (head < pending.length) {
    const attempt = pending[head]!;
    let v: 'ok' | 'fail';
    if (attempt.answered) v = 'ok';
    else if (now - attempt.sentAt > timeoutMs && now - liveSince > STALL_DRAIN_MS) v = 'fail';
    else break;
    head++;
    bySeq.delete(attempt.seq);
    if (v === 'fail') attempt.socket?.destroy();
    if (v !== verdict) {
      verdict = v;
      out.push(`change ${v} ${attempt.sentAt.toFixed(3)} ${attempt.seq} ${previousSentAt.toFixed(3)}\n`);
    }
    previousSentAt = attempt.sentAt;
  }
  if (head > 4096) {
    pending.splice(0, head);
    head = 0;
  }
  if (out.length > 0) {
    process.stdout.write(out.join(''));
    out.length = 0;
  }
}

function tick(): void {
  const now = wallNow();
  if (lastSendAt !== undefined) {
    if (now - lastSendAt > STALL_MS) liveSince = now;
    gapBuckets[Math.min(gapBuckets.length - 1, Math.round((now - lastSendAt) * 100))]!++;
    gaps++;
  }
  lastSendAt = now;
  const attempt: Attempt = { seq: ++seq, sentAt: now, answered: false };
  pending.push(attempt);
  bySeq.set(attempt.seq, attempt);
  if (udp) {
    const buf = Buffer.alloc(16);
    buf.writeBigUInt64BE(BigInt(attempt.seq), 0);
    udp.send(buf, port, ip);
  } else {
    attemptTcp(attempt);
  }
  // After the poll phase has read what arrived meanwhile.
  setImmediate(() => judge(wallNow()));
}

function gapPercentile(p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * gaps));
  let seen = 0;
  for (let i = 0; i < gapBuckets.length; i++) {
    seen += gapBuckets[i]!;
    if (seen >= rank) return i / 100;
  }
  return NaN;
}

function start(): void {
  setInterval(tick, intervalMs);
  process.stdout.write('ready\n');
}
if (udp) udp.bind(0, start);
else start();

process.on('SIGTERM', () => {
  const summary = { attempts: seq, gapP50Ms: gapPercentile(50), gapP99Ms: gapPercentile(99), gapMaxMs: gapPercentile(100), late, errors };
  process.stdout.write(`summary ${JSON.stringify(summary)}\n`);
  process.exit(0);
});
