// The scenario file format, versions 1 and 2 (shared/scenarios/FORMAT.md): parses and
// validates one file into a typed Scenario. Everything that can be checked
// without a cluster is checked here, so that a bad file fails before anything
// is built, with an error naming the file and the step.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LabelsSchema, type Labels } from './labels.ts';
import { parseMatrix, type Matrix } from './matrix.ts';
import { substitute } from './placeholders.ts';
import { PROTOCOLS, resolvePort, type ResolvedPort } from './ports.ts';

export { namespaceLabels, podLabels } from './labels.ts';

export type Cluster = { namespaces: string[]; pods: string[] };

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
export type ProbeStep = { type: 'probe'; expect: Matrix; explain: Explanation[] } & ResolvedPort;
export type Step =
  | { type: 'apply'; objects: KubeObject[] }
  | { type: 'wait'; seconds: number }
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

const DEFAULT_CLUSTER: Cluster = { namespaces: ['x', 'y', 'z'], pods: ['a', 'b', 'c'] };

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
      // Version 2 keys whose capabilities are not built yet: accepted here, refused below by name.
      external: z.unknown().optional(),
      dns: z.unknown().optional(),
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
    from: z.array(z.string()).optional(),
    to: z.array(z.string()).optional(),
    explain: z.array(z.unknown()).optional(),
  }),
  wait: z.strictObject({ seconds: z.number().positive().max(600) }),
  setDNS: z.unknown(),
};

const POLICY_NAME = /^[A-Z][A-Za-z]+ ([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;
const PolicyNameSchema = z.string().regex(POLICY_NAME, { error: (issue) => `"${String(issue.input)}" is not a policy as KIND NAMESPACE/NAME or KIND NAME` });
const ExplanationSchema = z.union([
  z.strictObject({ from: z.string(), to: z.string(), verdict: z.literal('dropped'), at: z.enum(['ingress', 'egress']), by: z.array(PolicyNameSchema).min(1) }),
  z.strictObject({ from: z.string(), to: z.string(), verdict: z.literal('forwarded'), egress: z.array(PolicyNameSchema), ingress: z.array(PolicyNameSchema) }),
]);

/** What a version 2 key needs that this project has not built yet: a scenario using it fails with this, never passes. */
const NOT_YET = {
  external: 'hosts outside the cluster (`external`, needs routing to the world): not supported by this runner yet',
  dns: 'names (`dns`, needs DNS-aware policy, issue 10): not supported by this runner yet',
  setDNS: 'names (`setDNS`, needs DNS-aware policy, issue 10): not supported by this runner yet',
  fromTo: 'probes with `from`/`to` naming hosts or names need `external`/`dns`, not supported by this runner yet',
};
type StepKey = keyof typeof STEP_SCHEMAS;
const STEP_TYPES = Object.keys(STEP_SCHEMAS) as StepKey[];

/** Every pod of the cluster as `N/P`, namespace by namespace. */
export function clusterPods(cluster: Cluster): string[] {
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
  const { steps, cluster: { external, dns, ...cluster }, ...rest } = top.data;
  if (external !== undefined || dns !== undefined) {
    if (rest.version < 2) throw new ScenarioError(file, undefined, 'cluster.external and cluster.dns need version: 2');
    throw new ScenarioError(file, undefined, external !== undefined ? NOT_YET.external : NOT_YET.dns);
  }
  return { ...rest, cluster, steps: steps.map((raw, i) => parseStep(raw, { file, index: i + 1 }, cluster, rest.version)) };
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
      if ((step.from ?? []).some((p) => !pods.includes(p)) || (step.to ?? []).some((p) => !pods.includes(p))) fail(NOT_YET.fromTo);
      if (step.from || step.to) fail('`from`/`to` restricted to pods is not supported by this runner yet');
      const port = check('', () => resolvePort(step.port, step.protocol));
      const explain = (step.explain ?? []).map((e, i) => {
        const entry = parse(ExplanationSchema, e, `explain[${i}]: `);
        check(`explain[${i}]: `, () => podRef(entry.from, cluster));
        check(`explain[${i}]: `, () => podRef(entry.to, cluster));
        return entry;
      });
      return { type, ...port, expect: check('', () => parseMatrix(step.expect, pods)), explain };
    }
    case 'wait':
      return { type, seconds: parse(STEP_SCHEMAS.wait, value).seconds };
    case 'setDNS':
      return fail(NOT_YET.setDNS);
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
  // Substituting a dummy address for every pod checks each placeholder's form and pod.
  substitute(object, new Map(clusterPods(cluster).map((pod) => [pod, '0.0.0.0'])));
}

/** What the runner does with an applied object: Namespace and Pod objects only set labels (FORMAT.md). */
export type ApplyTarget = LabelNamespaceStep | LabelPodStep | { type: 'object'; object: KubeObject };

/** Routes one applied object; throws an Error if a Namespace or Pod is not one of the cluster's. */
export function classifyApplyObject(object: KubeObject, cluster: Cluster): ApplyTarget {
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

function checkNamespace(namespace: string | undefined, cluster: Cluster): void {
  if (namespace !== undefined && !cluster.namespaces.includes(namespace)) {
    throw new Error(`namespace "${namespace}" is not in the cluster (${cluster.namespaces.join(', ')})`);
  }
}

function podRef(pod: string, cluster: Cluster): { pod: string; namespace: string; name: string } {
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
