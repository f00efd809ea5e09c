// Pure: the plugin's exit codes, and what an answer of the API server means
// for the user. Scripts rely on the codes (cli/README.md); every message
// says what to do next, because the user cannot see the server's side.

export const EXIT = {
  OK: 0,
  /** policy trace: the connection is denied; status: an agent is not ready. */
  DENIED: 1,
  /** Bad flags, arguments or filters: nothing was asked of the cluster. */
  USAGE: 2,
  /** RBAC refused a request. */
  FORBIDDEN: 3,
  /** Palisade's API (the APIService) or its agents cannot be reached. */
  UNAVAILABLE: 4,
  /** A pod, namespace or node that does not exist. */
  NOT_FOUND: 5,
  OTHER: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(EXIT.USAGE, message);

/** What a request asked for, in RBAC's terms, so that a refusal can say what to ask for. */
export interface Asked {
  verb: 'get' | 'list' | 'watch';
  /** Plural resource: `flows`, `pods`, `namespaces`, ... */
  resource: string;
  /** API group; '' for the core group. */
  group: string;
  namespace?: string;
  name?: string;
}

export const FLOWS_GROUP = 'flows.palisade.io';
export const APISERVICE = 'v1alpha1.flows.palisade.io';
export const AGENTS_HINT = 'check the palisade agents with kubectl -n palisade-system get pods';
const APISERVICE_HINT = `check kubectl get apiservice ${APISERVICE} and kubectl -n palisade-system get pods`;

const VERBING = { get: 'getting', list: 'listing', watch: 'watching' } as const;

const singular = (plural: string) => plural.replace(/ies$/, 'y').replace(/s$/, '');

/** `flows.flows.palisade.io`, `pods` */
const qualified = (a: Asked) => (a.group ? `${a.resource}.${a.group}` : a.resource);

function statusMessage(body: unknown): string {
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return typeof body === 'string' ? body.trim().slice(0, 300) : '';
}

/** The error for an answer of the API server other than 200 (a Status object, or text). */
export function apiError(asked: Asked, code: number, body: unknown): CliError {
  const said = statusMessage(body);
  const server = said ? `\n  (the API server said: ${said})` : '';
  const palisade = asked.group.endsWith('palisade.io');
  switch (code) {
    case 400:
      return new CliError(EXIT.USAGE, `bad request: ${said || 'the API server refused the request'}`);
    case 401:
      return new CliError(EXIT.OTHER, `the API server did not accept your credentials (401 Unauthorized): check the user of your kubeconfig's context${server}`);
    case 403: {
      const what = asked.name ? `${singular(asked.resource)} ${asked.name}` : asked.resource;
      const where = asked.namespace ? ` in namespace ${asked.namespace}` : asked.name ? '' : ' across the cluster';
      const verbs = asked.verb === 'get' ? 'get' : asked.verb === 'watch' ? 'watch' : 'get/list';
      return new CliError(EXIT.FORBIDDEN, `RBAC forbids ${VERBING[asked.verb]} ${what}${where}: ask for ${verbs} on ${qualified(asked)}${where}${server}`);
    }
    case 404: {
      const ns = /namespaces "([^"]+)" not found/.exec(said);
      if (ns) return new CliError(EXIT.NOT_FOUND, `unknown namespace ${ns[1]}`);
      if (asked.name) {
        const what = asked.resource === 'pods' && asked.namespace ? `pod ${asked.namespace}/${asked.name}` : `${singular(asked.resource)} ${asked.name}`;
        return new CliError(EXIT.NOT_FOUND, `unknown ${what}`);
      }
      // The group itself is missing: the APIService or the CRDs are not installed.
      if (palisade) return new CliError(EXIT.UNAVAILABLE, `Palisade's API (${asked.group}) is not served by this cluster: is Palisade installed? ${APISERVICE_HINT}${server}`);
      return new CliError(EXIT.NOT_FOUND, `not found: ${said || qualified(asked)}`);
    }
    case 503:
      if (/no Palisade agent reachable/.test(said)) return new CliError(EXIT.UNAVAILABLE, `no agent reachable: ${AGENTS_HINT}${server}`);
      if (palisade) return new CliError(EXIT.UNAVAILABLE, `Palisade's API is not available: ${APISERVICE_HINT}${server}`);
      return new CliError(EXIT.OTHER, `the API server is unavailable (503)${server}`);
    default:
      // 502 and 504 come from the aggregator when Palisade's API server does not answer.
      if (palisade && code >= 502 && code <= 504) return new CliError(EXIT.UNAVAILABLE, `Palisade's API is not available (${code}): ${APISERVICE_HINT}${server}`);
      return new CliError(EXIT.OTHER, `the API server answered ${code} ${VERBING[asked.verb]} ${qualified(asked)}${server}`);
  }
}

/** The error for a request that never got an answer (the API server itself is unreachable). */
export function connectionError(server: string, cause: Error): CliError {
  return new CliError(EXIT.OTHER, `cannot reach the Kubernetes API server at ${server}: ${cause.message}; check your kubeconfig's context (kubectl cluster-info)`, { cause });
}

/** Any error as an exit code and the lines to print. */
export function describe(error: unknown): { exitCode: ExitCode; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  return { exitCode: EXIT.OTHER, message: `unexpected error: ${(error as Error)?.stack ?? String(error)}` };
}
