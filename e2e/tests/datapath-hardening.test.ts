// Issue 7 end to end, on the real programs attached to a pod's host-side veth
// between real namespaces (no cluster): a pod under deny-all in both
// directions can reach neither its node over IPv6 nor another namespace with
// a frame tagged 802.1Q VID 0 twice that carries IPv4 with a forged source;
// and under a policy, a fragmented datagram of an allowed flow passes both
// ways, and path-MTU discovery works through an ingress that allows nothing
// (the node's "fragmentation needed" reaches the pod).
//
//   pod (eth0 10.9.1.5, fe80::2)
//    └─ veth ─ node (vp 10.9.1.1, fe80::1; vq 10.9.2.1; forwarding) ─ veth ─ peer (eth0 10.9.2.5)
//
// The tagged frame is written raw on the pod's eth0 (socat's INTERFACE
// address, an AF_PACKET socket; this kernel has no VLAN devices): the node's
// receive path moves the outer tag into the skb's metadata before tc and
// strips the VID-0 tag and the inner one after it.
//
// pal_from_pod and pal_to_pod sit on vp. Each case of the first test is first run with the
// programs detached, which shows the path delivers, so that the later silence
// is the datapath's drop; then they are attached again and the pod is made an
// endpoint enforced both ways, and the drop is also read from pal_metrics
// under its reason. Every namespace (with its veths and
// processes), the bpffs mount and the loader go away after the test, also
// when it fails; names carry this run's pal-<pid>-<random> prefix.
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import {
  datapathConfig,
  DIRECTION,
  ENDPOINT_FLAG,
  endpointInfo,
  ipcacheValue,
  ipv4Key,
  loadGlobals,
  POLICY_FLAG,
  policyKey,
  policyValue,
  PROTOCOL,
  REASON,
  sumMetrics,
  u32Key,
} from '../../datapath/abi.ts';
import { Loader } from '../../datapath/loader-client.ts';
import { createNetns, deleteNetns, netnsPath, newRunId, sweepDeadRuns } from '../cluster/netns.ts';

const ENDPOINT_OBJECT = fileURLToPath(new URL('../../build/bpf/endpoint.bpf.o', import.meta.url));
const run = newRunId();
const ns = { pod: `${run}-pod`, node: `${run}-node`, peer: `${run}-peer` };
const bpffs = join(tmpdir(), `${run}-bpffs`);
const cleanups: Array<() => Promise<unknown>> = [];
let loader: Loader;
let vpIfindex = 0;
let macs = { vp: '', pod: '' };
let listener: ResultPromise | undefined;
const received: string[] = [];

const ip = (netns: string, ...args: string[]) => execa('ip', ['-n', netns, ...args]);
/** Runs a Node script inside a namespace; resolves with its stdout. */
const nodeIn = (netns: string, script: string, timeout = 5000) =>
  execa('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { timeout }).then((r) => String(r.stdout));

before(async () => {
  await sweepDeadRuns();
  cleanups.push(async () => {
    for (const name of Object.values(ns)) await deleteNetns(name);
  });
  for (const name of Object.values(ns)) await createNetns(name);

  await ip(ns.node, 'link', 'add', 'vp', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.pod);
  await ip(ns.node, 'link', 'add', 'vq', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.peer);
  await execa('ip', ['netns', 'exec', ns.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [netns, dev, addr] of [[ns.node, 'vp', '10.9.1.1/24'], [ns.node, 'vq', '10.9.2.1/24'], [ns.pod, 'eth0', '10.9.1.5/24'], [ns.peer, 'eth0', '10.9.2.5/24']] as const) {
    await ip(netns, 'addr', 'add', addr, 'dev', dev);
    await ip(netns, 'link', 'set', dev, 'up');
  }
  await ip(ns.node, '-6', 'addr', 'add', 'fe80::1/64', 'dev', 'vp', 'nodad');
  await ip(ns.pod, '-6', 'addr', 'add', 'fe80::2/64', 'dev', 'eth0', 'nodad');
  await ip(ns.pod, 'route', 'add', 'default', 'via', '10.9.1.1');
  await ip(ns.peer, 'route', 'add', 'default', 'via', '10.9.2.1');

  const vp = JSON.parse(String((await ip(ns.node, '-j', 'link', 'show', 'vp')).stdout))[0];
  const eth0 = JSON.parse(String((await ip(ns.pod, '-j', 'link', 'show', 'eth0')).stdout))[0];
  vpIfindex = vp.ifindex;
  macs = { vp: vp.address, pod: eth0.address };

  await mkdir(bpffs, { recursive: true });
  cleanups.push(() => rm(bpffs, { recursive: true, force: true }));
  await execa('mount', ['-t', 'bpf', 'bpffs', bpffs]);
  cleanups.push(() => execa('umount', [bpffs]));
  loader = await Loader.start({ netns: netnsPath(ns.node), onLog: () => {} });
  cleanups.push(() => loader.close());
  await loader.load(ENDPOINT_OBJECT, join(bpffs, 'node'), { globals: loadGlobals({ hostReachesPods: true }) });
  await loader.update('pal_config', [{ key: u32Key.encode(0), value: datapathConfig.encode({ policyRevision: 1, flags: 0 }) }]);
  await loader.attach(vpIfindex, 'pal_from_pod', 'ingress');
  await loader.attach(vpIfindex, 'pal_to_pod', 'egress');

  // The peer prints every datagram it gets on UDP 9000 with its source.
  listener = execa('ip', ['netns', 'exec', ns.peer, process.execPath, '-e', `
    const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m, r) => console.log(r.address + ' ' + m));
    s.bind(9000, () => console.log('ready'));`]);
  listener.stdout!.on('data', (chunk: Buffer) => received.push(...String(chunk).split('\n').filter(Boolean)));
  listener.catch(() => {}); // killed with its namespace
  for (let i = 0; i < 100 && !received.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(received.includes('ready'), 'the peer listens');

  // The node answers TCP on [::]:8080 (reachable over the link-local address).
  execa('ip', ['netns', 'exec', ns.node, process.execPath, '-e', `
    require('node:net').createServer((c) => c.end('pong')).listen(8080, '::');`]).catch(() => {});
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
});

/** 802.1Q VID 0 | 802.1Q VID 0 | IPv4 UDP 10.9.3.7:5000 -> 10.9.2.5:9000 (a forged source), from the pod's MAC to the node's. */
function doubleTagged(payload: string): Buffer {
  const mac = (text: string) => Buffer.from(text.replaceAll(':', ''), 'hex');
  const data = Buffer.from(payload);
  const ipv4 = Buffer.alloc(20 + 8 + data.length);
  ipv4[0] = 0x45;
  ipv4.writeUInt16BE(ipv4.length, 2);
  ipv4[8] = 64;
  ipv4[9] = 17;
  Buffer.from([10, 9, 3, 7, 10, 9, 2, 5]).copy(ipv4, 12);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ipv4.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  ipv4.writeUInt16BE(~sum & 0xffff, 10);
  ipv4.writeUInt16BE(5000, 20);
  ipv4.writeUInt16BE(9000, 22);
  ipv4.writeUInt16BE(8 + data.length, 24); // checksum 0: none, as IPv4 allows
  data.copy(ipv4, 28);
  const tags = Buffer.from([0x81, 0x00, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00, 0x08, 0x00]);
  return Buffer.concat([mac(macs.vp), mac(macs.pod), tags, ipv4]);
}

/** Writes the double-tagged frame raw on the pod's eth0; true when the peer got its datagram, forged source and all. */
async function sendDoubleTagged(payload: string): Promise<boolean> {
  await execa('ip', ['netns', 'exec', ns.pod, 'socat', '-u', 'STDIN', 'INTERFACE:eth0'], { input: doubleTagged(payload), timeout: 5000 });
  for (let i = 0; i < 40; i++) {
    if (received.includes(`10.9.3.7 ${payload}`)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Connects from the pod to the node's [fe80::1]:8080; true when the answer came back. */
async function ipv6FromPod(): Promise<boolean> {
  const out = await nodeIn(ns.pod, `
    const c = require('node:net').connect({ host: 'fe80::1%eth0', port: 8080, timeout: 3000 });
    c.on('data', (d) => { console.log(String(d)); c.destroy(); });
    c.on('timeout', () => { console.log('timeout'); c.destroy(); });
    c.on('error', (e) => console.log(e.code));`);
  return out.trim() === 'pong';
}

async function counted(reason: number): Promise<bigint> {
  const entry = (await loader.dump('pal_metrics')).find((e) => u32Key.decode(e.key) === reason);
  return entry ? sumMetrics(entry.value).packets : 0n;
}

test('a pod enforced both ways sends neither a double-tagged frame with a forged source nor IPv6 to its node', async () => {
  // Without the programs both get through: the path delivers, as issue 7 found.
  await loader.detach(vpIfindex, 'ingress');
  await loader.detach(vpIfindex, 'egress');
  assert.equal(await sendDoubleTagged('control'), true, 'without the programs the inner datagram reaches the peer with its forged source');
  assert.equal(await ipv6FromPod(), true, 'without the programs the pod reaches its node over IPv6');
  await loader.attach(vpIfindex, 'pal_from_pod', 'ingress');
  await loader.attach(vpIfindex, 'pal_to_pod', 'egress');

  // Deny-all both ways.
  await loader.update('pal_endpoints', [{
    key: u32Key.encode(vpIfindex),
    value: endpointInfo.encode({ endpointId: 1, identity: 300, flags: ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED, ingressDefaultRule: 901, egressDefaultRule: 902, ipv4: '10.9.1.5' }),
  }]);
  assert.equal(await sendDoubleTagged('attack'), false, 'the double-tagged datagram does not reach the peer');
  assert.ok((await counted(REASON.DROP_VLAN)) > 0n, 'dropped as DROP_VLAN');
  assert.equal(await ipv6FromPod(), false, 'IPv6 from the pod does not reach its node');
  assert.ok((await counted(REASON.DROP_NOT_IPV4)) > 0n, 'dropped as DROP_NOT_IPV4');
});

/** The pod as an endpoint enforced both ways, with the given pal_policy entries (endpoint 1). */
async function enforce(policy: Array<{ identity: number; direction: number; protocol: number; dport: number; ruleId: number; flags: number }>): Promise<void> {
  await loader.update('pal_endpoints', [{
    key: u32Key.encode(vpIfindex),
    value: endpointInfo.encode({ endpointId: 1, identity: 300, flags: ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED, ingressDefaultRule: 901, egressDefaultRule: 902, ipv4: '10.9.1.5' }),
  }]);
  if (policy.length > 0) {
    await loader.update('pal_policy', policy.map(({ ruleId, flags, ...key }) => ({ key: policyKey.encode({ endpointId: 1, ...key }), value: policyValue.encode({ ruleId, flags }) })));
  }
}

test('fragments of an allowed UDP flow pass both ways, and the node\'s "fragmentation needed" reaches a pod whose ingress allows nothing', async () => {
  const PEER_ID = 400;
  await loader.update('pal_ipcache4', [{ key: ipv4Key.encode('10.9.2.5'), value: ipcacheValue.encode({ identity: PEER_ID, flags: 0 }) }]);
  // Ingress: UDP 9200 from the peer, by exact port only (a later fragment has
  // none). Egress: TCP 9100 to the peer. Nothing else.
  await enforce([
    { identity: PEER_ID, direction: DIRECTION.INGRESS, protocol: 0, dport: 0, ruleId: 10, flags: POLICY_FLAG.UDP_PORTS },
    { identity: PEER_ID, direction: DIRECTION.INGRESS, protocol: PROTOCOL.UDP, dport: 9200, ruleId: 11, flags: 0 },
    { identity: PEER_ID, direction: DIRECTION.EGRESS, protocol: 0, dport: 0, ruleId: 20, flags: POLICY_FLAG.TCP_PORTS },
    { identity: PEER_ID, direction: DIRECTION.EGRESS, protocol: PROTOCOL.TCP, dport: 9100, ruleId: 21, flags: 0 },
  ]);

  // A 3000-byte datagram leaves the peer in three fragments; the pod echoes it, fragmented too.
  execa('ip', ['netns', 'exec', ns.pod, process.execPath, '-e', `
    const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(9200);`]).catch(() => {});
  const echoed = await nodeIn(ns.peer, `
    const s = require('node:dgram').createSocket('udp4');
    const send = () => s.send(Buffer.alloc(3000, 7), 9200, '10.9.1.5');
    s.on('message', (m) => { console.log(m.length); process.exit(0); });
    s.bind(0, () => { send(); setInterval(send, 300); });
    setTimeout(() => { console.log('timeout'); process.exit(0); }, 6000);`, 10000);
  assert.equal(echoed.trim(), '3000', 'the fragmented datagram and its fragmented echo both pass');

  // The peer's side of the node takes only 1280-byte packets: the pod's
  // 1500-byte TCP segments (DF) earn it an ICMP "fragmentation needed" from
  // the node, which must pass its ingress for the transfer to go on.
  await ip(ns.node, 'link', 'set', 'vq', 'mtu', '1280');
  execa('ip', ['netns', 'exec', ns.peer, process.execPath, '-e', `
    require('node:net').createServer((c) => { let n = 0; c.on('data', (d) => { n += d.length; }); c.on('end', () => c.end(String(n))); }).listen(9100);`]).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  const relatedBefore = await counted(REASON.ALLOW_RELATED);
  const sent = await nodeIn(ns.pod, `
    const c = require('node:net').connect({ host: '10.9.2.5', port: 9100 }, () => c.end(Buffer.alloc(200000, 1)));
    let answer = '';
    c.on('data', (d) => { answer += d; });
    c.on('end', () => { console.log(answer); process.exit(0); });
    c.on('error', (e) => { console.log(e.code); process.exit(0); });
    setTimeout(() => { console.log('timeout'); process.exit(0); }, 8000);`, 12000);
  assert.equal(sent.trim(), '200000', 'the transfer completes over the smaller path MTU');
  assert.ok((await counted(REASON.ALLOW_RELATED)) > relatedBefore, 'the ICMP error passed as ALLOW_RELATED');
});
