// Parses and validates what the runtime passes to the CNI plugin: the
// CNI_* environment and the network configuration on stdin (CNI spec 1.1).
// Everything wrong is reported as a CniError naming the variable or field.
import { z } from 'zod';
import { CniCode, CniError } from './errors.ts';

export const SUPPORTED_VERSIONS = ['1.0.0', '1.1.0'] as const;
/** STATUS and GC arrived with spec 1.1.0. */
const SINCE_1_1 = new Set(['STATUS', 'GC']);

const commands = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof commands)[number];

// Spec: "must start with an alphanumeric character, optionally followed by
// any combination of alphanumerics, underscore, dot or hyphen".
const containerId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be alphanumeric, "_", "." or "-"');
// Spec: at most 15 characters, not "." or "..", no "/", ":" or whitespace.
const ifName = z
  .string()
  .min(1)
  .max(15)
  .refine((s) => s !== '.' && s !== '..' && !/[/:\s]/.test(s), 'must not be "." or ".." nor contain "/", ":" or whitespace');

const attachment = z.object({ containerID: containerId, ifname: ifName });

const networkConfig = z
  .object({
    cniVersion: z.string(),
    name: z.string().min(1),
    type: z.string().min(1),
    agentSocket: z.string().optional(),
    prevResult: z.unknown().optional(),
    'cni.dev/valid-attachments': z.array(attachment).optional(),
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
  const invocation: Invocation = {
    command: command as CniCommand,
    config,
    containerId: needsContainer ? field(env, 'CNI_CONTAINERID', containerId) : '',
    ifName: needsContainer ? field(env, 'CNI_IFNAME', ifName) : '',
    // DEL may come after the namespace is gone, so CNI_NETNS is optional there.
    netns: command === 'ADD' || command === 'CHECK' ? field(env, 'CNI_NETNS', z.string().min(1)) : (env.CNI_NETNS ?? ''),
    args: parseCniArgs(env.CNI_ARGS ?? ''),
  };
  return invocation;
}

function parseConfig(stdin: string, command: CniCommand): NetworkConfig {
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
  const parsed = schema.safeParse(env[name] ?? '');
  if (!parsed.success) {
    const value = env[name];
    throw new CniError(
      CniCode.invalidEnvironment,
      value === undefined || value === '' ? `${name} is required` : `${name} "${value}" ${parsed.error.issues[0]!.message}`,
    );
  }
  return parsed.data;
}

/** CNI_ARGS is "K1=V1;K2=V2"; a malformed pair is an error, not something to skip. */
export function parseCniArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.invalidEnvironment, `CNI_ARGS entry "${pair}" is not KEY=VALUE`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}
