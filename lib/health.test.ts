import assert from 'node:assert/strict';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { serveHealth } from './health.ts';
import { parseListen } from './listen.ts';

test('/healthz and /readyz answer 200, or 503 with why; anything else 404', async () => {
  let ready: string | undefined = 'leading, starting the controllers';
  const server = await serveHealth({ host: '127.0.0.1', port: 0 }, { live: () => undefined, ready: () => ready });
  const ask = (path: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
    }).on('error', reject);
  });
  try {
    assert.deepEqual(await ask('/healthz'), { status: 200, text: 'ok\n' });
    assert.deepEqual(await ask('/readyz'), { status: 503, text: 'leading, starting the controllers\n' });
    ready = undefined;
    assert.deepEqual(await ask('/readyz'), { status: 200, text: 'ok\n' });
    assert.equal((await ask('/metrics')).status, 404);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('parseListen: host:port, :port for every address, [v6]:port; anything else is refused by name', () => {
  assert.deepEqual(parseListen(':9966'), { host: '0.0.0.0', port: 9966 });
  assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
  assert.throws(() => parseListen('nope'), /not host:port: "nope"/);
  assert.throws(() => parseListen('a:70000'), /not host:port/);
});
