// Bounded calls: the signal given with callOptions really aborts the request
// (a server that accepts and never answers, as a hung API server does).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { callOptions, timeoutOptions } from './kube.ts';

test('a call with callOptions or timeoutOptions is aborted when its signal fires, on a server that never answers', async () => {
  const held: Array<() => void> = [];
  const server = createServer((_req, res) => held.push(() => res.destroy()));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as { port: number };
    const kubeconfig = new KubeConfig();
    kubeconfig.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api = kubeconfig.makeApiClient(CoordinationV1Api);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('deadline')), 200);
    const started = performance.now();
    await assert.rejects(api.readNamespacedLease({ name: 'l', namespace: 'n' }, callOptions(abort.signal)));
    const abortedMs = performance.now() - started;
    assert.ok(abortedMs < 1_000, `aborted after ${Math.round(abortedMs)} ms`);
    await assert.rejects(api.readNamespacedLease({ name: 'l', namespace: 'n' }, timeoutOptions(200)));
    assert.equal(held.length, 2, 'both requests reached the server');
  } finally {
    for (const close of held) close();
    server.close();
  }
});
