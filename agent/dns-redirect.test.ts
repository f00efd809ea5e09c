// planDnsProxy, diffUpstreams and leaseUntil (agent/dns-redirect.ts): what
// pal_dns_upstreams and pal_dns_proxy must hold, and the lease's arithmetic.
// The writer and the datapath's use of the maps: dns-redirect.kernel.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsUpstream, ipv4Key } from '../datapath/abi.ts';
import { diffUpstreams, leaseUntil, planDnsProxy } from './dns-redirect.ts';

const decoded = (plan: ReturnType<typeof planDnsProxy>) =>
  [...plan.upstreams].map(([k, v]) => [ipv4Key.decode(Buffer.from(k, 'hex')), dnsUpstream.decode(Buffer.from(v, 'hex')).proxyPort]);

test('each upstream gets its proxy port, in address order; upstreams may share a port', () => {
  const plan = planDnsProxy({ proxyAddress: '172.30.0.11', upstreams: new Map([['10.200.2.7', 5301], ['10.200.1.9', 5300], ['10.200.3.1', 5300]]) });
  assert.deepEqual(decoded(plan), [['10.200.1.9', 5300], ['10.200.2.7', 5301], ['10.200.3.1', 5300]]);
  assert.equal(plan.proxyAddress, '172.30.0.11');
  assert.deepEqual(plan.problems, []);
  // The value is the port in network order, as the datapath compares it.
  assert.equal([...plan.upstreams.values()][0], '14b40000');
});

test('upstreams that cannot be redirected are left out and reported: not IPv4, no port, the proxy itself, beyond the map', () => {
  const plan = planDnsProxy(
    {
      proxyAddress: '172.30.0.11',
      upstreams: new Map([['fd00::a', 5300], ['10.200.1.9', 0], ['10.200.1.10', 70000], ['10.200.1.11', 53.5], ['172.30.0.11', 5300], ['10.200.1.12', 5300], ['10.200.1.13', 5300]]),
    },
    1,
  );
  assert.deepEqual(decoded(plan), [['10.200.1.12', 5300]]);
  assert.equal(plan.problems.length, 6);
  assert.match(plan.problems.join('\n'), /fd00::a left out: not an IPv4/);
  assert.match(plan.problems.join('\n'), /172\.30\.0\.11 left out: it is the proxy's own address/);
  assert.match(plan.problems.join('\n'), /10\.200\.1\.13 left out: the node's upstream map is full \(1\)/);
});

test('an unusable proxy address redirects nothing', () => {
  for (const proxyAddress of ['', '0.0.0.0', 'fd00::1', 'proxy']) {
    const plan = planDnsProxy({ proxyAddress, upstreams: new Map([['10.200.1.9', 5300]]) });
    assert.equal(plan.proxyAddress, undefined);
    assert.equal(plan.upstreams.size, 0);
    assert.equal(plan.problems.length, 1);
  }
});

test('the writes between two contents: new and changed entries, then the ones that went', () => {
  const before = planDnsProxy({ proxyAddress: '172.30.0.11', upstreams: new Map([['10.200.1.9', 5300], ['10.200.1.10', 5300]]) }).upstreams;
  const after = planDnsProxy({ proxyAddress: '172.30.0.11', upstreams: new Map([['10.200.1.9', 5301], ['10.200.1.11', 5300]]) }).upstreams;
  const { updates, deletes } = diffUpstreams(after, before);
  assert.deepEqual(updates.map((u) => ipv4Key.decode(Buffer.from(u.key, 'hex'))), ['10.200.1.11', '10.200.1.9']);
  assert.deepEqual(deletes.map((k) => ipv4Key.decode(Buffer.from(k, 'hex'))), ['10.200.1.10']);
  assert.deepEqual(diffUpstreams(after, after), { updates: [], deletes: [] });
});

test('a lease is its seconds in ticks of the kernel\'s HZ, at least one, from now', () => {
  assert.equal(leaseUntil(1_000n, 5, 250), 2_250n);
  assert.equal(leaseUntil(2n ** 40n, 0.5, 1000), 2n ** 40n + 500n);
  assert.equal(leaseUntil(7n, 0.0001, 100), 8n);
  for (const seconds of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => leaseUntil(0n, seconds, 250), RangeError);
});
