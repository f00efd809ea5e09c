// Which addresses changed hands between two syncs, and which conntrack
// entries name them: the pure half of the purge that keeps a reused address's
// new owner out of its previous owner's connections; then runs over the real
// maps of build/bpf/endpoint.bpf.o (loaded into a bpffs mounted for the test
// and removed after it), a restart included.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ct4Key, ctBudget, ctValue, DIRECTION, ipcacheValue, ipv4Key, NAT_KIND, PROTOCOL, u32Key } from '../datapath/abi.ts';
import { Loader, type MapEntry } from '../datapath/loader-client.ts';
import { scratchDatapath } from '../datapath/scratch-datapath.ts';
import type { Endpoint } from './cni/handler.ts';
import { changedAddresses, ConntrackPurge, endpointAddressesGone, endpointMarks, entriesToPurge, marksFromIpcache, ownerMarks } from './conntrack-purge.ts';


const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error('cleanup failed:', error));
});

/** A pal_ct4 entry of endpoint `addr` with `peerAddr` (the peer port tells entries apart in assertions). */
const ct = (addr: string, peerAddr: string, peerPort: number, nat: { kind: number; addr: string } = { kind: NAT_KIND.NONE, addr: '0.0.0.0' }): MapEntry => ({
  key: ct4Key.encode({ addr, peerAddr, port: 80, peerPort, protocol: PROTOCOL.TCP }),
  value: ctValue.encode({ revision: 1, ruleId: 0, lastSeen: 0, ifindex: 3, origin: DIRECTION.EGRESS, revoked: 0, closing: 0, nat: nat.kind, natAddr: nat.addr, natPort: 80, lastReport: 0, packets: 0n, bytes: 0n }),
});

const owner = (uid: string | undefined, identity: number | undefined, pod = 'x/p') => ({ pod, uid, identity });

test('an address changes hands when it leaves, changes identity, or changes owning pod even with the same identity; not when its pod gets its first identity', () => {
  const before = ownerMarks(
    new Map([
      ['10.0.0.1', owner('u-1', 300)], // unchanged
      ['10.0.0.2', owner('u-2', 300)], // leaves the ipcache
      ['10.0.0.3', owner('u-3', 300)], // same pod, new identity (relabelled)
      ['10.0.0.4', owner('u-4', 300)], // another pod of the same identity (a replica reusing the address)
      ['10.0.0.5', owner('u-5', undefined)], // its owner had no identity yet and gets one: nothing changed hands
      ['10.0.0.8', owner('u-8', undefined)], // no identity yet, and another pod holds it now
      ['10.0.0.6', owner('u-6', 300)], // its owner loses its identity number
    ]),
  );
  const after = ownerMarks(
    new Map([
      ['10.0.0.1', owner('u-1', 300)],
      ['10.0.0.3', owner('u-3', 301)],
      ['10.0.0.4', owner('u-44', 300)],
      ['10.0.0.5', owner('u-5', 302)],
      ['10.0.0.6', owner('u-6', undefined)],
      ['10.0.0.7', owner('u-7', 300)], // new: nothing of it to purge
      ['10.0.0.8', owner('u-88', 303)],
    ]),
  );
  assert.deepEqual(changedAddresses(before, after), ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.6', '10.0.0.8']);
  assert.deepEqual(changedAddresses(after, after), []);
});

test('a pod without a uid is told apart by its key', () => {
  const before = ownerMarks(new Map([['10.0.0.1', owner(undefined, 300, 'x/a')]]));
  const after = ownerMarks(new Map([['10.0.0.1', owner(undefined, 300, 'x/b')]]));
  assert.deepEqual(changedAddresses(before, after), ['10.0.0.1']);
});

test('after a restart only the pinned identities are known: an address changed hands if its identity differs or it left', () => {
  const entry = (ip: string, identity: number): MapEntry => ({ key: ipv4Key.encode(ip), value: ipcacheValue.encode({ identity, flags: 0 }) });
  const pinned = marksFromIpcache([
    entry('10.0.0.1', 300),
    entry('10.0.0.2', 300),
    entry('10.0.0.3', 300),
    entry('172.30.0.11', 1), // a node address (host): not a pod's, never compared
    entry('172.30.0.12', 6), // remote node
  ]);
  assert.deepEqual([...pinned.keys()], ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  const after = ownerMarks(new Map([['10.0.0.1', owner('u-1', 300)], ['10.0.0.2', owner('u-2', 301)]]));
  assert.deepEqual(changedAddresses(pinned, after), ['10.0.0.2', '10.0.0.3']);
});

test('a local endpoint that leaves, or whose address is wired again for another container, frees its address', () => {
  const e = (ip: string, containerId: string, ifindex: number) => ({ ip, containerId, ifName: 'eth0', hostIfName: `pal${ifindex}`, ifindex, podNamespace: 'x', podName: containerId });
  const before = endpointMarks([e('10.0.0.1', 'c1', 5), e('10.0.0.2', 'c2', 6), e('10.0.0.3', 'c3', 7)]);
  const after = endpointMarks([e('10.0.0.1', 'c1', 5), e('10.0.0.3', 'c4', 8)]);
  assert.deepEqual(endpointAddressesGone(before, after), ['10.0.0.2', '10.0.0.3']);
});

test('the entries to delete are those whose endpoint address or peer address changed hands', () => {
  const entries = [
    ct('10.1.0.10', '10.2.0.5', 1), // the peer is the reused address: deleted
    ct('10.1.0.10', '10.2.0.6', 2), // another peer: kept
    ct('10.2.0.5', '10.1.0.11', 3), // the reused address as the endpoint (its old pod's own entry): deleted
    ct('10.1.0.12', '10.1.0.13', 4), // kept
    ct('10.1.0.12', '10.96.0.1', 5, { kind: NAT_KIND.SERVICE, addr: '10.2.0.5' }), // a connection to a Service whose backend is the reused address: deleted
    ct('10.1.0.12', '10.2.0.7', 6, { kind: NAT_KIND.REVERSE, addr: '10.2.0.5' }), // only the frontend is the reused address (cannot be, but): kept
    ct('10.1.0.12', '10.0.0.1', 7, { kind: NAT_KIND.DNS, addr: '10.2.0.5' }), // a DNS query redirected to the proxy, for the reused address as its upstream: deleted
  ];
  const doomed = entriesToPurge(entries, new Set(['10.2.0.5']));
  assert.deepEqual(doomed.map((e) => ct4Key.decode(e.key).peerPort), [1, 3, 5, 7]);
  assert.deepEqual(entriesToPurge(entries, new Set()), []);
});

test('runs over the kernel maps: the first compares with the pinned ipcache, the next with the last run; local endpoints that leave take their entries', async () => {
  const datapath = await scratchDatapath('ct-purge-test');
  cleanups.push(() => datapath.dispose());
  const { loader } = datapath;
  const remaining = async () => (await loader.dump('pal_ct4')).map((e) => ct4Key.decode(e.key).peerPort).sort((a, b) => a - b);
  const log: string[] = [];
  const local: Endpoint = { containerId: 'c1', ifName: 'eth0', hostIfName: 'pal1', ifindex: 5, ip: '10.1.0.10', podNamespace: 'x', podName: 'a' };

  // What a previous agent enforced: 10.2.0.5 and 10.2.0.6 were pods of identity 300.
  await loader.update('pal_ipcache4', ['10.2.0.5', '10.2.0.6'].map((ip) => ({ key: ipv4Key.encode(ip), value: ipcacheValue.encode({ identity: 300, flags: 0 }) })));
  await loader.update('pal_ct4', [ct('10.1.0.10', '10.2.0.5', 1), ct('10.1.0.10', '10.2.0.6', 2), ct('10.1.0.10', '10.2.0.7', 3), ct('10.1.0.11', '10.2.0.6', 4)]);
  // As the datapath counts them (every entry of ct() is on device 3): 6 in the end, all written below.
  await loader.update('pal_ct_budget', [{ key: u32Key.encode(3), value: ctBudget.encode({ entries: 6 }) }, { key: u32Key.encode(0), value: ctBudget.encode({ entries: 6 }) }]);
  const budget = async () => new Map((await loader.dump('pal_ct_budget')).map((e) => [u32Key.decode(e.key), ctBudget.decode(e.value).entries]));

  // A new agent: 10.2.0.6 now has another identity (reused while the agent was down), 10.2.0.5 is unchanged.
  const purge = new ConntrackPurge();
  await purge.run(loader, new Map([['10.2.0.5', owner('u-5', 300)], ['10.2.0.6', owner('u-6', 301)]]), [local], (l) => log.push(l));
  assert.deepEqual(await remaining(), [1, 3], 'the entries naming 10.2.0.6 are gone, from every endpoint');

  // The same identity, another pod: the next run sees the uid change.
  await purge.run(loader, new Map([['10.2.0.5', owner('u-55', 300)], ['10.2.0.6', owner('u-6', 301)]]), [local], (l) => log.push(l));
  assert.deepEqual(await remaining(), [3]);

  // Nothing changed: nothing deleted. Then the local endpoint leaves: its own entries go.
  await loader.update('pal_ct4', [ct('10.1.0.10', '10.2.0.8', 5), ct('10.1.0.12', '10.2.0.8', 6)]);
  await purge.run(loader, new Map([['10.2.0.5', owner('u-55', 300)], ['10.2.0.6', owner('u-6', 301)]]), [local], (l) => log.push(l));
  assert.deepEqual(await remaining(), [3, 5, 6]);
  await purge.run(loader, new Map([['10.2.0.5', owner('u-55', 300)], ['10.2.0.6', owner('u-6', 301)]]), [], (l) => log.push(l));
  assert.deepEqual(await remaining(), [6]);
  assert.deepEqual(await budget(), new Map([[0, 1], [3, 1]]), 'deleted through pal_ct_forget: the budget counts only what is left');
  assert.equal(log.length, 3, log.join('\n'));
});

test('entries refreshed between the dump and pal_ct_forget are purged by the next pass; ones refreshed every time fail the run, which is then retried whole', async () => {
  // A stand-in for the loader: pal_ct4 in memory; pal_ct_forget skips the entries `refreshing` says were refreshed.
  const fake = (refreshing: (pass: number) => boolean) => {
    let map = [ct('10.1.0.10', '10.2.0.5', 1), ct('10.1.0.10', '10.2.0.6', 2)];
    let pass = 0;
    const loader = {
      dump: async (name: string) => (name === 'pal_ct4' ? map : []),
      testRun: async (_program: string, batch: Buffer) => {
        pass++;
        if (refreshing(pass)) return { retval: 0 };
        const keys = new Set<string>();
        for (let at = 14; at < batch.length; at += 20) keys.add(batch.subarray(at, at + 16).toString('hex'));
        const before = map.length;
        map = map.filter((e) => !keys.has(e.key.toString('hex')));
        return { retval: before - map.length };
      },
    };
    return { loader: loader as unknown as Loader, left: () => map.map((e) => ct4Key.decode(e.key).peerPort) };
  };
  const before = new Map([['10.2.0.5', owner('u-5', 300)]]);
  const gone = new Map<string, ReturnType<typeof owner>>();

  const once = fake((pass) => pass === 1);
  const purge = new ConntrackPurge();
  await purge.run(once.loader, before, [], () => {});
  await purge.run(once.loader, gone, [], () => {});
  assert.deepEqual(once.left(), [2], 'deleted on the second pass');

  const always = fake(() => true);
  const stuck = new ConntrackPurge();
  await stuck.run(always.loader, before, [], () => {});
  await assert.rejects(stuck.run(always.loader, gone, [], () => {}), /still there after 5 passes/);
  // The failed run did not advance: the next one (refreshes over) purges the same address.
  const later = fake(() => false);
  await stuck.run(later.loader, gone, [], () => {});
  assert.deepEqual(later.left(), [2]);
});
