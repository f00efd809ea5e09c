// What the user sees of flows: aligned columns, pods by name, the compact
// line, and json as the documented record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { denied, flow } from './fixtures.ts';
import { alignTable, compactLine, flowPrinter, formatFlows, StreamingTable } from './format.ts';

test('the table aligns every column under its header, with no trailing blanks', () => {
  const out = formatFlows([
    flow(),
    denied({ time: '2026-12-01T03:38:41.5Z', node: 'a-much-longer-node-name' }),
    flow({ source: { ip: '192.0.2.7', port: 5555, identity: 2, entity: 'world' }, policies: [], isolated: false, rule: undefined, reason: 'PASS_UNSELECTED' }),
  ], 'table');
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^TIME +NODE +VERDICT +DIR +SOURCE +DESTINATION +PROTO +REASON +POLICIES$/);
  // every column starts at the same offset on every line
  for (const header of ['NODE', 'VERDICT', 'DIR', 'SOURCE', 'DESTINATION', 'PROTO', 'REASON', 'POLICIES']) {
    const at = lines[0]!.indexOf(header);
    for (const line of lines.slice(1)) assert.match(line.slice(at - 2, at), /^  $/, `${header} in ${line}`);
  }
  assert.ok(lines.every((l) => l === l.trimEnd()));
  // pods by ns/name with ports, others by address; policies named; default deny said
  assert.match(lines[1]!, /^03:38:40\.123 +node-2 +forwarded +ingress +shop\/web:40312 +db\/pg:80 +TCP +ALLOW_POLICY +NetworkPolicy db\/allow-shop$/);
  assert.match(lines[2]!, /^03:38:41\.500 +a-much-longer-node-name +dropped +ingress +db\/other:51000 +db\/pg:81 +TCP +DROP_POLICY +NetworkPolicy db\/allow-shop \(default deny\)$/);
  assert.match(lines[3]!, / 192\.0\.2\.7:5555 +db\/pg:80 .* PASS_UNSELECTED +-$/);
});

test('an empty answer prints no table header', () => {
  assert.equal(formatFlows([], 'table'), '');
});

test('the verdict column tells ends, updates and summarized drops from new connections', () => {
  const cells = (f: ReturnType<typeof flow>) => formatFlows([f], 'table').split('\n')[1]!;
  assert.match(cells(flow({ type: 'end' })), / forwarded \(end\) /);
  assert.match(cells(flow({ type: 'update' })), / forwarded \(update\) /);
  assert.match(cells(denied({ type: 'drop-summary', packets: 37 })), / dropped x37 /);
});

test('compact: one line per flow, with the event type, a Service frontend and the drop count', () => {
  assert.equal(compactLine(flow()), '03:38:40.123 node-2 new forwarded ingress shop/web:40312 -> db/pg:80 TCP ALLOW_POLICY [NetworkPolicy db/allow-shop]\n');
  assert.equal(
    compactLine(denied({ type: 'drop-summary', packets: 12, direction: 'egress', service: { ip: '10.96.0.10', port: 81 } })),
    '03:38:40.123 node-2 drop-summary dropped x12 egress db/other:51000 -> db/pg:81 via 10.96.0.10:81 TCP DROP_POLICY [NetworkPolicy db/allow-shop] default-deny\n',
  );
});

test('json: one Flow record per line, every field as received', () => {
  const f = flow({ service: { ip: '10.96.0.1', port: 80 } });
  const out = formatFlows([f, denied()], 'json');
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.deepEqual(JSON.parse(lines[0]!), f);
  assert.deepEqual(JSON.parse(lines[1]!), denied());
});

test('a followed table widens a column for good when a cell needs it', () => {
  const t = new StreamingTable(['A', 'B'], [3, 1]);
  assert.equal(t.headerLine(), 'A    B\n');
  assert.equal(t.row(['x', 'y']), 'x    y\n');
  assert.equal(t.row(['wider', 'y']), 'wider  y\n');
  assert.equal(t.row(['x', 'y']), 'x      y\n');
});

test('a followed flow table prints its header once, then rows that line up', () => {
  const p = flowPrinter('table');
  const header = p.header();
  const row = p.flow(flow());
  assert.equal(row.indexOf('forwarded'), header.indexOf('VERDICT'));
  assert.equal(row.indexOf('db/pg:80'), header.indexOf('DESTINATION'));
});

test('alignTable: ragged last column, header included', () => {
  assert.equal(alignTable([['NAME', 'X'], ['a-long-name', 'value that is long'], ['b', '']]), 'NAME         X\na-long-name  value that is long\nb\n');
});
