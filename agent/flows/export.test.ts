import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Flow } from '../../lib/flow.ts';
import { FlowExport } from './export.ts';

const flow = (n: number): Flow => ({
  time: '2026-12-01T00:00:00.000000000Z', node: 'n', type: 'new', verdict: 'forwarded', reason: 'ALLOW_POLICY', direction: 'ingress',
  protocol: 'TCP', packets: 1, bytes: n, isolated: false, policies: [], source: { ip: '10.0.0.1', identity: 300 }, destination: { ip: '10.0.0.2', identity: 300 },
});

test('every flow is one JSON line; files rotate by size and only the newest N are kept', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pal-export-'));
  try {
    const file = join(dir, 'flows.jsonl');
    const lineBytes = JSON.stringify(flow(100)).length + 1;
    const out = new FlowExport({ file, maxBytes: lineBytes * 10, files: 2, log: () => undefined });
    for (let i = 0; i < 50; i++) out.add([flow(100 + i)]);
    await out.close();
    assert.deepEqual((await readdir(dir)).sort(), ['flows.jsonl', 'flows.jsonl.1', 'flows.jsonl.2']);
    const lines = (await Promise.all(['flows.jsonl.2', 'flows.jsonl.1', 'flows.jsonl'].map((f) => readFile(join(dir, f), 'utf8'))))
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as Flow).bytes);
    assert.deepEqual(lines, Array.from({ length: lines.length }, (_, i) => 150 - lines.length + i), 'the newest flows, in order');
    assert.ok(lines.length >= 20 && lines.length <= 30);
    assert.equal(out.written, 50);
    assert.equal(out.lost, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('what cannot be queued (a slow or failing disk) is counted as lost, never blocks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pal-export-'));
  try {
    const logs: string[] = [];
    const out = new FlowExport({ file: join(dir, 'missing-dir', 'flows.jsonl'), maxBytes: 1 << 20, files: 1, maxQueuedBytes: 2000, log: (l) => logs.push(l) });
    out.add(Array.from({ length: 20 }, (_, i) => flow(i)));
    await out.close();
    assert.equal(out.written, 0);
    assert.equal(out.lost, 20, 'dropped when the queue was full, or when the write failed');
    assert.ok(logs.some((l) => /export to .* failed/.test(l)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
