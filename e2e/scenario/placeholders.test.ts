import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { podNet, substitute } from './placeholders.ts';

const IPS = new Map([
  ['x/a', '10.1.2.3'],
  ['z/c', '10.200.7.250'],
]);

// podNet(ip, prefix) on the edges of the prefix range.
const nets: { ip: string; prefix: number; expected: string }[] = [
  // /0 is every address (a shift by 32 would be a no-op)
  { ip: '10.1.2.3', prefix: 0, expected: '0.0.0.0/0' },
  // /4 keeps the top nibble
  { ip: '10.1.2.3', prefix: 4, expected: '0.0.0.0/4' },
  // /8 keeps the first octet
  { ip: '10.1.2.3', prefix: 8, expected: '10.0.0.0/8' },
  // /20 cuts inside an octet
  { ip: '10.200.7.250', prefix: 20, expected: '10.200.0.0/20' },
  // /24 keeps three octets
  { ip: '10.200.7.250', prefix: 24, expected: '10.200.7.0/24' },
  // /31 clears the last bit
  { ip: '10.200.7.251', prefix: 31, expected: '10.200.7.250/31' },
  // /32 is the address itself
  { ip: '10.200.7.250', prefix: 32, expected: '10.200.7.250/32' },
  // high addresses stay unsigned
  { ip: '255.255.255.255', prefix: 1, expected: '128.0.0.0/1' },
];

for (const row of nets) {
  test(`podNet ${row.ip}/${row.prefix}`, () => assert.equal(podNet(row.ip, row.prefix), row.expected));
}

test('substitute replaces in every string, deep, and leaves keys and other values alone', () => {
  const input = {
    spec: {
      ingress: [{ from: [{ ipBlock: { cidr: '${podNet:x/a/8}', except: ['${podIP:z/c}/32', 'ip ${podIP:x/a} and ${podIP:z/c}'] } }] }],
      port: 80,
      enabled: true,
      nothing: null,
    },
    '${podIP:x/a}': 'key untouched',
  };
  assert.deepEqual(substitute(input, IPS), {
    spec: {
      ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.200.7.250/32', 'ip 10.1.2.3 and 10.200.7.250'] } }] }],
      port: 80,
      enabled: true,
      nothing: null,
    },
    '${podIP:x/a}': 'key untouched',
  });
});

test('substitute replaces ${hostIP:NAME} with the external host\'s address', () => {
  const hosts = new Map([['web', '203.0.113.10']]);
  assert.deepEqual(substitute({ cidr: '${hostIP:web}/32', pod: '${podIP:x/a}' }, IPS, hosts), { cidr: '203.0.113.10/32', pod: '10.1.2.3' });
  assert.throws(() => substitute(['${hostIP:db}'], IPS, hosts), { message: 'placeholder ${hostIP:db}: unknown external host "db" (the cluster has web)' });
  assert.throws(() => substitute(['${hostIP:db}'], IPS), { message: 'placeholder ${hostIP:db}: unknown external host "db" (the cluster has none)' });
  // a pod reference is no host name
  assert.throws(() => substitute(['${hostIP:x/a}'], IPS, hosts), { message: 'placeholder ${hostIP:x/a}: unknown form, expected ${podIP:N/P}, ${podNet:N/P/L} or ${hostIP:NAME}' });
});

test('substitute does not change its input', () => {
  const input = { a: ['${podIP:x/a}'] };
  substitute(input, IPS);
  assert.deepEqual(input, { a: ['${podIP:x/a}'] });
});

// Bad placeholders and the message naming them.
const bad: { what: string; text: string; message: string }[] = [
  // a pod without an address
  { what: 'unknown pod', text: '${podIP:y/a}', message: 'placeholder ${podIP:y/a}: unknown pod "y/a"' },
  // a prefix over 32
  { what: 'prefix 33', text: '${podNet:x/a/33}', message: 'placeholder ${podNet:x/a/33}: prefix length must be 0-32' },
  // podNet without a prefix
  {
    what: 'podNet without prefix',
    text: '${podNet:x/a}',
    message: 'placeholder ${podNet:x/a}: unknown form, expected ${podIP:N/P}, ${podNet:N/P/L} or ${hostIP:NAME}',
  },
  // a negative prefix is not a form at all
  {
    what: 'negative prefix',
    text: '${podNet:x/a/-1}',
    message: 'placeholder ${podNet:x/a/-1}: unknown form, expected ${podIP:N/P}, ${podNet:N/P/L} or ${hostIP:NAME}',
  },
  // a pod reference without namespace
  { what: 'bare pod', text: '${podIP:a}', message: 'placeholder ${podIP:a}: unknown form, expected ${podIP:N/P}, ${podNet:N/P/L} or ${hostIP:NAME}' },
  // an unknown kind of placeholder
  { what: 'unknown form', text: 'x ${nodeIP:x/a}', message: 'placeholder ${nodeIP:x/a}: unknown form, expected ${podIP:N/P}, ${podNet:N/P/L} or ${hostIP:NAME}' },
  // an unterminated placeholder is not silently kept
  { what: 'unterminated', text: '${podIP:x/a', message: 'placeholder ${podIP:x/a: missing closing "}"' },
];

for (const row of bad) {
  test(`substitute rejects: ${row.what}`, () => {
    assert.throws(() => substitute({ deep: [row.text] }, IPS), { message: row.message });
  });
}

test('podNet rejects a prefix outside 0-32 and a non-IPv4 address', () => {
  assert.throws(() => podNet('10.0.0.1', 33), { message: 'prefix length 33 is not 0-32' });
  assert.throws(() => podNet('10.0.0.256', 8), { message: '"10.0.0.256" is not an IPv4 address' });
});

const toInt = (ip: string) => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);

test('property: podNet contains the address and has its host bits zeroed', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, prefix) => {
      const [net = '', length] = podNet(ip, prefix).split('/');
      assert.equal(Number(length), prefix);
      const size = 2 ** (32 - prefix);
      // Host bits zero: the network is a multiple of the block size.
      assert.equal(toInt(net) % size, 0);
      // Contains the address: it lies within [network, network + size).
      assert.ok(toInt(net) <= toInt(ip) && toInt(ip) < toInt(net) + size);
    }),
  );
});
