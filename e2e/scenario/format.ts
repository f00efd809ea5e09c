// The scenario file format, versions 1 and 2 (shared/scenarios/FORMAT.md): parses and
// validates one file into a typed Scenario. Everything that can be checked
// without a cluster is checked here, so that a bad file fails before anything
// is built, with an error naming the file and the step.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LabelsSchema, type Labels } from './labels.ts';
import { parseMatrix, type Matrix } from './matrix.ts';
import { substitute } from './placeholders.ts';
import { POD_PORTS, PROTOCOLS, resolvePort, type ResolvedPort } from './ports.ts';
import { EXTERNAL_PORTS, EXTERNAL_PROTOCOLS, inWorldRanges, WORLD_RANGES } from '../cluster/world-ranges.ts';

export { namespaceLabels, podLabels } from './labels.ts';

/** A host outside the cluster (version 2, `external`); probes and matrices write it `world/NAME`. */
export type ExternalHostSpec = { name: string; ip: string };
/** A name the cluster's DNS server answers (version 2, `dns`, `setDNS`): A records of these external hosts, with this TTL. */
export type DnsNameSpec = { name: string; hosts: string[]; ttl: number };
export type Cluster = { namespaces: string[]; pods: string[]; external: ExternalHostSpec[]; dns: DnsNameSpec[] };

/** A Kubernetes object as written in the file, validated only as far as the runner needs. */
export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
};
export type ObjectRef = { kind: string; namespace?: string; name: string };

/** `labels` are the step's own labels: combine them with namespaceLabels()/podLabels(). */
export type LabelNamespaceStep = { type: 'labelNamespace'; namespace: string; labels: Labels };
/** `pod` is `N/P`, split into `namespace` N and `name` P. */
export type LabelPodStep = { type: 'labelPod'; pod: string; namespace: string; name: string; labels: Labels };
/** A connection whose flows must explain its verdict (version 2, `explain`). */
export type Explanation =
  | { from: string; to: string; verdict: 'dropped'; at: 'ingress' | 'egress'; by: string[] }
  | { from: string; to: string; verdict: 'forwarded'; egress: string[]; ingress: string[] };
/** `expect.rows` are the sources (`from`), `expect.cols` the destinations (`to`): pods `N/P` and external hosts `world/NAME`. */
export type ProbeStep = { type: 'probe'; expect: Matrix; explain: Explanation[] } & ResolvedPort;
/** Replaces a name's answer from then on; `hosts: []` removes the name. */
export type SetDnsStep = { type: 'setDNS' } & DnsNameSpec;
export type Step =
  | { type: 'apply'; objects: KubeObject[] }
  | { type: 'wait'; seconds: number }
  | SetDnsStep
  | { type: 'delete'; objects: ObjectRef[] }
  | LabelNamespaceStep
  | LabelPodStep
  | ProbeStep;
export type StepType = Step['type'];

export type Scenario = { version: 1 | 2; name: string; description?: string; source?: string; cluster: Cluster; steps: Step[] };

/** Where an error is: a step's 1-based index and, once known, its type. */
export type StepRef = { index: number; type?: string };

/** A scenario that cannot run; the message reads `FILE: step N (TYPE): DETAIL`. */
export class ScenarioError extends Error {
  readonly file: string;
  readonly step: StepRef | undefined;
  readonly detail: string;
  constructor(file: string, step: StepRef | undefined, detail: string, options?: { cause?: unknown }) {
    const where = step === undefined ? '' : `step ${step.index}${step.type === undefined ? '' : ` (${step.type})`}: `;
    super(`${file}: ${where}${detail}`, options);
    this.name = 'ScenarioError';
    this.file = file;
    this.step = step;
    this.detail = detail;
  }
}

const DEFAULT_CLUSTER = { namespaces: ['x', 'y', 'z'], pods: ['a', 'b', 'c'] };
/** How matrices, `from` and `to` write an external host: `world/NAME`. */
export const WORLD = 'world';

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, { error: (issue) => `"${String(issue.input)}" is not a DNS label` });
const nameList = (defaults: string[]) =>
  z
    .array(dnsLabel)
    .min(1)
    .refine((list) => new Set(list).size === list.length, 'names must be unique')
    .default(defaults);

const TopSchema = z.strictObject({
  version: z.union([z.literal(1), z.literal(2)], { error: (issue) => (issue.input === undefined ? 'is missing (must be 1 or 2)' : 'must be 1 or 2') }),
  name: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'must be kebab-case'),
  description: z.string().optional(),
  source: z.string().optional(),
  // prefault: an absent cluster is parsed as {}, which takes both defaults.
  cluster: z
    .strictObject({
      namespaces: nameList(DEFAULT_CLUSTER.namespaces),
      pods: nameList(DEFAULT_CLUSTER.pods),
      external: z.array(z.strictObject({ name: dnsLabel, ip: z.string() })).optional(),
      dns: z.array(z.unknown()).optional(),
    })
    .prefault({}),
  steps: z.array(z.unknown()).min(1, 'needs at least one step'),
});

const KubeObjectSchema = z.looseObject({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  metadata: z.looseObject({ name: z.string().min(1), namespace: z.string().min(1).optional() }),
});

// The value under each step's key. Apply objects are checked one by one
// afterwards, so that an error can name the object.
const STEP_SCHEMAS = {
  apply: z.array(z.unknown()),
  delete: z.array(z.strictObject({ kind: z.string().min(1), namespace: z.string().min(1).optional(), name: z.string().min(1) })),
  labelNamespace: z.strictObject({ namespace: z.string(), labels: LabelsSchema.default({}) }),
  labelPod: z.strictObject({ pod: z.string(), labels: LabelsSchema.default({}) }),
  probe: z.strictObject({
    port: z.union([z.number(), z.string()]),
    protocol: z.enum(PROTOCOLS).optional(),
    expect: z.string(),
    from: z.array(z.string()).min(1).optional(),
    to: z.array(z.string()).min(1).optional(),
    explain: z.array(z.unknown()).optional(),
  }),
  wait: z.strictObject({ seconds: z.number().positive().max(600) }),
  setDNS: z.unknown(),
};

/** FORMAT.md: a name's TTL defaults to 30 s. */
export const DEFAULT_DNS_TTL = 30;
const DnsNameSchema = z.strictObject({
  name: z.string(),
  hosts: z.array(dnsLabel),
  ttl: z.number().int().min(0).max(86_400).default(DEFAULT_DNS_TTL),
});

const POLICY_NAME = /^[A-Z][A-Za-z]+ ([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;
const PolicyNameSchema = z.string().regex(POLICY_NAME, { error: (issue) => `"${String(issue.input)}" is not a policy as KIND NAMESPACE/NAME or KIND NAME` });
const ExplanationSchema = z.union([
  z.strictObject({ from: z.string(), to: z.string(), verdict: z.literal('dropped'), at: z.enum(['ingress', 'egress']), by: z.array(PolicyNameSchema).min(1) }),
  z.strictObject({ from: z.string(), to: z.string(), verdict: z.literal('forwarded'), egress: z.array(PolicyNameSchema), ingress: z.array(PolicyNameSchema) }),
]);

type StepKey = keyof typeof STEP_SCHEMAS;
const STEP_TYPES = Object.keys(STEP_SCHEMAS) as StepKey[];

/** Every pod of the cluster as `N/P`, namespace by namespace. */
export function clusterPods(cluster: Pick<Cluster, 'namespaces' | 'pods'>): string[] {
  return cluster.namespaces.flatMap((ns) => cluster.pods.map((pod) => `${ns}/${pod}`));
}

/** Parses and validates the text of one scenario file; `file` is only used in error messages. */
export function parseScenario(text: string, file: string): Scenario {
  let data: unknown;
  try {
    // YAML 1.2 core schema: `y` and `n` are strings, not booleans.
    data = parseYaml(text, { version: '1.2', schema: 'core' });
  } catch (error) {
    throw new ScenarioError(file, undefined, `invalid YAML: ${(error as Error).message}`, { cause: error });
  }
  if (!isMapping(data)) {
    throw new ScenarioError(file, undefined, 'must be a YAML mapping with version, name and steps');
  }
  const top = TopSchema.safeParse(data);
  if (!top.success) throw new ScenarioError(file, undefined, describeIssues(top.error), { cause: top.error });
  const { steps, cluster: { external, dns, ...names }, ...rest } = top.data;
  if ((external !== undefined || dns !== undefined) && rest.version < 2) {
    throw new ScenarioError(file, undefined, 'cluster.external and cluster.dns need version: 2');
  }
  const cluster: Cluster = { ...names, external: external ?? [], dns: [] };
  try {
    checkExternal(cluster);
    cluster.dns = checkDns(dns ?? [], cluster);
  } catch (error) {
    throw new ScenarioError(file, undefined, (error as Error).message, { cause: error });
  }
  return { ...rest, cluster, steps: steps.map((raw, i) => parseStep(raw, { file, index: i + 1 }, cluster, rest.version)) };
}

// External hosts: unique names and addresses in the documentation ranges, and no
// namespace that `world/NAME` could be mistaken for.
function checkExternal(cluster: Cluster): void {
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  cluster.external.forEach(({ name, ip }, i) => {
    if (names.has(name)) throw new Error(`cluster.external[${i}].name: external host "${name}" is given twice`);
    names.add(name);
    if (!inWorldRanges(ip)) {
      throw new Error(`cluster.external[${i}].ip: ${ip} (host "${name}") is not an address in the documentation ranges ${WORLD_RANGES.join(', ')}`);
    }
    const other = addresses.get(ip);
    if (other !== undefined) throw new Error(`cluster.external[${i}].ip: ${ip} is already external host "${other}"'s`);
    addresses.set(ip, name);
  });
  if (cluster.external.length > 0 && cluster.namespaces.includes(WORLD)) {
    throw new Error(`cluster.namespaces: no namespace may be named "${WORLD}" in a cluster with external hosts (they are written ${WORLD}/NAME)`);
  }
}

/** A name as a scenario writes it (`api.example.com`): two labels or more, letters, digits and hyphens, no trailing dot. */
const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)+$/;

/** Whether a probe's end is a name (it has no `/`, as pods and hosts have). */
export function isName(end: string): boolean {
  return !end.includes('/');
}

function checkName(name: string): void {
  if (!DNS_NAME.test(name)) throw new Error(`"${name}" is not a DNS name (two labels or more of letters, digits and hyphens, e.g. api.example.com; no trailing dot)`);
}

// One `dns` entry or `setDNS` value: a valid name and external hosts of the cluster, each once.
function checkDnsName(spec: DnsNameSpec, cluster: Cluster): DnsNameSpec {
  checkName(spec.name);
  const hosts = new Set(cluster.external.map((h) => h.name));
  const seen = new Set<string>();
  for (const host of spec.hosts) {
    if (!hosts.has(host)) throw new Error(`${spec.name}: "${host}" is not an external host of the cluster (${hosts.size === 0 ? 'the cluster has none' : [...hosts].join(', ')})`);
    if (seen.has(host)) throw new Error(`${spec.name}: host "${host}" is listed twice`);
    seen.add(host);
  }
  return { ...spec, name: spec.name.toLowerCase() };
}

function checkDns(entries: unknown[], cluster: Cluster): DnsNameSpec[] {
  const names = new Set<string>();
  return entries.map((raw, i) => {
    const parsed = DnsNameSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`cluster.dns[${i}]: ${describeIssues(parsed.error)}`, { cause: parsed.error });
    let spec: DnsNameSpec;
    try {
      spec = checkDnsName(parsed.data, cluster);
      if (spec.hosts.length === 0) throw new Error(`${spec.name}: has no host (leave a name that does not resolve out)`);
    } catch (error) {
      throw new Error(`cluster.dns[${i}]: ${(error as Error).message}`, { cause: error });
    }
    if (names.has(spec.name)) throw new Error(`cluster.dns[${i}]: name "${spec.name}" is given twice`);
    names.add(spec.name);
    return spec;
  });
}

/** Whether the scenario needs the cluster's DNS server: it lists names, changes them, or probes one. */
export function usesDns(scenario: Pick<Scenario, 'cluster' | 'steps'>): boolean {
  return scenario.cluster.dns.length > 0 || scenario.steps.some((s) => s.type === 'setDNS' || (s.type === 'probe' && s.expect.cols.some(isName)));
}

function parseStep(raw: unknown, at: { file: string; index: number }, cluster: Cluster, version: 1 | 2): Step {
  const expected = `expected exactly one of ${STEP_TYPES.join(', ')}`;
  if (!isMapping(raw)) {
    throw new ScenarioError(at.file, at, `must be a mapping, ${expected}`);
  }
  const keys = Object.keys(raw);
  const [type] = keys;
  if (keys.length !== 1 || type === undefined) {
    throw new ScenarioError(at.file, at, `has ${keys.length} keys (${keys.join(', ')}), ${expected}`);
  }
  if (!isStepType(type)) throw new ScenarioError(at.file, at, `unknown step "${type}", ${expected}`);
  if (version < 2 && (type === 'wait' || type === 'setDNS')) throw new ScenarioError(at.file, { index: at.index, type }, `needs version: 2`);

  const fail = (detail: string, cause?: unknown): never => {
    throw new ScenarioError(at.file, { index: at.index, type }, detail, { cause });
  };
  // Validates with zod, reporting every issue with its path inside the step.
  const parse = <T>(schema: z.ZodType<T>, input: unknown, prefix = ''): T => {
    const result = schema.safeParse(input);
    return result.success ? result.data : fail(prefix + describeIssues(result.error), result.error);
  };
  // Runs a check that throws a plain Error and reports it as this step's error.
  const check = <T>(prefix: string, fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      return fail(prefix + (error as Error).message, error);
    }
  };
  const value = raw[type];

  switch (type) {
    case 'apply': {
      const objects = parse(STEP_SCHEMAS.apply, value).map((object, i) => {
        const { kind, metadata } = parse(KubeObjectSchema, object, `object ${i + 1}: `);
        return check(`object ${i + 1} (${kind} ${metadata.name}): `, () => {
          checkApplyObject(object as KubeObject, cluster);
          return object as KubeObject;
        });
      });
      return { type, objects };
    }
    case 'delete': {
      const objects = parse(STEP_SCHEMAS.delete, value);
      objects.forEach((ref, i) => check(`object ${i + 1}: `, () => checkNamespace(ref.namespace, cluster)));
      return { type, objects };
    }
    case 'labelNamespace': {
      const step = parse(STEP_SCHEMAS.labelNamespace, value);
      check('', () => checkNamespace(step.namespace, cluster));
      return { type, ...step };
    }
    case 'labelPod': {
      const step = parse(STEP_SCHEMAS.labelPod, value);
      return { type, ...check('', () => podRef(step.pod, cluster)), labels: step.labels };
    }
    case 'probe': {
      const step = parse(STEP_SCHEMAS.probe, value);
      if (version < 2 && (step.explain || step.from || step.to)) fail('explain, from and to need version: 2');
      const pods = clusterPods(cluster);
      const from = step.from ? check('from: ', () => probeEnds(step.from!, 'from', cluster)) : pods;
      const to = step.to ? check('to: ', () => probeEnds(step.to!, 'to', cluster)) : pods;
      const port = check('', () => resolvePort(step.port, step.protocol));
      check('', () => checkServed(port, to));
      const explain = (step.explain ?? []).map((e, i) => {
        const entry = parse(ExplanationSchema, e, `explain[${i}]: `);
        check(`explain[${i}]: `, () => podRef(entry.from, cluster));
        check(`explain[${i}]: `, () => podRef(entry.to, cluster));
        return entry;
      });
      return { type, ...port, expect: check('', () => parseMatrix(step.expect, from, to)), explain };
    }
    case 'wait':
      return { type, seconds: parse(STEP_SCHEMAS.wait, value).seconds };
    case 'setDNS': {
      const spec = parse(DnsNameSchema, value);
      return { type, ...check('', () => checkDnsName(spec, cluster)) };
    }
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isStepType(key: string): key is StepKey {
  return (STEP_TYPES as string[]).includes(key);
}

// Checks of an applied object that need no cluster: its namespace, what it
// means if it is a Namespace or a Pod, and its placeholders.
function checkApplyObject(object: KubeObject, cluster: Cluster): void {
  checkNamespace(object.metadata.namespace, cluster);
  classifyApplyObject(object, cluster);
  // Substituting a dummy address for every pod and host checks each placeholder's form, pod and host.
  substitute(object, new Map(clusterPods(cluster).map((pod) => [pod, '0.0.0.0'])), new Map(cluster.external.map((h) => [h.name, h.ip])));
}

/** Every external host as `world/NAME`. */
export function clusterHosts(cluster: Pick<Cluster, 'external'>): string[] {
  return cluster.external.map((h) => `${WORLD}/${h.name}`);
}

// A probe's `from` or `to`: pods and external hosts of the cluster, each once;
// names (DNS) only as destinations, any name (one no `dns` entry gives does not resolve).
function probeEnds(list: string[], role: 'from' | 'to', cluster: Cluster): string[] {
  const pods = new Set(clusterPods(cluster));
  const hosts = new Set(clusterHosts(cluster));
  const seen = new Set<string>();
  for (const end of list) {
    if (seen.has(end)) throw new Error(`"${end}" is listed twice`);
    seen.add(end);
    if (pods.has(end) || hosts.has(end)) continue;
    if (end.startsWith(`${WORLD}/`)) {
      const known = hosts.size === 0 ? 'the cluster has none' : [...hosts].join(', ');
      throw new Error(`"${end}" is not an external host of the cluster (${known})`);
    }
    if (isName(end) && end.includes('.')) {
      if (role === 'from') throw new Error(`"${end}" is a name: only pods and external hosts can be sources`);
      checkName(end);
      continue;
    }
    throw new Error(`"${end}" is neither a pod of the cluster (N/P with N in ${cluster.namespaces.join(', ')} and P in ${cluster.pods.join(', ')}) nor an external host (${WORLD}/NAME)`);
  }
  return list;
}

// FORMAT.md: a probe may name only ports that its destinations serve (a name stands for external hosts).
function checkServed(port: ResolvedPort, to: readonly string[]): void {
  for (const end of to) {
    const host = end.startsWith(`${WORLD}/`) || isName(end);
    const ports: readonly number[] = host ? EXTERNAL_PORTS : POD_PORTS;
    const protocols: readonly string[] = host ? EXTERNAL_PROTOCOLS : PROTOCOLS;
    if (!ports.includes(port.port) || !protocols.includes(port.protocol)) {
      const serves = `${ports.join(', ')} on ${protocols.join(', ')}`;
      throw new Error(`port ${port.portLabel}: ${end} does not serve it (${isName(end) ? 'a name stands for external hosts, which serve' : host ? 'an external host serves' : 'a pod serves'} ${serves})`);
    }
  }
}

/** What the runner does with an applied object: Namespace and Pod objects only set labels (FORMAT.md). */
export type ApplyTarget = LabelNamespaceStep | LabelPodStep | { type: 'object'; object: KubeObject };

/** Routes one applied object; throws an Error if a Namespace or Pod is not one of the cluster's. */
export function classifyApplyObject(object: KubeObject, cluster: Pick<Cluster, 'namespaces' | 'pods'>): ApplyTarget {
  const { kind, metadata } = object;
  if (kind === 'Namespace') {
    checkNamespace(metadata.name, cluster);
    return { type: 'labelNamespace', namespace: metadata.name, labels: labelsOf(metadata) };
  }
  if (kind === 'Pod') {
    if (metadata.namespace === undefined) throw new Error('a Pod needs metadata.namespace');
    return { type: 'labelPod', ...podRef(`${metadata.namespace}/${metadata.name}`, cluster), labels: labelsOf(metadata) };
  }
  return { type: 'object', object };
}

function labelsOf(metadata: KubeObject['metadata']): Labels {
  const labels = LabelsSchema.default({}).safeParse(metadata['labels']);
  if (!labels.success) throw new Error(`metadata.labels: ${describeIssues(labels.error)}`, { cause: labels.error });
  return labels.data;
}

function checkNamespace(namespace: string | undefined, cluster: Pick<Cluster, 'namespaces'>): void {
  if (namespace !== undefined && !cluster.namespaces.includes(namespace)) {
    throw new Error(`namespace "${namespace}" is not in the cluster (${cluster.namespaces.join(', ')})`);
  }
}

function podRef(pod: string, cluster: Pick<Cluster, 'namespaces' | 'pods'>): { pod: string; namespace: string; name: string } {
  const [namespace = '', name = '', ...extra] = pod.split('/');
  if (extra.length > 0 || !cluster.namespaces.includes(namespace) || !cluster.pods.includes(name)) {
    throw new Error(`pod "${pod}" is not in the cluster (pods are N/P with N in ${cluster.namespaces.join(', ')} and P in ${cluster.pods.join(', ')})`);
  }
  return { pod, namespace, name };
}

// One line for all issues, each with its path (`cluster.namespaces[1]: ...`).
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i > 0 ? '.' : ''}${String(key)}`));
      return (path.length > 0 ? `${path.join('')}: ` : '') + issue.message;
    })
    .join('; ');
}
