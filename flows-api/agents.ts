// The aggregated API server's side of the agents' flow API (agent/flows/
// server.ts): every node's agent at https://<InternalIP>:<port>, verified
// by the cluster's CA, authenticated by the token only this server holds.
// Lists are merged in time order; follows are multiplexed as they come.
import { request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { FlowCriteria } from '../lib/flow-filter.ts';
import type { Flow } from '../lib/flow.ts';

export interface AgentTarget {
  node: string;
  ip: string;
}

export interface AgentsOptions {
  ca: Buffer;
  token: string;
  port: number;
  /**
   * The name every agent's certificate must carry (one certificate shared by
   * all agents, as the Helm chart issues it). Default: each agent's own
   * address, which its certificate must then hold as an IP SAN.
   */
  serverName?: string;
  /** The nodes whose agents to ask. */
  targets: () => Promise<AgentTarget[]>;
  /** Per-agent timeout of a list or status request. Default 5 s. */
  timeoutMs?: number;
}

export interface MergedFlows {
  items: Flow[];
  nodes: Record<string, { lost: unknown }>;
  unreachable: string[];
}

export class Agents {
  readonly #o: AgentsOptions;

  constructor(options: AgentsOptions) {
    this.#o = options;
  }

  /** The flows of every agent that match, merged in time order; the last `last` of them. */
  async list(criteria: FlowCriteria, last: number | undefined, sinceMs: number | undefined): Promise<MergedFlows> {
    const query = flowQuery(criteria, { last, sinceMs });
    const targets = await this.#o.targets();
    const answers = await Promise.all(targets.map(async (t) => {
      try {
        return { t, body: JSON.parse(await this.#get(t, `/v1/flows?${query}`)) as { flows: Flow[]; lost: unknown } };
      } catch (error) {
        return { t, error: (error as Error).message };
      }
    }));
    const merged: MergedFlows = { items: [], nodes: {}, unreachable: [] };
    for (const a of answers) {
      if ('error' in a) merged.unreachable.push(`${a.t.node}: ${a.error}`);
      else {
        merged.items.push(...a.body.flows);
        merged.nodes[a.t.node] = { lost: a.body.lost };
      }
    }
    merged.items = mergeByTime(merged.items);
    if (last !== undefined) merged.items = merged.items.slice(Math.max(0, merged.items.length - last));
    return merged;
  }

  /** Every agent's status (or why it cannot be reached). */
  async statuses(): Promise<Array<{ node: string; reachable: boolean; error?: string; status?: unknown }>> {
    const targets = await this.#o.targets();
    return Promise.all(targets.map(async (t) => {
      try {
        return { node: t.node, reachable: true, status: JSON.parse(await this.#get(t, '/v1/status')) as unknown };
      } catch (error) {
        return { node: t.node, reachable: false, error: (error as Error).message };
      }
    }));
  }

  /** What the maps of `node`'s agent say of a new connection of pod `pod` (`/v1/verdict`). */
  async verdict(node: string, params: URLSearchParams): Promise<{ status: number; body: unknown }> {
    const target = (await this.#o.targets()).find((t) => t.node === node);
    if (!target) return { status: 503, body: { error: `no agent known on node ${node}` } };
    try {
      return { status: 200, body: JSON.parse(await this.#get(target, `/v1/verdict?${params}`)) as unknown };
    } catch (error) {
      return { status: 503, body: { error: `the agent of ${node}: ${(error as Error).message}` } };
    }
  }

  /**
   * Follows every agent: each line an agent streams (`{"flow"}`, `{"missed"}`)
   * is handed to `onLine` as it comes; an agent that cannot be reached or
   * drops out is told as `{"error", "node"}`. `pause`/`resume` hold all the
   * streams back while the caller's client does not take its bytes, so that
   * the agents, not this server, count what is missed.
   */
  async follow(criteria: FlowCriteria, onLine: (line: string) => void, backlog: { last?: number; sinceMs?: number } = {}): Promise<{ pause(): void; resume(): void; close(): void; done: Promise<void> }> {
    const query = flowQuery(criteria, { follow: true, ...backlog });
    const responses: IncomingMessage[] = [];
    const requests: Array<ReturnType<typeof request>> = [];
    const targets = await this.#o.targets();
    const done = Promise.all(targets.map((t) => new Promise<void>((resolve) => {
      const req = request(this.#options(t, `/v1/flows?${query}`), (res) => {
        if (res.statusCode !== 200) {
          onLine(JSON.stringify({ error: `agent answered ${res.statusCode}`, node: t.node }));
          res.resume();
          res.on('end', resolve);
          return;
        }
        responses.push(res);
        let partial = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const lines = (partial + chunk).split('\n');
          partial = lines.pop()!;
          for (const line of lines) if (line) onLine(line);
        });
        res.on('end', () => {
          onLine(JSON.stringify({ error: 'the agent ended the stream', node: t.node }));
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('error', (error) => {
        onLine(JSON.stringify({ error: error.message, node: t.node }));
        resolve();
      });
      req.end();
      requests.push(req);
    }))).then(() => undefined);
    return {
      pause: () => responses.forEach((r) => r.pause()),
      resume: () => responses.forEach((r) => r.resume()),
      close: () => requests.forEach((r) => r.destroy()),
      done,
    };
  }

  #options(t: AgentTarget, path: string): RequestOptions {
    return {
      host: t.ip,
      port: this.#o.port,
      path,
      ca: this.#o.ca,
      ...(this.#o.serverName ? { servername: this.#o.serverName } : {}),
      headers: { authorization: `Bearer ${this.#o.token}` },
    };
  }

  #get(t: AgentTarget, path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(this.#options(t, path), (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => {
          if (res.statusCode === 200) resolve(body);
          else reject(new Error(`agent answered ${res.statusCode}: ${body.slice(0, 200)}`));
        });
      });
      req.setTimeout(this.#o.timeoutMs ?? 5000, () => req.destroy(new Error('timed out')));
      req.on('error', reject).end();
    });
  }
}

/** Flows of several nodes in time order (RFC 3339 with fixed-width nanoseconds sorts as text). */
export function mergeByTime(flows: Flow[]): Flow[] {
  return flows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

function flowQuery(criteria: FlowCriteria, o: { last?: number; sinceMs?: number; follow?: boolean }): string {
  const q = new URLSearchParams({ criteria: JSON.stringify(criteria) });
  if (o.last !== undefined) q.set('last', String(o.last));
  if (o.sinceMs !== undefined) q.set('since', String(o.sinceMs));
  if (o.follow) q.set('follow', 'true');
  return q.toString();
}
