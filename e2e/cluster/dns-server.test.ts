import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsmasqArgs } from './dns-server.ts';

test('dnsmasq serves exactly the records: one host record per address with its TTL, NXDOMAIN for the rest, nothing cached or read', () => {
  const args = dnsmasqArgs([
    { name: 'api.example.com', addresses: ['203.0.113.10'], ttl: 30 },
    { name: 'cdn.example.com', addresses: ['203.0.113.10', '198.51.100.20'], ttl: 2 },
  ]);
  for (const flag of ['--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--cache-size=0', '--no-negcache', '--address=/#/', '--keep-in-foreground']) {
    assert.ok(args.includes(flag), flag);
  }
  assert.deepEqual(args.filter((a) => a.startsWith('--host-record=')), [
    '--host-record=api.example.com,203.0.113.10,30',
    '--host-record=cdn.example.com,203.0.113.10,2',
    '--host-record=cdn.example.com,198.51.100.20,2',
  ]);
  assert.deepEqual(dnsmasqArgs([]).filter((a) => a.startsWith('--host-record=')), []);
  assert.throws(() => dnsmasqArgs([{ name: 'a.example.com', addresses: ['192.0.2.1'], ttl: 1.5 }]), /TTL 1.5/);
});
