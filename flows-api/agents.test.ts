// The flow API reaches every agent at its node address and verifies it by the
// CA; with --agent-server-name it checks one name every agent's certificate
// holds (the Helm chart issues one certificate to all agents) instead of the
// address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Agents } from './agents.ts';

async function pki(dir: string): Promise<{ ca: Buffer; cert: Buffer; key: Buffer }> {
  const f = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc'];
  await execa('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=test-ca', '-days', '1']);
  await execa('openssl', ['req', ...ec, '-keyout', f('tls.key'), '-out', f('tls.csr'), '-subj', '/CN=palisade-agent']);
  await writeFile(f('ext'), 'subjectAltName=DNS:palisade-agent\nextendedKeyUsage=serverAuth\n');
  await execa('openssl', ['x509', '-req', '-in', f('tls.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-out', f('tls.crt'), '-days', '1', '-extfile', f('ext')]);
  return { ca: await readFile(f('ca.crt')), cert: await readFile(f('tls.crt')), key: await readFile(f('tls.key')) };
}

test('an agent certificate naming palisade-agent (no IP SAN) is accepted with serverName, refused without', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'agents-test-'));
  const { ca, cert, key } = await pki(dir);
  const server = createServer({ cert, key }, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const targets = async () => [{ node: 'n1', ip: '127.0.0.1' }];
    const named = await new Agents({ ca, token: 't', port, serverName: 'palisade-agent', targets }).statuses();
    assert.deepEqual(named, [{ node: 'n1', reachable: true, status: { ok: true } }]);
    const [byIp] = await new Agents({ ca, token: 't', port, targets }).statuses();
    assert.equal(byIp!.reachable, false);
    assert.match(byIp!.error!, /IP: 127\.0\.0\.1 is not in the cert's list/);
    const [wrongName] = await new Agents({ ca, token: 't', port, serverName: 'someone-else', targets }).statuses();
    assert.equal(wrongName!.reachable, false);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
