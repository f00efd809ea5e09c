// Parses and validates what the runtime passes to the CNI plugin: the
// CNI_* environment and the network configuration on stdin (CNI spec 1.1).
// Everything wrong is reported as a CniError naming the variable or field.
import { z } from 'zod';
import { validNetnsPath } from '../../datapath/pod-link.ts';
import { CniCode, CniError } from './errors.ts';

export const SUPPORTED_VERSIONS = ['1.0.0', '1.1.0'] as const;
/** STATUS and GC arrived with spec 1.1.0. */
const SINCE_1_1 = new Set(['STATUS', 'GC']);

const commands = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof commands)[number];

// Every field has an alphabet and a length limit, so nothing a runtime sends
// can grow without bound or reach a command line unchecked. Limits:
export const LIMITS = {
  /** The spec sets no maximum; runtimes use 64 hex digits. */
  containerId: 256,
  /** IFNAMSIZ (16) less the terminating NUL. */
  ifName: 15,
  /** A netns path is a short file path (/var/run/netns/..., /proc/PID/ns/net). */
  netns: 1024,
  cniArgs: 4096,
  cniPath: 4096,
  /** Kubernetes: a namespace is a DNS-1123 label, a pod name a DNS-1123 subdomain. */
  podNamespace: 63,
  podName: 253,
  /** sizeof(sockaddr_un.sun_path) less the NUL. */
  agentSocket: 107,
} as const;

/** A bounded string whose too-long message says the limit (the value itself is not echoed). */
const bounded = (max: number) => z.string().max(max, `is longer than ${max} characters`);

// Spec: "must start with an alphanumeric character, optionally followed by
// any combination of alphanumerics, underscore, dot or hyphen".
const containerId = bounded(LIMITS.containerId).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be alphanumeric, "_", "." or "-", starting alphanumeric');
// The kernel (dev_valid_name): at most 15 characters, not "." or "..", no
// "/", ":" or whitespace. Stricter here: printable ASCII only, and none of
// the characters `ip -batch` reads as quoting or comments (" ' \ #).
const ifName = bounded(LIMITS.ifName)
  .min(1)
  .refine(
    (s) => s !== '.' && s !== '..' && /^[\x21-\x7e]+$/.test(s) && !/[/:"'\\#]/.test(s),
    'must be printable ASCII, not "." or "..", without whitespace or any of / : " \' \\ #',
  );
const netnsPath = bounded(LIMITS.netns).refine(
  validNetnsPath,
  'must be an absolute path of letters, digits and / _ . - : @ + = , only (no whitespace or control characters)',
);
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const podNamespace = bounded(LIMITS.podNamespace).regex(dns1123Label, 'is not a Kubernetes namespace name (a DNS-1123 label)');
const podName = bounded(LIMITS.podName).refine(
  (s) => s.split('.').every((label) => label.length <= 63 && dns1123Label.test(label)),
  'is not a Kubernetes object name (a DNS-1123 subdomain)',
);
/** Any other text variable: bounded, no control characters. */
const text = (max: number) => bounded(max).regex(/^[^\x00-\x1f\x7f]*$/, 'must not contain control characters');

/** CNI_ARGS keys Palisade reads, and the rule each value must follow. */
const knownArgs: Record<string, z.ZodType<string>> = {
  K8S_POD_NAMESPACE: podNamespace,
  K8S_POD_NAME: podName,
  K8S_POD_INFRA_CONTAINER_ID: containerId,
};

const attachment = z.object({ containerID: containerId, ifname: ifName });

// Spec: the network name "must start with an alphanumeric character,
// optionally followed by any combination of one or more alphanumeric
// characters, underscore, dot (.) or hyphen (-)".
const networkConfig = z
  .object({
    cniVersion: bounded(32),
    name: bounded(253).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be alphanumeric, "_", "." or "-", starting alphanumeric'),
    type: bounded(255).min(1),
    agentSocket: bounded(LIMITS.agentSocket).regex(/^\/[^\x00-\x1f\x7f\\]*$/, 'must be an absolute path without control characters or backslashes').optional(),
    prevResult: z.unknown().optional(),
    'cni.dev/valid-attachments': z.array(attachment).max(65_536).optional(),
  })
  .loose();
export type NetworkConfig = z.infer<typeof networkConfig>;

export interface Invocation {
  command: CniCommand;
  config: NetworkConfig;
  containerId: string;
  ifName: string;
  netns: string;
  /** CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, ...). */
  args: Record<string, string>;
}

export function parseInvocation(env: Record<string, string>, stdin: string): Invocation {
  const command = env.CNI_COMMAND;
  if (!command || !(commands as readonly string[]).includes(command)) {
    throw new CniError(CniCode.invalidEnvironment, `CNI_COMMAND must be one of ${commands.join(', ')}, got "${command ?? ''}"`);
  }
  const config = parseConfig(stdin, command as CniCommand);
  if (SINCE_1_1.has(command) && config.cniVersion !== '1.1.0') {
    throw new CniError(CniCode.incompatibleVersion, `${command} needs cniVersion 1.1.0, config has ${config.cniVersion}`);
  }
  const needsContainer = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  // Checked whenever they are set, even by a command that ignores them.
  optionalField(env, 'CNI_PATH', text(LIMITS.cniPath));
  const invocation: Invocation = {
    command: command as CniCommand,
    config,
    containerId: needsContainer ? field(env, 'CNI_CONTAINERID', containerId) : (optionalField(env, 'CNI_CONTAINERID', containerId), ''),
    ifName: needsContainer ? field(env, 'CNI_IFNAME', ifName) : (optionalField(env, 'CNI_IFNAME', ifName), ''),
    // DEL may come after the namespace is gone, so CNI_NETNS is optional there.
    netns: command === 'ADD' || command === 'CHECK' ? field(env, 'CNI_NETNS', netnsPath) : optionalField(env, 'CNI_NETNS', netnsPath),
    args: parseCniArgs(optionalField(env, 'CNI_ARGS', text(LIMITS.cniArgs))),
  };
  return invocation;
}

/** How a value appears in a message: quoted and escaped, and cut short when long. */
export function describeValue(value: string): string {
  const shown = JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  return value.length > 64 ? `${shown} (${value.length} characters)` : shown;
}

function invalid(name: string, value: string, issue: string): CniError {
  return new CniError(CniCode.invalidEnvironment, `${name} ${describeValue(value)} ${issue}`);
}

function parseConfig(stdin: string, command: CniCommand): NetworkConfig {
  if (stdin.trim() === '') throw new CniError(CniCode.decodeFailure, 'network configuration on stdin is empty');
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(CniCode.decodeFailure, 'network configuration on stdin is not valid JSON', String(error), { cause: error });
  }
  if (command === 'VERSION') {
    // VERSION only needs cniVersion; a missing one means the oldest caller.
    const version = z.object({ cniVersion: z.string() }).safeParse(json);
    return { cniVersion: version.success ? version.data.cniVersion : '1.0.0', name: 'version', type: 'palisade' };
  }
  const parsed = networkConfig.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CniError(CniCode.invalidConfig, `network configuration field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(parsed.data.cniVersion)) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `cniVersion ${parsed.data.cniVersion} is not supported`,
      `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return parsed.data;
}

function field(env: Record<string, string>, name: string, schema: z.ZodType<string>): string {
  const value = env[name];
  if (value === undefined || value === '') throw new CniError(CniCode.invalidEnvironment, `${name} is required`);
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(name, value, parsed.error.issues[0]!.message);
  return parsed.data;
}

/** A variable that may be absent or empty, but is checked when it has a value. */
function optionalField(env: Record<string, string>, name: string, schema: z.ZodType<string>): string {
  return env[name] ? field(env, name, schema) : '';
}

/**
 * CNI_ARGS is "K1=V1;K2=V2"; a malformed pair is an error, not something to
 * skip. Keys are identifiers; the values Palisade reads follow their own rules.
 */
export function parseCniArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.invalidEnvironment, `CNI_ARGS entry ${describeValue(pair)} is not KEY=VALUE`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(key)) {
      throw new CniError(CniCode.invalidEnvironment, `CNI_ARGS key ${describeValue(key)} must be 1 to 64 letters, digits, "_", "." or "-"`);
    }
    const rule = knownArgs[key];
    if (rule && value !== '') {
      const parsed = rule.safeParse(value);
      if (!parsed.success) throw invalid(`CNI_ARGS ${key}`, value, parsed.error.issues[0]!.message);
    }
    args[key] = value;
  }
  return args;
}
