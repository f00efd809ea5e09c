// Thin shell around iproute2, run through execa. Everything that changes
// links, addresses, neighbours and routes goes through here, so the rest of the
// agent deals in plain values. Several commands are sent as one `ip -batch`
// to keep the number of processes per CNI call small (a pod ADD is two).
import { execa } from 'execa';

/** Route protocol number that marks routes Palisade owns (see /etc/iproute2/rt_protos). */
export const PALISADE_ROUTE_PROTO = 231;

export class IprouteError extends Error {
  readonly stderr: string;
  constructor(message: string, stderr: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IprouteError';
    this.stderr = stderr;
  }
}

/** Where a batch runs: the agent's own network namespace, or another one by path. */
export type Netns = { kind: 'self' } | { kind: 'path'; path: string };
export const SELF: Netns = { kind: 'self' };

/**
 * One `ip -batch` line from its tokens. `ip` splits batch lines at
 * whitespace and reads quotes, backslashes and `#` (a comment) specially, so
 * a token holding any of those, or a control character, would change the
 * command; such a token is refused, never escaped.
 */
export function batchLine(...tokens: string[]): string {
  for (const token of tokens) {
    if (!SAFE_TOKEN.test(token)) throw new TypeError(`unsafe token for ip -batch: ${JSON.stringify(token)}`);
  }
  return tokens.join(' ');
}
/** Printable ASCII except space, `"`, `#`, `'` and `\`. */
const SAFE_TOKEN = /^[!$-&(-[\]-~]+$/;

/**
 * Runs `ip -batch -` with the given commands, stopping at the first failure.
 * A command holding a line break, a NUL, a quote, a backslash or `#` is
 * refused: it would not be the one command it looks like.
 */
export async function ipBatch(netns: Netns, commands: string[]): Promise<void> {
  if (commands.length === 0) return;
  const bad = commands.find((c) => /[\x00-\x1f\x7f"'\\#]/.test(c));
  if (bad !== undefined) throw new TypeError(`refusing ip -batch command ${JSON.stringify(bad)}`);
  const [file, args] =
    netns.kind === 'self' ? ['ip', ['-batch', '-']] : ['nsenter', [`--net=${netns.path}`, 'ip', '-batch', '-']];
  const result = await execa(file, args, { input: commands.join('\n') + '\n', reject: false });
  if (result.exitCode !== 0) {
    const stderr = String(result.stderr).trim();
    throw new IprouteError(`ip failed${netns.kind === 'path' ? ` in ${netns.path}` : ''}: ${stderr}`, stderr, {
      cause: result,
    });
  }
}

/** Runs one `ip -json ...` query and returns its parsed output. */
export async function ipJson<T>(netns: Netns, args: string[]): Promise<T[]> {
  const [file, full] =
    netns.kind === 'self' ? ['ip', ['-json', ...args]] : ['nsenter', [`--net=${netns.path}`, 'ip', '-json', ...args]];
  const result = await execa(file, full, { reject: false });
  if (result.exitCode !== 0) {
    const stderr = String(result.stderr).trim();
    throw new IprouteError(`ip ${args.join(' ')} failed: ${stderr}`, stderr, { cause: result });
  }
  const text = String(result.stdout).trim();
  return text === '' ? [] : (JSON.parse(text) as T[]);
}
