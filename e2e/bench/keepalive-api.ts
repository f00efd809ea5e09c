// A minimal JSON client for the API server over ONE kept-alive HTTPS
// connection. The generated client opens a new connection (through the test
// cluster's two socat hops, plus a TLS handshake) for every call, so the
// moment its call returns lags the API server's accepting the write by tens
// of milliseconds; timing writes from a kept-alive connection puts "the call
// returned" within a local round trip of "the write was accepted".
// Objects are sent as the API spells them (NetworkPolicy's `from`, not the
// client model's `_from`).
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface ApiResponse {
  status: number;
  body: Record<string, unknown>;
}

export class KeepAliveApi {
  readonly #server: string;
  readonly #options: https.RequestOptions;

  private constructor(server: string, options: https.RequestOptions) {
    this.#server = server;
    this.#options = options;
  }

  static async connect(kubeconfig: KubeConfig): Promise<KeepAliveApi> {
    const server = kubeconfig.getCurrentCluster()?.server;
    if (!server) throw new Error('kubeconfig has no current cluster');
    const options: https.RequestOptions = {};
    await kubeconfig.applyToHTTPSOptions(options);
    options.agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: options.ca, cert: options.cert, key: options.key });
    return new KeepAliveApi(server, options);
  }

  /** Sends one request; rejects on a non-2xx answer with its message. */
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, this.#server),
        { ...this.#options, method, headers: { accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const status = res.statusCode ?? 0;
            let parsed: Record<string, unknown> = {};
            try {
              parsed = JSON.parse(text) as Record<string, unknown>;
            } catch {
              // not JSON: keep it empty, the status says enough
            }
            if (status >= 200 && status < 300) resolve({ status, body: parsed });
            else reject(new Error(`${method} ${path}: HTTP ${status}: ${String(parsed.message ?? text.slice(0, 500))}`));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    (this.#options.agent as https.Agent).destroy();
  }
}
