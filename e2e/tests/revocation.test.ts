// Revoking access cuts established connections, and restoring it lets the
// same connections resume (README, "Enforcement semantics"). Pod A on node-1
// keeps ONE flow to pod B's echo server on node-2 (one socket, one source
// port, a message every 5 ms); a deny-all-ingress policy selecting B must cut
// it within a short bound after enforcement, in both directions (B's egress
// is not enforced), and keep it cut; deleting the policy must let the same
// socket's traffic through again. Once over UDP, once over TCP.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { LogLines } from '../bench/log-lines.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { netnsPath } from '../cluster/netns.ts';
import { NODE_BIN } from '../cluster/paths.ts';
import { startProcess, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { deletionVersion, EnforcementTracker } from '../scenario/enforcement.ts';

const NAMESPACE = 'revoke';
/** Echoes must have stopped this long after enforcement... */
const CUT_WITHIN_MS = 500;
/** ...and stay stopped at least this long after that. */
const STAYS_CUT_MS = 1_000;

// The flow driver, run in A's network namespace: `node -e DRIVER udp|tcp IP PORT`.
// One socket; every 5 ms it sends "ping SEQ SENT_AT" (a datagram, or a line
// on the TCP stream) and prints `tx SEQ SENT_AT`; every message it receives
// (datagram, or line of the echoed stream) is printed as `rx RECEIVED_AT
// MESSAGE`. Any socket error or a closed connection ends it (exit 1).
const DRIVER = String.raw`
const [proto, ip, port] = process.argv.slice(1);
const out = (line) => process.stdout.write(line + '\n');
const fail = (why) => { out('error ' + why); process.exit(1); };
const received = (message) => out('rx ' + Date.now() + ' ' + message);
let socket, send, pending = '';
if (proto === 'udp') {
  socket = require('node:dgram').createSocket('udp4');
  socket.on('message', (m) => received(m));
  socket.connect(Number(port), ip, () => start(socket.address().port));
  send = (m) => socket.send(m);
} else {
  socket = require('node:net').connect({ host: ip, port: Number(port), noDelay: true }, () => start(socket.localPort));
  socket.on('data', (d) => {
    const lines = (pending + d).split('\n');
    pending = lines.pop();
    lines.forEach(received);
  });
  socket.on('close', () => fail('connection closed'));
  send = (m) => socket.write(m + '\n');
}
socket.on('error', (e) => fail(e.message));
let seq = 0;
function start(localPort) {
  out('ready ' + localPort);
  setInterval(() => {
    const at = Date.now();
    send('ping ' + ++seq + ' ' + at);
    out('tx ' + seq + ' ' + at);
  }, 5);
}
`;

// Sent from B's network namespace: one UDP datagram from B's port to A's
// flow, as if B's echo server sent it (a raw socket, so it needs no bind and
// takes nothing from the echo server). Checksum 0: none, allowed for IPv4.
const INJECT = String.raw`
import socket, struct, sys
dst, sport, dport, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.sendto(struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data, (dst, 0))
`;

interface Echo { seq: number; sentAt: number; at: number }

/** A running flow driver and what it has printed so far. */
class Flow {
  readonly process: ManagedProcess;
  readonly localPort: number;
  readonly sent: Array<{ seq: number; at: number }> = [];
  readonly echoes: Echo[] = [];
  /** Received messages that are not echoes of ours. */
  readonly other: Array<{ at: number; message: string }> = [];
  exited = false;
  readonly #lines: LogLines;

  constructor(process: ManagedProcess, logFile: string) {
    this.process = process;
    this.localPort = Number(process.readyMatch![1]);
    this.#lines = new LogLines(logFile, 0);
    void process.exited.then(() => (this.exited = true));
  }

  poll(): this {
    for (const line of this.#lines.next()) {
      let m: RegExpExecArray | null;
      if ((m = /^tx (\d+) (\d+)$/.exec(line))) this.sent.push({ seq: Number(m[1]), at: Number(m[2]) });
      else if ((m = /^rx (\d+) ping (\d+) (\d+)$/.exec(line))) this.echoes.push({ at: Number(m[1]), seq: Number(m[2]), sentAt: Number(m[3]) });
      else if ((m = /^rx (\d+) (.*)$/.exec(line))) this.other.push({ at: Number(m[1]), message: m[2]! });
    }
    return this;
  }

  /** Resolves with the first echo received at or after `since`; rejects after timeoutMs. */
  async echoSince(since: number, timeoutMs: number): Promise<Echo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const echo = this.poll().echoes.find((e) => e.at >= since);
      if (echo) return echo;
      assert.ok(!this.exited, `the flow driver ended: ${this.process.logTail(3)}`);
      if (Date.now() > deadline) throw new Error(`no echo within ${timeoutMs} ms (${this.sent.length} sent, ${this.echoes.length} echoes in all)`);
      await sleep(10);
    }
  }
}

let cluster: Cluster;
let a: SimPod; // node-1
let b: SimPod; // node-2
let networking: NetworkingV1Api;
const tracker = new EnforcementTracker();
let flow: Flow | undefined;
let policy: V1NetworkPolicy | undefined; // while it exists

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  tracker.note('Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
  [a, b] = (await startPods(cluster, ['a', 'b'].map((name) => ({ namespace: NAMESPACE, name, labels: { pod: name } })))) as [SimPod, SimPod];
  assert.notEqual(a.node, b.node);
  for (const pod of [a, b]) tracker.note('Pod', pod.resourceVersion);
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 30_000);
});

afterEach(async () => {
  await flow?.process.stop();
  flow = undefined;
  if (policy) await removeDenyPolicy();
});

after(async () => {
  await flow?.process.stop();
  await cluster?.stop();
});

async function enforced(): Promise<number> {
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
  return Date.now();
}

/** Denies all ingress to B; returns when every node enforces it. */
async function applyDenyPolicy(): Promise<number> {
  policy = await networking.createNamespacedNetworkPolicy({
    namespace: NAMESPACE,
    body: { metadata: { name: 'deny-b' }, spec: { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] } },
  });
  tracker.note('NetworkPolicy', policy.metadata?.resourceVersion);
  return enforced();
}

async function removeDenyPolicy(): Promise<number> {
  const known = policy!;
  const rv = await deletionVersion(cluster.kubeconfig, `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/networkpolicies`, known, () =>
    networking.deleteNamespacedNetworkPolicy({ namespace: NAMESPACE, name: known.metadata!.name! }),
  );
  policy = undefined;
  tracker.note('NetworkPolicy', rv);
  return enforced();
}

async function startFlow(protocol: 'udp' | 'tcp', port: number): Promise<Flow> {
  const logFile = `${cluster.runDir}/flow-${protocol}.log`;
  const process = await startProcess({
    name: `${protocol} flow a -> b`,
    command: NODE_BIN,
    args: ['-e', DRIVER, protocol, b.ip, String(port)],
    netns: a.netns,
    logFile,
    readyLine: /^ready (\d+)$/,
    readyTimeoutMs: 10_000,
  });
  return (flow = new Flow(process, logFile));
}

async function injectFromB(dport: number, data: string): Promise<void> {
  await execa('nsenter', [`--net=${netnsPath(b.netns)}`, 'python3', '-c', INJECT, a.ip, '81', String(dport), data]);
}

/**
 * Asserts the cut: no message sent from CUT_WITHIN_MS after enforcement on
 * was echoed before `restoring` (when the policy's deletion began), though
 * the driver went on sending through the STAYS_CUT_MS after that.
 */
function assertCut(f: Flow, enforcedAt: number, restoring: number): void {
  f.poll();
  const from = enforcedAt + CUT_WITHIN_MS;
  const leaked = f.echoes.filter((e) => e.sentAt > from && e.at < restoring);
  assert.equal(leaked.length, 0, `${leaked.length} messages sent more than ${CUT_WITHIN_MS} ms after enforcement were echoed while the policy was in force (the first sent ${leaked[0]?.sentAt! - enforcedAt} ms after it)`);
  const sentInWindow = f.sent.filter((s) => s.at > from && s.at <= from + STAYS_CUT_MS).length;
  assert.ok(sentInWindow >= 50, `the driver sent only ${sentInWindow} messages in the ${STAYS_CUT_MS} ms window`);
  assert.ok(!f.exited, `the flow driver ended: ${f.process.logTail(3)}`);
}

test('a long-lived UDP flow is cut both ways by a deny policy and resumes, same 5-tuple, when it is deleted', async () => {
  const f = await startFlow('udp', 81);
  await f.echoSince(0, 5_000);
  // B -> A on the flow's 5-tuple gets through with no policy (so the same probe under the policy means something).
  await injectFromB(f.localPort, 'from-b before');
  await waitUntil(() => f.poll().other.some((o) => o.message === 'from-b before'), 2_000, 'a datagram from B reaches A with no policy');
  await f.echoSince(Date.now(), 1_000); // echoes flow right before the write

  const enforcedAt = await applyDenyPolicy();
  // B's egress is not enforced, but B -> A on the revoked flow must be cut too, and must not reopen it.
  await injectFromB(f.localPort, 'from-b during');
  await sleep(enforcedAt + CUT_WITHIN_MS + STAYS_CUT_MS + 100 - Date.now());
  const restoring = Date.now();
  assertCut(f, enforcedAt, restoring);
  assert.deepEqual(f.poll().other.filter((o) => o.message === 'from-b during'), [], 'a datagram from B reached A on the revoked flow');

  const restoredAt = await removeDenyPolicy();
  const echo = await f.echoSince(restoredAt, 500);
  assert.ok(echo.sentAt >= restoring, 'the echo is of a datagram sent after the cut');
  assert.deepEqual(f.other.filter((o) => o.message === 'from-b during'), [], 'the datagram dropped during the cut stays dropped');
});

test('an established TCP connection is cut by a deny policy and resumes when it is deleted', async (t) => {
  const f = await startFlow('tcp', 80);
  await f.echoSince(0, 5_000);
  await f.echoSince(Date.now(), 1_000);

  const enforcedAt = await applyDenyPolicy();
  await sleep(enforcedAt + CUT_WITHIN_MS + STAYS_CUT_MS + 100 - Date.now());
  const restoring = Date.now();
  assertCut(f, enforcedAt, restoring);

  // Retransmission backs off exponentially while cut, so the first one after the restore may take a while.
  const restoredAt = await removeDenyPolicy();
  const echo = await f.echoSince(restoredAt, 8_000);
  t.diagnostic(`echoes resumed ${echo.at - restoredAt} ms after the restore was enforced`);
  // The retransmission comes back in slow start, oldest data first: the first
  // segments may hold only what was sent in the moments before the cut took
  // hold, so wait for the messages sent during the cut rather than poll once.
  const firstSentDuringCut = f.sent.find((s) => s.at >= enforcedAt + CUT_WITHIN_MS)!.seq;
  await waitUntil(() => f.poll().echoes.some((e) => e.seq > firstSentDuringCut), 8_000, 'messages sent during the cut were echoed after it');
  // The same connection, with nothing lost: the echoes are exactly messages 1..n, in order.
  const seqs = f.poll().echoes.map((e) => e.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
  assert.ok(seqs.at(-1)! > firstSentDuringCut, 'messages sent during the cut were echoed after it');
});

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}
