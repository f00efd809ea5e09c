import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStartingHandler } from './handler.ts';

const config = JSON.stringify({ cniVersion: '1.1.0', name: 'palisade', type: 'palisade-cni' });
const starting = createStartingHandler(() => 'cannot read Node n1: connect ECONNREFUSED');
const reply = async (env: Record<string, string>) => {
  const r = await starting({ env, stdin: config });
  return { exitCode: r.exitCode, body: r.stdout === '' ? undefined : (JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string }) };
};

// Each row: a command sent while the agent starts, and what it must hear.
const rows: Array<{ why: string; env: Record<string, string>; code: number | undefined; msg?: RegExp }> = [
  { why: 'STATUS: not ready, "plugin not available"', env: { CNI_COMMAND: 'STATUS' }, code: 50, msg: /not ready/ },
  { why: 'ADD: try again later', env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0' }, code: 11, msg: /starting/ },
  { why: 'DEL: try again later (the address is released once the agent can)', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }, code: 11 },
  { why: 'bad input is still bad input, not try-again-later', env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-x', CNI_NETNS: '/p', CNI_IFNAME: 'eth0' }, code: 4 },
  { why: 'VERSION needs nothing from the API server', env: { CNI_COMMAND: 'VERSION' }, code: undefined },
];
for (const row of rows) {
  test(`while the agent starts, ${row.why}`, async () => {
    const { exitCode, body } = await reply(row.env);
    assert.equal(body?.code, row.code);
    assert.equal(exitCode, row.code === undefined ? 0 : 1);
    if (row.msg) assert.match(body!.msg!, row.msg);
    if (row.code === 50) assert.match(body!.details!, /cannot read Node n1/, 'STATUS says what the agent waits for');
  });
}
