// The committed CRDs of Palisade's policy kinds are exactly what the
// generator makes of the zod schemas (run `npm run crds` after changing
// palisade-policy.ts), in crds/ and in the chart's copy; and what they say is
// structural, as the API server requires.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { palisadePolicyCrdFiles } from './palisade-crds.ts';

const ROOT = join(import.meta.dirname, '..');

test('crds/ and helm/palisade/files/crds/ hold the generator\'s output (npm run crds)', async () => {
  const files = palisadePolicyCrdFiles();
  assert.deepEqual(files.map((f) => f.file), ['palisadenetworkpolicies.yaml', 'palisadeclusternetworkpolicies.yaml']);
  for (const { file, text } of files) {
    for (const dir of ['crds', 'helm/palisade/files/crds']) {
      const committed = await readFile(join(ROOT, dir, file), 'utf8');
      assert.ok(committed === text, `${dir}/${file} differs from what policy/palisade-policy.ts generates: run npm run crds`);
    }
  }
});

/** Every schema node, with its path. */
function* nodes(schema: Record<string, any>, path = '$'): Generator<[string, Record<string, any>]> {
  yield [path, schema];
  for (const [k, v] of Object.entries(schema.properties ?? {})) yield* nodes(v as Record<string, any>, `${path}.${k}`);
  if (schema.items) yield* nodes(schema.items, `${path}[]`);
  if (typeof schema.additionalProperties === 'object') yield* nodes(schema.additionalProperties, `${path}{}`);
}

test('the CRDs: both scopes, short names, status subresource, printer columns, structural schemas with CEL rules', () => {
  const [pnp, pcnp] = palisadePolicyCrdFiles().map((f) => parse(f.text));
  assert.equal(pnp.spec.scope, 'Namespaced');
  assert.equal(pcnp.spec.scope, 'Cluster');
  assert.deepEqual(pnp.spec.names.shortNames, ['pnp']);
  assert.deepEqual(pcnp.spec.names.shortNames, ['pcnp']);
  const schemaOf = (crd: any) => crd.spec.versions[0].schema.openAPIV3Schema.properties;
  assert.deepEqual(schemaOf(pnp), schemaOf(pcnp), 'one spec and status for both kinds');
  const version = pnp.spec.versions[0];
  assert.deepEqual(version.subresources, { status: {} });
  assert.deepEqual(version.additionalPrinterColumns.map((c: { name: string }) => c.name), ['Valid', 'Enforced', 'Endpoints', 'Age', 'Reason', 'Message']);
  const root = version.schema.openAPIV3Schema;
  assert.deepEqual(root.required, ['spec']);
  assert.deepEqual(root.properties.spec.required, ['endpointSelector']);
  let rules = 0;
  for (const [path, node] of nodes(root)) {
    assert.ok(typeof node.type === 'string', `${path} has a type`);
    assert.notEqual(node.additionalProperties, false, `${path}: no additionalProperties: false`);
    for (const banned of ['anyOf', 'oneOf', 'allOf', 'not', '$ref', 'propertyNames', '$schema']) assert.ok(!(banned in node), `${path}: no ${banned}`);
    if (node.type === 'array' && path.startsWith('$.spec')) assert.ok(Number.isInteger(node.maxItems), `${path}: bounded (the API server estimates CEL costs from it)`);
    for (const r of node['x-kubernetes-validations'] ?? []) {
      rules++;
      assert.ok(typeof r.rule === 'string' && typeof r.message === 'string', `${path}: a rule and its message`);
    }
  }
  assert.ok(rules >= 40, `${rules} CEL rules`);
  const conditions = root.properties.status.properties.conditions;
  assert.equal(conditions['x-kubernetes-list-type'], 'map');
  assert.deepEqual(conditions['x-kubernetes-list-map-keys'], ['type']);
  const port = root.properties.spec.properties.egress.items.properties.toPorts.items.properties.ports.items;
  assert.equal(port.properties.protocol.default, 'ANY');
  assert.deepEqual(port['x-kubernetes-validations'].map((r: { fieldPath: string }) => r.fieldPath), ['.endPort', '.endPort']);
});
