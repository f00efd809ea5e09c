// The CustomResourceDefinitions of PalisadeNetworkPolicy and
// PalisadeClusterNetworkPolicy, generated from the zod schemas of
// palisade-policy.ts (the one source of truth). Pure: `npm run crds`
// (scripts/gen-crds.ts) writes the result to crds/ and the chart's copy, and
// palisade-crds.test.ts fails when the committed files differ from it.
//
// zod's JSON Schema output (OpenAPI 3.0 flavour) is made structural, as the
// API server requires: `additionalProperties: false` goes (the API server
// prunes or, under strict field validation, refuses unknown fields itself),
// and so do keywords a CRD schema does not allow. The CEL rules and other
// `x-kubernetes-*` keywords come from the schemas' metadata.

import { z } from 'zod';
import { stringify } from 'yaml';
import {
  PALISADE_POLICY_GROUP,
  PALISADE_POLICY_KINDS,
  PALISADE_POLICY_VERSION,
  palisadePolicySpecSchema,
  palisadePolicyStatusSchema,
  type PolicyKindInfo,
} from './palisade-policy.ts';

type Schema = Record<string, unknown>;

/** Keywords of JSON Schema that a structural CRD schema does not take. */
const DROPPED = new Set(['$schema', 'propertyNames', 'id', '$id']);

function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  const input = node as Schema;
  for (const [key, value] of Object.entries(input)) {
    if (DROPPED.has(key)) continue;
    if (key === 'additionalProperties' && value === false) continue;
    // zod's date-time pattern has look-aheads RE2 lacks; `format: date-time` says it.
    if (key === 'pattern' && input.format === 'date-time') continue;
    // zod bounds every integer to the safe range: say nothing rather than that.
    if ((key === 'maximum' && value === Number.MAX_SAFE_INTEGER) || (key === 'minimum' && value === Number.MIN_SAFE_INTEGER)) continue;
    // A RegExp's source escapes '/', which RE2 reads alike; the bare form reads better.
    if (key === 'pattern' && typeof value === 'string') {
      out[key] = value.replaceAll('\\/', '/');
      continue;
    }
    out[key] = key === 'x-kubernetes-validations' || key === 'enum' || key === 'required' || key === 'default' || key === 'x-kubernetes-list-map-keys' ? value : structural(value);
  }
  // description and type first: easier to read.
  const { description, type, ...rest } = out;
  return { ...(description !== undefined ? { description } : {}), ...(type !== undefined ? { type } : {}), ...rest };
}

export function openApiSchema(schema: z.ZodType): Schema {
  return structural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' })) as Schema;
}

const condition = (type: string, field: 'status' | 'message' | 'reason') => `.status.conditions[?(@.type=='${type}')].${field}`;

export function palisadePolicyCrd(info: PolicyKindInfo): Schema {
  const scope = info.scope === 'Namespaced' ? 'pods of its own namespace' : 'pods of every namespace';
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${PALISADE_POLICY_GROUP}` },
    spec: {
      group: PALISADE_POLICY_GROUP,
      scope: info.scope,
      names: {
        kind: info.kind,
        listKind: info.listKind,
        plural: info.plural,
        singular: info.singular,
        shortNames: [info.shortName],
        categories: ['palisade'],
      },
      versions: [
        {
          name: PALISADE_POLICY_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Valid', type: 'string', jsonPath: condition('Valid', 'status') },
            { name: 'Enforced', type: 'string', jsonPath: condition('Enforced', 'status') },
            { name: 'Endpoints', type: 'integer', jsonPath: '.status.selectedEndpoints' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
            { name: 'Reason', type: 'string', jsonPath: condition('Valid', 'reason'), priority: 1 },
            { name: 'Message', type: 'string', jsonPath: condition('Valid', 'message'), priority: 1 },
          ],
          schema: {
            openAPIV3Schema: {
              description: `${info.kind}: Palisade's network policy for ${scope} (CiliumNetworkPolicy's field names for the subset it covers).`,
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: openApiSchema(palisadePolicySpecSchema),
                status: openApiSchema(palisadePolicyStatusSchema),
              },
            },
          },
        },
      ],
    },
  };
}

const HEADER: Record<PolicyKindInfo['kind'], string> = {
  PalisadeNetworkPolicy: 'PalisadeNetworkPolicy (pnp): network policy for the pods of its own namespace.',
  PalisadeClusterNetworkPolicy: 'PalisadeClusterNetworkPolicy (pcnp): network policy for pods of every namespace.',
};

/** File name under crds/ and its content, for each policy kind. */
export function palisadePolicyCrdFiles(): Array<{ file: string; text: string }> {
  return PALISADE_POLICY_KINDS.map((info) => ({
    file: `${info.plural}.yaml`,
    text:
      `# ${HEADER[info.kind]}\n` +
      '# The API: ../../shared/POLICY-API.md. GENERATED from policy/palisade-policy.ts by\n' +
      '# `npm run crds`: do not edit (policy/palisade-crds.test.ts fails when this differs).\n' +
      stringify(palisadePolicyCrd(info), { lineWidth: 0, aliasDuplicateObjects: false }),
  }));
}
