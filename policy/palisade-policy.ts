// Palisade's own policy kinds, PalisadeNetworkPolicy (namespaced, `pnp`) and
// PalisadeClusterNetworkPolicy (cluster-scoped, `pcnp`), group palisade.io,
// version v1alpha1: the one source of truth for their API
// (../../shared/POLICY-API.md). Pure: no I/O.
//
// The zod schemas below are what the operator validates with, and the CRDs'
// OpenAPI schemas are generated from them (palisade-crds.ts, `npm run crds`):
// types, required fields, enums, lengths, list sizes and regular expressions
// become OpenAPI keywords; every check a schema keyword cannot express is
// written twice, side by side, by `celRule()`: as a CEL rule for the CRD
// (`x-kubernetes-validations`) and as a JavaScript predicate for zod. The
// end-to-end test runs a table of policies through both the real API server
// and `validatePalisadePolicy` and requires the same verdicts.
//
// One check is the operator's alone: that every `except` of a CIDR set lies
// strictly inside its `cidr` (CEL's CIDR library needs Kubernetes 1.31 and
// the chart supports 1.30). Such a policy is stored, and the operator marks
// it Valid=False naming the field.
//
// Strict: an unknown field is an error naming it (the API server refuses it
// too when the client asks for strict field validation, as kubectl does by
// default; otherwise it drops the field and answers with a warning). The
// Cilium fields Palisade does not support get a message saying so.
//
// Where the API page is silent, Palisade does what a Cilium user expects
// (docs/adr/0009-palisade-policy-api.md): DNS rules only in egress allow
// rules, on port-53 entries; `k8s:`/`any:` label-source prefixes accepted and
// dropped; an empty list is the same as an absent one; IPv4 only.

import { z } from 'zod';
import { parseCidr, prefixContains } from './cidr.ts';
import type { LabelSelector, LabelSelectorRequirement } from './types.ts';
import { formatPath } from './validate.ts';

export const PALISADE_POLICY_GROUP = 'palisade.io';
export const PALISADE_POLICY_VERSION = 'v1alpha1';
export const PALISADE_POLICY_API_VERSION = `${PALISADE_POLICY_GROUP}/${PALISADE_POLICY_VERSION}`;

export interface PolicyKindInfo {
  kind: 'PalisadeNetworkPolicy' | 'PalisadeClusterNetworkPolicy';
  listKind: string;
  plural: string;
  singular: string;
  shortName: string;
  scope: 'Namespaced' | 'Cluster';
}

export const PALISADE_NETWORK_POLICY: PolicyKindInfo = {
  kind: 'PalisadeNetworkPolicy',
  listKind: 'PalisadeNetworkPolicyList',
  plural: 'palisadenetworkpolicies',
  singular: 'palisadenetworkpolicy',
  shortName: 'pnp',
  scope: 'Namespaced',
};

export const PALISADE_CLUSTER_NETWORK_POLICY: PolicyKindInfo = {
  kind: 'PalisadeClusterNetworkPolicy',
  listKind: 'PalisadeClusterNetworkPolicyList',
  plural: 'palisadeclusternetworkpolicies',
  singular: 'palisadeclusternetworkpolicy',
  shortName: 'pcnp',
  scope: 'Cluster',
};

export const PALISADE_POLICY_KINDS = [PALISADE_NETWORK_POLICY, PALISADE_CLUSTER_NETWORK_POLICY] as const;

// ---- limits ----------------------------------------------------------------
// The API server estimates the worst-case cost of every CEL rule from these
// bounds (a rule inside nested lists runs once per element of each) and
// refuses a CRD whose estimate exceeds its budget, so lists that hold checked
// elements need a maximum. Generous for hand-written policy; a policy that
// needs more splits into several.

export const LIMITS = {
  /** Rules per direction list (ingress, ingressDeny, egress, egressDeny). */
  rules: 64,
  /** fromEndpoints / toEndpoints per rule. */
  endpoints: 64,
  /** fromCIDR / toCIDR per rule. */
  cidrs: 256,
  /** fromCIDRSet / toCIDRSet per rule. */
  cidrSets: 64,
  /** except per CIDR set. */
  except: 32,
  /** toFQDNs per rule. */
  fqdns: 128,
  /** toPorts per rule. */
  toPorts: 32,
  /** ports per toPorts entry (as Cilium). */
  ports: 40,
  /** rules.dns per toPorts entry. */
  dns: 128,
  /** matchLabels entries and matchExpressions per selector. */
  selectorTerms: 32,
  /** values per matchExpressions requirement. */
  values: 64,
} as const;

// ---- regular expressions ---------------------------------------------------
// Written once for both engines: RE2 (the API server's OpenAPI `pattern` and
// CEL `matches`) and JavaScript. Only constructs both read alike, and no
// backslashes (so they go into CEL string literals as they are).

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** An IPv4 prefix: dotted quad without leading zeros, `/0` to `/32` (host bits may be set; they are cleared). */
export const IPV4_CIDR_RE = `${OCTET}([.]${OCTET}){3}/(3[0-2]|[12][0-9]|[0-9])`;
/** The CRD's pattern for a CIDR: IPv4, or anything with a colon, which the IPv6 rule then refuses with its own message. */
const CIDR_PATTERN = `^(${IPV4_CIDR_RE}|[^:]*:.*)$`;

/** A port number as a string, decimal without leading zeros, 0 to 65535. */
export const PORT_RE = '^(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';

const NAME_LABEL = '[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?';
/** matchName: a DNS name, labels of letters, digits, `-` and `_` (not at either end), 1 to 63 long; trailing dot optional. */
export const FQDN_NAME_RE = `^${NAME_LABEL}([.]${NAME_LABEL})*[.]?$`;
const PATTERN_LABEL = '([*]|[*]?[-A-Za-z0-9_]{1,63}([*][-A-Za-z0-9_]{1,63})*[*]?)';
/**
 * matchPattern: `*` alone, or labels that may hold single `*`s (the runs
 * between them up to 63 characters), optionally after a leading `**.`;
 * trailing dot optional. Laxer than matchName on purpose (a label may start
 * with '-'): what a pattern could never match is harmless, and every check
 * here is a regular expression, which costs the API server nothing per item.
 */
export const FQDN_PATTERN_RE = `^([*]|([*][*][.])?${PATTERN_LABEL}([.]${PATTERN_LABEL})*[.]?)$`;

const DNS_SUBDOMAIN = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*';
const LABEL_NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
/** A label key, `[prefix/]name`, optionally with Cilium's `k8s:` or `any:` source (dropped: every label Palisade sees is a Kubernetes label). */
export const LABEL_KEY_RE = `^((k8s|any):)?(${DNS_SUBDOMAIN}/)?${LABEL_NAME}$`;
/** A label value: empty, or up to 63 of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric. */
export const LABEL_VALUE_RE = '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$';
/** `k8s:` source, 253 prefix, `/`, 63 name. */
const LABEL_KEY_MAX = 4 + 253 + 1 + 63;

// ---- CEL rules written next to their zod twin --------------------------------

export interface CelRule {
  rule: string;
  message: string;
  /** Where the error points, relative to the value the rule is on (`.endPort`). */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired';
}

/** The CEL rules a schema carries into the CRD (read by palisade-crds.ts). */
export const CEL_RULES_KEY = 'x-kubernetes-validations';

/** `.a.b` -> ['a', 'b']. */
const fieldPathParts = (fieldPath: string | undefined) => (fieldPath ? fieldPath.split('.').filter((p) => p !== '') : []);

/**
 * Adds a constraint twice: `rule` (CEL, evaluated by the API server with the
 * value as `self`) and `holds` (the same predicate in JavaScript, evaluated by
 * zod). The two must agree; the end-to-end parity test checks them against
 * each other on a table of cases.
 */
function celRule<T extends z.ZodType>(
  schema: T,
  rule: CelRule & { holds: (value: z.output<T>) => boolean; /** zod's message, when it can say more (name the key). */ explain?: (value: z.output<T>) => string },
): T {
  const { holds, explain, ...cel } = rule;
  const meta = (schema.meta() ?? {}) as Record<string, unknown>;
  const rules = [...((meta[CEL_RULES_KEY] as CelRule[] | undefined) ?? []), cel];
  return schema
    .superRefine((value, ctx) => {
      const v = value as z.output<T>;
      if (!holds(v)) ctx.addIssue({ code: 'custom', message: explain?.(v) ?? cel.message, path: fieldPathParts(cel.fieldPath) });
    })
    .meta({ ...meta, [CEL_RULES_KEY]: rules }) as T;
}

/** Adds OpenAPI keywords (description, x-kubernetes-*) to a schema, keeping what it has. */
function openapi<T extends z.ZodType>(schema: T, extra: Record<string, unknown>): T {
  return schema.meta({ ...((schema.meta() ?? {}) as Record<string, unknown>), ...extra }) as T;
}

const described = <T extends z.ZodType>(schema: T, description: string) => openapi(schema, { description });

// ---- leaves -----------------------------------------------------------------

const cidrSchema = celRule(
  z
    .string()
    .max(64)
    .regex(new RegExp(CIDR_PATTERN), { message: 'must be an IPv4 CIDR: an address and a prefix length, such as 10.0.0.0/8' }),
  { rule: "!self.contains(':')", message: 'IPv6 is not supported: Palisade enforces IPv4 only', holds: (v) => !v.includes(':') },
);

const fqdnNameSchema = celRule(
  z
    .string()
    .min(1)
    .max(254)
    .regex(new RegExp(FQDN_NAME_RE), {
      message: "must be a DNS name: labels of letters, digits, '-' or '_' (not first or last), 1 to 63 characters each, separated by dots",
    }),
  { rule: "size(self) <= 253 || self.endsWith('.')", message: 'must be no more than 253 characters (without the trailing dot)', holds: (v) => v.length <= 253 || v.endsWith('.') },
);

const fqdnPatternSchema = celRule(
  z
    .string()
    .min(1)
    .max(254)
    .regex(new RegExp(FQDN_PATTERN_RE), {
      message:
        "must be a DNS name pattern: '*' alone, or labels of letters, digits, '-', '_' and '*' (never two '*' in a row), optionally after a leading '**.'",
    }),
  { rule: "size(self) <= 253 || self.endsWith('.')", message: 'must be no more than 253 characters (without the trailing dot)', holds: (v) => v.length <= 253 || v.endsWith('.') },
);

const fqdnSelectorSchema = celRule(
  z.strictObject({
    matchName: described(fqdnNameSchema, 'An exact name, case-insensitive, trailing dot optional.').optional(),
    matchPattern: described(
      fqdnPatternSchema,
      "A name pattern: '*' matches any run of characters within one label; a leading '**.' matches one or more labels; '*' alone matches every name.",
    ).optional(),
  }),
  {
    rule: 'has(self.matchName) != has(self.matchPattern)',
    message: 'exactly one of matchName and matchPattern must be set',
    holds: (v) => (v.matchName === undefined) !== (v.matchPattern === undefined),
  },
);

const ENTITIES = ['all', 'world', 'cluster', 'host', 'remote-node', 'kube-apiserver'] as const;
export type Entity = (typeof ENTITIES)[number];

/** A list whose items must be distinct (`x-kubernetes-list-type: set` in the CRD: the API server says "Duplicate value"). */
function setOf<T extends z.ZodType>(item: T, max: number) {
  return openapi(
    z
      .array(item)
      .max(max)
      .superRefine((list, ctx) => {
        list.forEach((v, i) => {
          if (list.indexOf(v) !== i) ctx.addIssue({ code: 'custom', message: `Duplicate value: ${JSON.stringify(v)}`, path: [i] });
        });
      }),
    { 'x-kubernetes-list-type': 'set' },
  );
}

const entitiesSchema = described(
  setOf(z.enum(ENTITIES), ENTITIES.length),
  'Peers by kind: all; world (any address that is not a pod, node or the API server of this cluster); cluster (every pod and node); host (the pod\'s own node); remote-node (any other node); kube-apiserver.',
);

// ---- label selectors ----------------------------------------------------------

const labelValueSchema = z
  .string()
  .max(63)
  .regex(new RegExp(LABEL_VALUE_RE), { message: "must be empty or consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric" });

const LABEL_KEY_MESSAGE =
  "must be a label key, [prefix/]name: a DNS subdomain prefix and a name of alphanumerics, '-', '_' or '.' (up to 63, starting and ending with an alphanumeric), optionally after Cilium's 'k8s:' or 'any:' source";

function badLabelKeyMessage(key: string): string {
  const reserved = /^[a-z]+:/.test(key) && !/^(k8s|any):/.test(key);
  return `key ${JSON.stringify(key)}: ${LABEL_KEY_MESSAGE}${reserved ? "; Cilium's reserved labels are entities here: use fromEntities or toEntities" : ''}`;
}

const labelKeySchema = z.string().min(1).max(LABEL_KEY_MAX).regex(new RegExp(LABEL_KEY_RE), { message: LABEL_KEY_MESSAGE });

const matchLabelsSchema = openapi(
  celRule(
    celRule(z.record(z.string(), labelValueSchema), {
      rule: `self.all(k, size(k) <= ${LABEL_KEY_MAX})`,
      message: `keys must be no more than ${LABEL_KEY_MAX} characters`,
      holds: (m) => Object.keys(m).every((k) => k.length <= LABEL_KEY_MAX),
      explain: (m) => `key ${JSON.stringify(Object.keys(m).find((k) => k.length > LABEL_KEY_MAX))} is longer than ${LABEL_KEY_MAX} characters`,
    }),
    {
      rule: `self.all(k, k.matches('${LABEL_KEY_RE}'))`,
      message: `keys ${LABEL_KEY_MESSAGE}`,
      holds: (m) => Object.keys(m).every((k) => new RegExp(LABEL_KEY_RE).test(k)),
      explain: (m) => badLabelKeyMessage(Object.keys(m).find((k) => !new RegExp(LABEL_KEY_RE).test(k)) ?? ''),
    },
  ).superRefine((m, ctx) => {
    if (Object.keys(m).length > LIMITS.selectorTerms) ctx.addIssue({ code: 'custom', message: `must have at most ${LIMITS.selectorTerms} entries` });
  }),
  { maxProperties: LIMITS.selectorTerms },
);

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

const requirementSchema = celRule(
  celRule(
    z.strictObject({
      key: labelKeySchema,
      operator: z.enum(OPERATORS),
      values: z.array(labelValueSchema).max(LIMITS.values).optional(),
    }),
    {
      rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
      message: 'values must be given when the operator is In or NotIn',
      fieldPath: '.values',
      reason: 'FieldValueRequired',
      holds: (r) => !(r.operator === 'In' || r.operator === 'NotIn') || (r.values ?? []).length > 0,
    },
  ),
  {
    rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
    message: 'values must be empty when the operator is Exists or DoesNotExist',
    fieldPath: '.values',
    reason: 'FieldValueForbidden',
    holds: (r) => !(r.operator === 'Exists' || r.operator === 'DoesNotExist') || (r.values ?? []).length === 0,
  },
);

const selectorSchema = described(
  z.strictObject({
    matchLabels: matchLabelsSchema.optional(),
    matchExpressions: z.array(requirementSchema).max(LIMITS.selectorTerms).optional(),
  }),
  'A label selector. Every pod also carries io.kubernetes.pod.namespace: <its namespace> and, per label K: V of its namespace, io.cilium.k8s.namespace.labels.K: V.',
);

// ---- ports --------------------------------------------------------------------

const PROTOCOLS = ['TCP', 'UDP', 'SCTP', 'ANY'] as const;
export type PalisadeProtocol = (typeof PROTOCOLS)[number];

const hasPortNumber = (p: { port?: string }) => p.port !== undefined && p.port !== '0' && new RegExp(PORT_RE).test(p.port);

const portProtocolSchema = celRule(
  celRule(
    z.strictObject({
      port: described(
        z.string().max(5).regex(new RegExp(PORT_RE), { message: 'must be a port number from "0" (every port) to "65535", written as a string; named ports are not supported' }),
        'A port number as a string; "0" (or no port) means every port.',
      ).optional(),
      endPort: described(z.int().min(1).max(65535), 'The last port of a range starting at port.').optional(),
      protocol: described(z.enum(PROTOCOLS), 'TCP, UDP, SCTP or ANY (the default).').default('ANY'),
    }),
    {
      rule: "!has(self.endPort) || (has(self.port) && self.port != '0')",
      message: 'endPort needs a single port number in port (not "0", which is every port)',
      fieldPath: '.endPort',
      holds: (p) => p.endPort === undefined || (p.port !== undefined && p.port !== '0'),
    },
  ),
  {
    rule: "!has(self.endPort) || !has(self.port) || !self.port.matches('^[0-9]+$') || self.port == '0' || self.endPort >= int(self.port)",
    message: 'endPort must be greater than or equal to port',
    fieldPath: '.endPort',
    holds: (p) => p.endPort === undefined || !hasPortNumber(p) || p.endPort >= Number(p.port),
  },
);

const dnsRulesSchema = z.strictObject({
  dns: described(
    z.array(fqdnSelectorSchema).min(1).max(LIMITS.dns),
    'The names the selected pods may resolve; a query for any other name is answered REFUSED and never reaches the server.',
  ),
});

const portRuleShape = {
  ports: z.array(portProtocolSchema).min(1).max(LIMITS.ports),
  rules: described(dnsRulesSchema, 'Layer-7 rules: only dns, and only in egress allow rules, on port-53 entries.').optional(),
};

const egressPortRuleSchema = celRule(z.strictObject(portRuleShape), {
  rule: "!has(self.rules) || self.ports.all(p, has(p.port) && p.port == '53' && p.protocol != 'SCTP')",
  message: 'DNS rules apply to DNS traffic: every port of this entry must be "53" (UDP, TCP or ANY)',
  fieldPath: '.rules',
  holds: (r) => r.rules === undefined || r.ports.every((p) => p.port === '53' && p.protocol !== 'SCTP'),
});

const ingressPortRuleSchema = celRule(z.strictObject(portRuleShape), {
  rule: '!has(self.rules)',
  message: 'DNS rules are not allowed in ingress rules: they restrict the names the selected pods resolve, so they belong in egress rules',
  fieldPath: '.rules',
  reason: 'FieldValueForbidden',
  holds: (r) => r.rules === undefined,
});

const denyPortRuleSchema = celRule(z.strictObject(portRuleShape), {
  rule: '!has(self.rules)',
  message: 'DNS rules are not allowed in deny rules',
  fieldPath: '.rules',
  reason: 'FieldValueForbidden',
  holds: (r) => r.rules === undefined,
});

// ---- peers and rules ------------------------------------------------------------

const cidrSetSchema = z
  .strictObject({
    cidr: cidrSchema,
    except: z.array(cidrSchema).max(LIMITS.except).optional(),
  })
  .superRefine((set, ctx) => {
    // The operator's check alone (see the top of the file): each except strictly inside cidr.
    const outer = parseCidr(set.cidr);
    if (typeof outer === 'string' || set.cidr.includes(':')) return;
    (set.except ?? []).forEach((e, i) => {
      const inner = parseCidr(e);
      if (typeof inner === 'string' || e.includes(':')) return;
      if (inner.family !== outer.family || inner.len <= outer.len || !prefixContains(outer, inner)) {
        ctx.addIssue({ code: 'custom', message: `must be a strict subset of cidr ${set.cidr}`, path: ['except', i] });
      }
    });
  });

const endpointsSchema = z.array(selectorSchema).max(LIMITS.endpoints);
const cidrListSchema = z.array(cidrSchema).max(LIMITS.cidrs);
const cidrSetListSchema = z.array(cidrSetSchema).max(LIMITS.cidrSets);

const ingressPeers = {
  fromEndpoints: described(endpointsSchema, 'Pods, by label selector (in a PalisadeNetworkPolicy, of its own namespace unless the selector constrains io.kubernetes.pod.namespace).').optional(),
  fromEntities: entitiesSchema.optional(),
  fromCIDR: described(cidrListSchema, 'IPv4 prefixes (pod addresses included).').optional(),
  fromCIDRSet: described(cidrSetListSchema, 'IPv4 prefixes with exceptions.').optional(),
};

const egressPeers = {
  toEndpoints: described(endpointsSchema, 'Pods, by label selector (in a PalisadeNetworkPolicy, of its own namespace unless the selector constrains io.kubernetes.pod.namespace).').optional(),
  toEntities: entitiesSchema.optional(),
  toCIDR: described(cidrListSchema, 'IPv4 prefixes (pod addresses included).').optional(),
  toCIDRSet: described(cidrSetListSchema, 'IPv4 prefixes with exceptions.').optional(),
  toFQDNs: described(
    z.array(fqdnSelectorSchema).max(LIMITS.fqdns),
    'Names: the addresses the selected pods learn for them from DNS answers. Also allows querying the cluster DNS service for them.',
  ).optional(),
};

const toPortsDescription = 'Ports (and protocols); a rule with toPorts matches only these. With no peer field, every peer on these ports.';

const ingressRuleSchema = z.strictObject({
  ...ingressPeers,
  toPorts: described(z.array(ingressPortRuleSchema).max(LIMITS.toPorts), toPortsDescription).optional(),
});
const ingressDenyRuleSchema = z.strictObject({
  ...ingressPeers,
  toPorts: described(z.array(denyPortRuleSchema).max(LIMITS.toPorts), toPortsDescription).optional(),
});
const egressRuleSchema = z.strictObject({
  ...egressPeers,
  toPorts: described(z.array(egressPortRuleSchema).max(LIMITS.toPorts), toPortsDescription).optional(),
});
const egressDenyRuleSchema = z.strictObject({
  ...egressPeers,
  toPorts: described(z.array(denyPortRuleSchema).max(LIMITS.toPorts), toPortsDescription).optional(),
});

/** The spec of both kinds, as the API page defines it. */
export const palisadePolicySpecSchema = z.strictObject({
  endpointSelector: described(selectorSchema, 'The pods the policy applies to ({} selects every pod in scope).'),
  ingress: described(z.array(ingressRuleSchema).max(LIMITS.rules), 'Allow rules for traffic into the selected pods.').optional(),
  ingressDeny: described(z.array(ingressDenyRuleSchema).max(LIMITS.rules), 'Deny rules for traffic into the selected pods: a deny wins over every allow.').optional(),
  egress: described(z.array(egressRuleSchema).max(LIMITS.rules), 'Allow rules for traffic from the selected pods.').optional(),
  egressDeny: described(
    z.array(egressDenyRuleSchema).max(LIMITS.rules),
    'Deny rules for traffic from the selected pods: a deny wins over every allow. toFQDNs is allowed here.',
  ).optional(),
  enableDefaultDeny: described(
    z.strictObject({ ingress: z.boolean().optional(), egress: z.boolean().optional() }),
    'Whether selecting a pod isolates it in that direction; default: true for each direction in which the policy has rules (allow or deny).',
  ).optional(),
  description: z.string().optional(),
});

// ---- status ---------------------------------------------------------------------

export const CONDITION_REASON_RE = '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$';

/** metav1.Condition. */
const conditionSchema = z.strictObject({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: openapi(z.int().min(0), { format: 'int64' }).optional(),
  lastTransitionTime: z.iso.datetime({ offset: true }),
  reason: z.string().min(1).max(1024).regex(new RegExp(CONDITION_REASON_RE)),
  message: z.string().max(32768),
});

export const palisadePolicyStatusSchema = z.strictObject({
  observedGeneration: described(openapi(z.int().min(0), { format: 'int64' }), 'The generation the conditions describe.').optional(),
  selectedEndpoints: described(z.int().min(0), 'How many endpoints (pods) the policy selects.').optional(),
  conditions: described(
    openapi(z.array(conditionSchema).max(8), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
    'Valid: the operator accepted every field. Enforced: every node that runs a selected pod has realized this generation.',
  ).optional(),
});

export type PalisadePolicyStatus = z.output<typeof palisadePolicyStatusSchema>;
export type PolicyCondition = z.output<typeof conditionSchema>;

/** A whole object as read from the API or a manifest. */
const objectSchema = z.strictObject({
  apiVersion: z.literal(PALISADE_POLICY_API_VERSION).optional(),
  kind: z.enum([PALISADE_NETWORK_POLICY.kind, PALISADE_CLUSTER_NETWORK_POLICY.kind]).optional(),
  metadata: z.looseObject({}).optional(),
  spec: palisadePolicySpecSchema,
  status: z.unknown().optional(),
});

// ---- the validated, normalized spec (what the compiler reads) ------------------------

export type FqdnSelector = { matchName: string } | { matchPattern: string };

export interface PalisadePortProtocol {
  /** 0: every port. */
  port: number;
  /** Inclusive end of the range starting at port. */
  endPort?: number;
  protocol: PalisadeProtocol;
}

export interface PalisadePortRule {
  ports: PalisadePortProtocol[];
  /** Egress allow rules only, every port 53. */
  rules?: { dns: FqdnSelector[] };
}

export interface CidrSet {
  cidr: string;
  except?: string[];
}

export interface PalisadeIngressRule {
  fromEndpoints?: LabelSelector[];
  fromEntities?: Entity[];
  fromCIDR?: string[];
  fromCIDRSet?: CidrSet[];
  toPorts?: PalisadePortRule[];
}

export interface PalisadeEgressRule {
  toEndpoints?: LabelSelector[];
  toEntities?: Entity[];
  toCIDR?: string[];
  toCIDRSet?: CidrSet[];
  toFQDNs?: FqdnSelector[];
  toPorts?: PalisadePortRule[];
}

/**
 * A validated spec, normalized: every rule list present (maybe empty);
 * `enableDefaultDeny` resolved per the API page's default; empty peer and
 * port lists dropped (an empty list means the same as an absent one, as in
 * Cilium); CIDRs with host bits cleared; names and patterns lowercase without
 * the trailing dot; ports as numbers (0: every port) with the protocol
 * defaulted to ANY; label keys without a `k8s:`/`any:` source.
 */
export interface PalisadePolicySpec {
  endpointSelector: LabelSelector;
  ingress: PalisadeIngressRule[];
  ingressDeny: PalisadeIngressRule[];
  egress: PalisadeEgressRule[];
  egressDeny: PalisadeEgressRule[];
  enableDefaultDeny: { ingress: boolean; egress: boolean };
  description?: string;
}

export interface PolicyIssue {
  /** Kubernetes field path, e.g. `spec.egress[0].toPorts[0].ports[0].endPort`. */
  path: string;
  message: string;
}

export type PalisadePolicyValidation =
  | { ok: true; spec: PalisadePolicySpec }
  | { ok: false; errors: string[]; issues: PolicyIssue[] };

type ParsedSpec = z.output<typeof palisadePolicySpecSchema>;
type ParsedSelector = z.output<typeof selectorSchema>;

const stripSource = (key: string) => key.replace(/^(k8s|any):/, '');

function selector(s: ParsedSelector): LabelSelector {
  const out: LabelSelector = {};
  const expressions: LabelSelectorRequirement[] = [];
  if (s.matchLabels && Object.keys(s.matchLabels).length > 0) {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.matchLabels)) {
      const key = stripSource(k);
      // `k8s:app` and `app` in one selector: both must hold, as written.
      if (Object.hasOwn(labels, key)) {
        if (labels[key] !== v) expressions.push({ key, operator: 'In', values: [v] });
      } else labels[key] = v;
    }
    out.matchLabels = labels;
  }
  for (const e of s.matchExpressions ?? []) {
    const r: LabelSelectorRequirement = { key: stripSource(e.key), operator: e.operator };
    if (e.values && e.values.length > 0) r.values = [...e.values];
    expressions.push(r);
  }
  if (expressions.length > 0) out.matchExpressions = expressions;
  return out;
}

const cidrText = (s: string) => {
  const p = parseCidr(s);
  return typeof p === 'string' ? s : p.text;
};

const fqdn = (f: { matchName?: string | undefined; matchPattern?: string | undefined }): FqdnSelector => {
  const norm = (s: string) => (s.length > 1 && s.endsWith('.') ? s.slice(0, -1) : s).toLowerCase();
  return f.matchName !== undefined ? { matchName: norm(f.matchName) } : { matchPattern: norm(f.matchPattern!) };
};

type ParsedPortRule = { ports: Array<{ port?: string | undefined; endPort?: number | undefined; protocol: PalisadeProtocol }>; rules?: { dns: Array<{ matchName?: string | undefined; matchPattern?: string | undefined }> } | undefined };

function portRule(r: ParsedPortRule): PalisadePortRule {
  const out: PalisadePortRule = {
    ports: r.ports.map((p) => ({ port: Number(p.port ?? '0'), ...(p.endPort !== undefined ? { endPort: p.endPort } : {}), protocol: p.protocol })),
  };
  if (r.rules) out.rules = { dns: r.rules.dns.map(fqdn) };
  return out;
}

/** Sets `out[key]` to `f(list)` when the list is non-empty. */
function put<T, U, K extends string>(out: Partial<Record<K, U>>, key: K, list: T[] | undefined, f: (list: T[]) => U) {
  if (list && list.length > 0) out[key] = f(list);
}

type ParsedRule = {
  fromEndpoints?: ParsedSelector[] | undefined;
  fromEntities?: Entity[] | undefined;
  fromCIDR?: string[] | undefined;
  fromCIDRSet?: Array<{ cidr: string; except?: string[] | undefined }> | undefined;
  toEndpoints?: ParsedSelector[] | undefined;
  toEntities?: Entity[] | undefined;
  toCIDR?: string[] | undefined;
  toCIDRSet?: Array<{ cidr: string; except?: string[] | undefined }> | undefined;
  toFQDNs?: Array<{ matchName?: string | undefined; matchPattern?: string | undefined }> | undefined;
  toPorts?: ParsedPortRule[] | undefined;
};

function rule(r: ParsedRule): PalisadeIngressRule & PalisadeEgressRule {
  const out: PalisadeIngressRule & PalisadeEgressRule = {};
  const sets = (l: Array<{ cidr: string; except?: string[] | undefined }>) =>
    l.map((s) => ({ cidr: cidrText(s.cidr), ...(s.except && s.except.length > 0 ? { except: s.except.map(cidrText) } : {}) }));
  put(out, 'fromEndpoints', r.fromEndpoints, (l) => l.map(selector));
  put(out, 'fromEntities', r.fromEntities, (l) => [...l]);
  put(out, 'fromCIDR', r.fromCIDR, (l) => l.map(cidrText));
  put(out, 'fromCIDRSet', r.fromCIDRSet, sets);
  put(out, 'toEndpoints', r.toEndpoints, (l) => l.map(selector));
  put(out, 'toEntities', r.toEntities, (l) => [...l]);
  put(out, 'toCIDR', r.toCIDR, (l) => l.map(cidrText));
  put(out, 'toCIDRSet', r.toCIDRSet, sets);
  put(out, 'toFQDNs', r.toFQDNs, (l) => l.map(fqdn));
  put(out, 'toPorts', r.toPorts, (l) => l.map(portRule));
  return out;
}

function normalize(s: ParsedSpec): PalisadePolicySpec {
  const ingress = (s.ingress ?? []).map(rule);
  const ingressDeny = (s.ingressDeny ?? []).map(rule);
  const egress = (s.egress ?? []).map(rule);
  const egressDeny = (s.egressDeny ?? []).map(rule);
  return {
    endpointSelector: selector(s.endpointSelector),
    ingress,
    ingressDeny,
    egress,
    egressDeny,
    enableDefaultDeny: {
      ingress: s.enableDefaultDeny?.ingress ?? ingress.length + ingressDeny.length > 0,
      egress: s.enableDefaultDeny?.egress ?? egress.length + egressDeny.length > 0,
    },
    ...(s.description !== undefined ? { description: s.description } : {}),
  };
}

// ---- messages -------------------------------------------------------------------------

/** Cilium fields a ported policy may carry that Palisade does not support. */
const UNSUPPORTED: Record<string, string> = {
  nodeSelector: 'node policies are not supported: use endpointSelector',
  labels: 'policy labels are not supported',
  specs: 'a list of specs is not supported: write one policy per spec',
  fromRequires: 'fromRequires is not supported (deprecated in Cilium)',
  toRequires: 'toRequires is not supported (deprecated in Cilium)',
  fromNodes: 'node peers are not supported: use the host and remote-node entities',
  toNodes: 'node peers are not supported: use the host and remote-node entities',
  fromGroups: 'CIDR groups are not supported: use fromCIDR or fromCIDRSet',
  toGroups: 'CIDR groups are not supported: use toCIDR or toCIDRSet',
  toServices: 'toServices is not supported: egress to a Service is judged against its backends, so select them',
  icmps: 'ICMP rules are not supported',
  authentication: 'authentication is not supported',
  cidrGroupRef: 'CIDR groups are not supported: list the prefixes',
  cidrGroupSelector: 'CIDR groups are not supported: list the prefixes',
  http: 'HTTP rules are not supported: only dns rules',
  kafka: 'Kafka rules are not supported: only dns rules',
  l7proto: 'layer-7 protocols other than DNS are not supported',
  l7: 'layer-7 protocols other than DNS are not supported',
  listener: 'Envoy listeners are not supported',
  serverNames: 'TLS server names are not supported',
  originatingTLS: 'TLS interception is not supported',
  terminatingTLS: 'TLS interception is not supported',
};

function issueMessage(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case 'invalid_type':
      return i.input === undefined ? 'Required value' : `must be of type ${i.expected}`;
    case 'invalid_value':
      return i.values.length === 1
        ? `Unsupported value: ${JSON.stringify(i.input)}: supported value: ${JSON.stringify(i.values[0])}`
        : `Unsupported value: ${JSON.stringify(i.input)}: supported values: ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_big':
      return i.origin === 'array' ? `must have at most ${i.maximum} items` : i.origin === 'string' ? `may not be more than ${i.maximum} characters` : `must be less than or equal to ${i.maximum}`;
    case 'too_small':
      return i.origin === 'array' ? `must have at least ${i.minimum} item${i.minimum === 1 ? '' : 's'}` : i.origin === 'string' ? `must be at least ${i.minimum} character${i.minimum === 1 ? '' : 's'}` : `must be greater than or equal to ${i.minimum}`;
    default:
      return i.message;
  }
}

function issues(error: z.ZodError): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const i of error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const key of i.keys) {
        const path = formatPath([...i.path, key]);
        out.push({ path, message: UNSUPPORTED[key] ? `unknown field: ${UNSUPPORTED[key]}` : 'unknown field: not part of the Palisade policy API' });
      }
    } else {
      out.push({ path: formatPath(i.path), message: issueMessage(i) });
    }
  }
  return out;
}

/**
 * Validates a PalisadeNetworkPolicy or PalisadeClusterNetworkPolicy object (or
 * a manifest of one). The errors name the field: `spec.egress[0].toPorts[0].ports[0].port: ...`.
 */
export function validatePalisadePolicy(obj: unknown): PalisadePolicyValidation {
  const r = objectSchema.safeParse(obj, { reportInput: true });
  if (!r.success) {
    const list = issues(r.error);
    return { ok: false, issues: list, errors: list.map((i) => `${i.path}: ${i.message}`) };
  }
  return { ok: true, spec: normalize(r.data.spec) };
}
