// The plugin's only I/O with the cluster: HTTPS requests to the Kubernetes
// API server with the user's kubeconfig credentials (as kubectl would send
// them), Palisade's aggregated API included. Nothing here interprets
// answers beyond turning failures into CliErrors (errors.ts).
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { apiError, CliError, connectionError, EXIT, usageError, type Asked } from './errors.ts';

export interface ClusterFlags {
  kubeconfig?: string;
  context?: string;
}

/** A request that found nothing to read within this long failed (a follow has no limit). */
const REQUEST_TIMEOUT_MS = 60_000;
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class Api {
  readonly #kc: KubeConfig;
  readonly server: URL;
  /** The context's namespace, `default` when it names none. */
  readonly namespace: string;
  readonly context: string;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new CliError(EXIT.OTHER, `the kubeconfig's context ${JSON.stringify(kc.getCurrentContext())} names no cluster: check kubectl config view`);
    this.server = new URL(cluster.server);
    this.context = kc.getCurrentContext();
    this.namespace = kc.getContextObject(this.context)?.namespace || 'default';
  }

  /** The kubeconfig as kubectl finds it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context picks a context. */
  static load(flags: ClusterFlags, env: NodeJS.ProcessEnv = process.env): Api {
    const kc = new KubeConfig();
    try {
      if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
      else if (env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config')) || existsSync(SERVICE_ACCOUNT_TOKEN)) kc.loadFromDefault();
      else throw new Error('none found: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config');
    } catch (error) {
      throw new CliError(EXIT.OTHER, `cannot load the kubeconfig: ${(error as Error).message}`, { cause: error });
    }
    if (flags.context) {
      if (!kc.getContextObject(flags.context)) throw usageError(`no context ${JSON.stringify(flags.context)} in the kubeconfig (kubectl config get-contexts lists them)`);
      kc.setCurrentContext(flags.context);
    }
    return new Api(kc);
  }

  /** GET `path` and its JSON body; any other answer than 200 is a CliError about `asked`. */
  async get<T>(path: string, asked: Asked): Promise<T> {
    const res = await this.#open(path, REQUEST_TIMEOUT_MS);
    const text = await readAll(res).catch((error: Error) => Promise.reject(connectionError(this.server.origin, error)));
    const body = parseJson(text);
    if (res.statusCode !== 200) throw apiError(asked, res.statusCode ?? 0, body ?? text);
    if (body === undefined) throw new CliError(EXIT.OTHER, `the API server's answer to ${path} is not JSON: ${text.slice(0, 200)}`);
    return body as T;
  }

  /**
   * GET a stream of JSON lines (`follow=true`), handing each line to `onLine`
   * as it arrives. `done` resolves when the server ends the stream or
   * `close()` is called, and rejects when the request fails.
   */
  async stream(path: string, asked: Asked, onLine: (line: string) => void): Promise<{ done: Promise<void>; close(): void }> {
    const res = await this.#open(path, undefined);
    if (res.statusCode !== 200) {
      const text = await readAll(res).catch(() => '');
      throw apiError(asked, res.statusCode ?? 0, parseJson(text) ?? text);
    }
    let closed = false;
    const done = new Promise<void>((resolve, reject) => {
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (line.trim()) onLine(line);
      });
      res.on('end', () => resolve());
      res.on('close', () => (closed || res.complete ? resolve() : reject(connectionError(this.server.origin, new Error('the stream was cut off')))));
      res.on('error', (error) => (closed ? resolve() : reject(connectionError(this.server.origin, error))));
    });
    return {
      done,
      close: () => {
        closed = true;
        res.destroy();
      },
    };
  }

  async #open(path: string, timeoutMs: number | undefined): Promise<http.IncomingMessage> {
    const base = this.server.pathname.replace(/\/+$/, '');
    const options: https.RequestOptions = {
      protocol: this.server.protocol,
      hostname: this.server.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.server.port || (this.server.protocol === 'http:' ? 80 : 443),
      path: `${base}${path}`,
      method: 'GET',
      headers: { accept: 'application/json', 'user-agent': 'kubectl-palisade' },
    };
    try {
      await this.#kc.applyToHTTPSOptions(options);
    } catch (error) {
      throw new CliError(EXIT.OTHER, `cannot use the credentials of context ${this.context}: ${(error as Error).message}`, { cause: error });
    }
    return new Promise((resolve, reject) => {
      const req = (this.server.protocol === 'http:' ? http : https).request(options, resolve);
      if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
      req.on('error', (error) => reject(connectionError(this.server.origin, error)));
      req.end();
    });
  }
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
