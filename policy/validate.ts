// Validation of networking.k8s.io/v1 NetworkPolicy objects: what the API
// server rejects (ValidateNetworkPolicy in k8s.io/kubernetes
// pkg/apis/networking/validation), plus what Palisade cannot enforce.
// Issues are machine-readable: a Kubernetes field error type as `code`
// (FieldValueInvalid, FieldValueRequired, ...; `PalisadeUnsupported` for what
// the API accepts but Palisade refuses) and a Kubernetes field path
// (`spec.ingress[0].from[1].ipBlock.except[0]`), ready for events and status.
//
// Lenient where the API server is: host bits in ipBlock.cidr and except are
// accepted (and normalized in the returned policy), and so are leading
// zeros in IPv4 octets (read as decimal, like Go's ParseCIDRSloppy). Unknown
// fields are dropped, null reads as absent, `spec` and `spec.podSelector`
// default to `{}` as they do on the server. IPv6 CIDRs are accepted.

import { z } from 'zod';
import { parseCidr, prefixContains, type CidrError } from './cidr.ts';
import type {
  IPBlock,
  LabelSelector,
  LabelSelectorRequirement,
  NetworkPolicyInput,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  NetworkPolicySpec,
  PolicyType,
  Protocol,
} from './types.ts';

export type IssueCode =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueForbidden'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeInvalid'
  | 'PalisadeUnsupported';

export interface ValidationIssue {
  code: IssueCode;
  /** Kubernetes field path, e.g. `spec.egress[0].ports[1].endPort`. */
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; policy: NetworkPolicyInput } | { ok: false; issues: ValidationIssue[] };

// ---- Kubernetes name and label formats (k8s.io/apimachinery/pkg/util/validation) ----

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function dnsSubdomainErrors(v: string): string[] {
  const e: string[] = [];
  if (v.length > 253) e.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(v)) e.push("must be a lowercase RFC 1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric");
  return e;
}

export function dnsLabelErrors(v: string): string[] {
  const e: string[] = [];
  if (v.length > 63) e.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(v)) e.push("must be a lowercase RFC 1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric");
  return e;
}

/** IsQualifiedName: a label key, `[prefix/]name`. */
export function labelKeyErrors(v: string): string[] {
  const e: string[] = [];
  const parts = v.split('/');
  let name = parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) e.push('prefix part must be non-empty');
    else e.push(...dnsSubdomainErrors(prefix).map((m) => `prefix part ${m}`));
  } else if (parts.length > 2) {
    return ["a qualified name must be a name with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"];
  }
  if (name.length === 0) e.push('name part must be non-empty');
  else if (name.length > 63) e.push('name part must be no more than 63 characters');
  if (name.length > 0 && !QUALIFIED_NAME.test(name)) {
    e.push("name part must consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric");
  }
  return e;
}

export function labelValueErrors(v: string): string[] {
  const e: string[] = [];
  if (v.length > 63) e.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(v)) e.push("must be empty or consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric");
  return e;
}

/** IsValidPortName (IANA_SVC_NAME). */
export function portNameErrors(v: string): string[] {
  const e: string[] = [];
  if (v.length > 15) e.push('must be no more than 15 characters');
  if (!/^[-a-z0-9]+$/.test(v)) e.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(v)) e.push('must contain at least one letter (a-z)');
  if (v.includes('--')) e.push('must not contain consecutive hyphens');
  if (v.startsWith('-') || v.endsWith('-')) e.push('must not begin or end with a hyphen');
  return e;
}

const CIDR_MESSAGES: Record<CidrError, [IssueCode, string]> = {
  syntax: ['FieldValueInvalid', 'must be a valid CIDR value (e.g. 10.9.8.0/24 or 2001:db8::/64)'],
  'prefix-length': ['FieldValueInvalid', 'must be a valid CIDR value: the prefix length is out of range'],
  'ipv4-mapped': ['PalisadeUnsupported', 'IPv4-mapped IPv6 prefixes are not supported: write the IPv4 prefix'],
};

// ---- schema ----

type Ctx = z.RefinementCtx;
type PathPart = string | number;

function issue(ctx: Ctx, code: IssueCode, message: string, path: PathPart[] = []) {
  ctx.addIssue({ code: 'custom', message, path, params: { k8s: code } });
}

/** A string checked by `errors`; each message becomes a FieldValueInvalid issue. */
const checkedString = (errors: (v: string) => string[]) =>
  z.string().superRefine((v, ctx) => {
    for (const m of errors(v)) issue(ctx, 'FieldValueInvalid', m);
  });

const requirementSchema = z
  .object({
    key: checkedString(labelKeyErrors),
    operator: z.string(),
    values: z.array(checkedString(labelValueErrors)).nullish(),
  })
  .superRefine((r, ctx) => {
    const n = r.values?.length ?? 0;
    if (r.operator === 'In' || r.operator === 'NotIn') {
      if (n === 0) issue(ctx, 'FieldValueRequired', "must be specified when `operator` is 'In' or 'NotIn'", ['values']);
    } else if (r.operator === 'Exists' || r.operator === 'DoesNotExist') {
      if (n > 0) issue(ctx, 'FieldValueForbidden', "may not be specified when `operator` is 'Exists' or 'DoesNotExist'", ['values']);
    } else {
      issue(ctx, 'FieldValueInvalid', `not a valid selector operator: ${JSON.stringify(r.operator)}`, ['operator']);
    }
  });

const selectorSchema = z.object({
  matchLabels: z
    .record(z.string(), z.string())
    .superRefine((labels, ctx) => {
      for (const [k, v] of Object.entries(labels)) {
        // A map key: rendered `matchLabels[key]`, as Kubernetes field paths do.
        for (const m of labelKeyErrors(k)) issue(ctx, 'FieldValueInvalid', `key ${JSON.stringify(k)}: ${m}`, [`[${k}]`]);
        for (const m of labelValueErrors(v)) issue(ctx, 'FieldValueInvalid', `value ${JSON.stringify(v)}: ${m}`, [`[${k}]`]);
      }
    })
    .nullish(),
  matchExpressions: z.array(requirementSchema).nullish(),
});

const cidrSchema = z.string().superRefine((v, ctx) => {
  if (v === '') return issue(ctx, 'FieldValueRequired', 'must be specified');
  const p = parseCidr(v);
  if (typeof p === 'string') issue(ctx, ...CIDR_MESSAGES[p]);
});

const ipBlockSchema = z
  .object({ cidr: cidrSchema, except: z.array(cidrSchema).nullish() })
  .superRefine((b, ctx) => {
    const cidr = parseCidr(b.cidr);
    if (typeof cidr === 'string') return;
    (b.except ?? []).forEach((e, i) => {
      const p = parseCidr(e);
      if (typeof p === 'string') return;
      if (!prefixContains(cidr, p) || p.len <= cidr.len) issue(ctx, 'FieldValueInvalid', 'must be a strict subset of `cidr`', ['except', i]);
    });
  });

const peerSchema = z
  .object({
    podSelector: selectorSchema.nullish(),
    namespaceSelector: selectorSchema.nullish(),
    ipBlock: ipBlockSchema.nullish(),
  })
  .superRefine((p, ctx) => {
    const n = [p.podSelector, p.namespaceSelector, p.ipBlock].filter((x) => x != null).length;
    if (n === 0) issue(ctx, 'FieldValueRequired', 'must specify a peer');
    else if (n > 1 && p.ipBlock != null) issue(ctx, 'FieldValueForbidden', 'may not specify both ipBlock and another peer');
  });

const PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'SCTP'];

const portSchema = z
  .object({
    protocol: z
      .string()
      .superRefine((v, ctx) => {
        if (!PROTOCOLS.includes(v)) issue(ctx, 'FieldValueNotSupported', `Unsupported value: ${JSON.stringify(v)}: supported values: "TCP", "UDP", "SCTP"`);
      })
      .nullish(),
    port: z.union([z.number(), z.string()], { error: 'must be a port number or a port name' }).nullish(),
    endPort: z.number().nullish(),
  })
  .superRefine((p, ctx) => {
    const range = (v: number, at: string) => {
      if (!Number.isInteger(v)) issue(ctx, 'FieldValueTypeInvalid', 'must be an integer', [at]);
      else if (v < 1 || v > 65535) issue(ctx, 'FieldValueInvalid', 'must be between 1 and 65535, inclusive', [at]);
    };
    if (typeof p.port === 'number') {
      range(p.port, 'port');
      if (p.endPort != null) {
        if (p.endPort < p.port) issue(ctx, 'FieldValueInvalid', 'must be greater than or equal to `port`', ['endPort']);
        range(p.endPort, 'endPort');
      }
    } else if (typeof p.port === 'string') {
      if (p.endPort != null) issue(ctx, 'FieldValueInvalid', 'may not be specified when `port` is non-numeric', ['endPort']);
      for (const m of portNameErrors(p.port)) issue(ctx, 'FieldValueInvalid', m, ['port']);
    } else if (p.endPort != null) {
      issue(ctx, 'FieldValueInvalid', 'may not be specified when `port` is not specified', ['endPort']);
    }
  });

const ingressRuleSchema = z.object({ from: z.array(peerSchema).nullish(), ports: z.array(portSchema).nullish() });
const egressRuleSchema = z.object({ to: z.array(peerSchema).nullish(), ports: z.array(portSchema).nullish() });

const specSchema = z
  .object({
    podSelector: selectorSchema.nullish(),
    policyTypes: z.array(z.string()).nullish(),
    ingress: z.array(ingressRuleSchema).nullish(),
    egress: z.array(egressRuleSchema).nullish(),
  })
  .superRefine((s, ctx) => {
    const types = s.policyTypes ?? [];
    if (types.length > 2) return issue(ctx, 'FieldValueInvalid', 'may not specify more than two policyTypes', ['policyTypes']);
    types.forEach((t, i) => {
      if (t !== 'Ingress' && t !== 'Egress') {
        issue(ctx, 'FieldValueNotSupported', `Unsupported value: ${JSON.stringify(t)}: supported values: "Ingress", "Egress"`, ['policyTypes', i]);
      }
    });
  });

/** The NetworkPolicy object schema (issues carry `params.k8s` with the field error type). */
export const networkPolicySchema = z
  .object({
    apiVersion: z.string().nullish(),
    kind: z.string().nullish(),
    metadata: z.object({
      name: checkedString(dnsSubdomainErrors),
      namespace: checkedString(dnsLabelErrors),
    }),
    spec: specSchema.nullish(),
  })
  .superRefine((o, ctx) => {
    if (o.apiVersion != null && o.apiVersion !== 'networking.k8s.io/v1') {
      issue(ctx, 'FieldValueNotSupported', `Unsupported value: ${JSON.stringify(o.apiVersion)}: supported values: "networking.k8s.io/v1"`, ['apiVersion']);
    }
    if (o.kind != null && o.kind !== 'NetworkPolicy') {
      issue(ctx, 'FieldValueNotSupported', `Unsupported value: ${JSON.stringify(o.kind)}: supported values: "NetworkPolicy"`, ['kind']);
    }
  });

type Parsed = z.infer<typeof networkPolicySchema>;

// ---- conversion to the compiler's input ----

const normalizeCidr = (s: string) => {
  const p = parseCidr(s);
  return typeof p === 'string' ? s : p.text;
};

function selector(s: z.infer<typeof selectorSchema> | null | undefined): LabelSelector {
  const out: LabelSelector = {};
  if (s?.matchLabels) out.matchLabels = { ...s.matchLabels };
  if (s?.matchExpressions) {
    out.matchExpressions = s.matchExpressions.map((e) => {
      const r: LabelSelectorRequirement = { key: e.key, operator: e.operator as LabelSelectorRequirement['operator'] };
      if (e.values) r.values = [...e.values];
      return r;
    });
  }
  return out;
}

function peer(p: z.infer<typeof peerSchema>): NetworkPolicyPeer {
  const out: NetworkPolicyPeer = {};
  if (p.podSelector != null) out.podSelector = selector(p.podSelector);
  if (p.namespaceSelector != null) out.namespaceSelector = selector(p.namespaceSelector);
  if (p.ipBlock != null) {
    const b: IPBlock = { cidr: normalizeCidr(p.ipBlock.cidr) };
    if (p.ipBlock.except) b.except = p.ipBlock.except.map(normalizeCidr);
    out.ipBlock = b;
  }
  return out;
}

function port(p: z.infer<typeof portSchema>): NetworkPolicyPort {
  const out: NetworkPolicyPort = {};
  if (p.protocol != null) out.protocol = p.protocol as Protocol;
  if (p.port != null) out.port = p.port;
  if (p.endPort != null) out.endPort = p.endPort;
  return out;
}

function toInput(o: Parsed): NetworkPolicyInput {
  const s = o.spec ?? {};
  const spec: NetworkPolicySpec = { podSelector: selector(s.podSelector) };
  if (s.policyTypes) spec.policyTypes = s.policyTypes as PolicyType[];
  if (s.ingress) {
    spec.ingress = s.ingress.map((r) => ({
      ...(r.from ? { from: r.from.map(peer) } : {}),
      ...(r.ports ? { ports: r.ports.map(port) } : {}),
    }));
  }
  if (s.egress) {
    spec.egress = s.egress.map((r) => ({
      ...(r.to ? { to: r.to.map(peer) } : {}),
      ...(r.ports ? { ports: r.ports.map(port) } : {}),
    }));
  }
  return { namespace: o.metadata.namespace, name: o.metadata.name, spec };
}

/** `spec.ingress[0].from` from `['spec', 'ingress', 0, 'from']`; parts written `[key]` (map keys) are kept as they are. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    const text = String(part);
    if (typeof part === 'number') out += `[${part}]`;
    else if (text.startsWith('[')) out += text;
    else if (out === '') out = text;
    else if (/^[A-Za-z][A-Za-z0-9]*$/.test(text)) out += `.${text}`;
    else out += `[${text}]`;
  }
  return out;
}

function issueCode(i: z.core.$ZodIssue): IssueCode {
  if (i.code === 'custom') return ((i.params as { k8s?: IssueCode } | undefined)?.k8s ?? 'FieldValueInvalid');
  if (i.code === 'invalid_type' && i.input === undefined) return 'FieldValueRequired';
  if (i.code === 'invalid_type' || i.code === 'invalid_union') return 'FieldValueTypeInvalid';
  return 'FieldValueInvalid';
}

/** Validates a NetworkPolicy object (as read from the API or a manifest). */
export function validateNetworkPolicy(obj: unknown): ValidationResult {
  const r = networkPolicySchema.safeParse(obj, { reportInput: true });
  if (!r.success) {
    return {
      ok: false,
      issues: r.error.issues.map((i) => {
        const code = issueCode(i);
        return { code, path: formatPath(i.path), message: code === 'FieldValueRequired' && i.code === 'invalid_type' ? 'Required value' : i.message };
      }),
    };
  }
  return { ok: true, policy: toInput(r.data) };
}
