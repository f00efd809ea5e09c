// The agent's flow API (HTTPS), for Palisade's aggregated API server only:
// every request must carry the bearer token of --flows-token-file, which
// only that server holds; users reach flows through the Kubernetes API and
// its RBAC, never here (docs/adr/0006-flows.md).
//
//   GET /v1/flows?criteria=JSON&last=N&since=MS   {node, flows, lost}
//   GET /v1/flows?follow=true&criteria=JSON       NDJSON: {"flow": ...} per flow, {"missed": N} when this
//                                                 client fell behind and N flows were dropped for it
//   GET /v1/status                                the node's flow and datapath status
//   GET /v1/verdict?pod=NS/NAME&direction=&peer=&protocol=&port=   what the node's maps say of a new connection
//
// A follower whose connection cannot take its flows (TCP backpressure) has
// them queued up to a bound, then dropped and counted; one that falls too
// far behind is disconnected. Nothing a client does can stall the agent.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CriteriaError, flowFilter, type FlowCriteria } from '../../lib/flow-filter.ts';
import type { Flow } from '../../lib/flow.ts';
import { FlowLines } from './flow-lines.ts';
import type { FlowPipeline } from './pipeline.ts';

export interface FlowServerOptions {
  listen: { host: string; port: number };
  cert: Buffer;
  key: Buffer;
  token: string;
  node: string;
  pipeline: FlowPipeline;
  /** The node's datapath status for /v1/status. */
  status: () => Promise<Record<string, unknown>>;
  /** What the node's maps say of a new connection of a local pod (agent/map-verdict.ts), for /v1/verdict. */
  verdict?: (pod: string, q: { direction: 'ingress' | 'egress'; peer: string; protocol: 'TCP' | 'UDP' | 'SCTP'; port: number }) => unknown;
  log: (line: string) => void;
  /** A follower's queue bound, and how many missed flows get it cut off. */
  followQueue?: number;
  followCutOff?: number;
}

/** Flows of a follower's backlog written per turn of the event loop. */
const BACKLOG_SLICE = 2000;

export async function serveFlows(o: FlowServerOptions): Promise<Server> {
  const expected = Buffer.from(`Bearer ${o.token}`);
  const authorized = (req: IncomingMessage) => {
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  // Followers' lines are written by a worker thread: the TLS stays here, the JSON goes there.
  const lines = new FlowLines(o.log);
  const server = createServer({ cert: o.cert, key: o.key }, (req, res) => {
    void handle(req, res).catch((error: unknown) => {
      o.log(`flows api: ${req.url}: ${(error as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: (error as Error).message });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorized(req)) return send(res, 401, { error: 'this API serves Palisade\'s aggregated API server only' });
    const url = new URL(req.url ?? '/', 'https://agent');
    if (req.method !== 'GET') return send(res, 405, { error: 'GET only' });
    if (url.pathname === '/v1/status') return send(res, 200, { node: o.node, ...(await o.status()) });
    if (url.pathname === '/v1/verdict' && o.verdict) {
      const p = url.searchParams;
      const direction = p.get('direction');
      const protocol = p.get('protocol');
      const port = Number(p.get('port'));
      const peer = p.get('peer') ?? '';
      if ((direction !== 'ingress' && direction !== 'egress') || (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') || !(port >= 1 && port <= 65535) || !/^\d+\.\d+\.\d+\.\d+$/.test(peer)) {
        return send(res, 400, { error: 'pod, direction (ingress|egress), peer (IPv4), protocol (TCP|UDP|SCTP) and port are required' });
      }
      const verdict = o.verdict(p.get('pod') ?? '', { direction, peer, protocol, port });
      return verdict === undefined ? send(res, 404, { error: `no endpoint of ${p.get('pod')} on ${o.node}` }) : send(res, 200, { node: o.node, ...(verdict as object) });
    }
    if (url.pathname !== '/v1/flows') return send(res, 404, { error: `no ${url.pathname}` });
    let filter: ReturnType<typeof flowFilter>;
    try {
      filter = flowFilter(JSON.parse(url.searchParams.get('criteria') ?? '{}') as FlowCriteria);
    } catch (error) {
      return send(res, 400, { error: error instanceof CriteriaError ? error.message : `criteria: ${(error as Error).message}` });
    }
    const last = url.searchParams.has('last') ? Number(url.searchParams.get('last')) : undefined;
    const since = url.searchParams.has('since') ? Number(url.searchParams.get('since')) : undefined;
    if ((last !== undefined && !(Number.isInteger(last) && last >= 0)) || (since !== undefined && !Number.isFinite(since))) {
      return send(res, 400, { error: 'last must be a count and since a time in ms' });
    }
    const following = url.searchParams.get('follow') === 'true';
    // A follow starts now unless asked for the last N or those since a time.
    const stored = following && last === undefined && since === undefined ? [] : o.pipeline.store.query({ filter, last, sinceMs: since });
    if (!following) return send(res, 200, { node: o.node, flows: stored.map((s) => s.flow), lost: o.pipeline.loss() });
    await follow(res, filter, stored.map((s) => s.flow));
  }

  async function follow(res: ServerResponse, filter: ReturnType<typeof flowFilter>, backlog: Flow[]): Promise<void> {
    const follower = o.pipeline.store.follow(filter, { queueLimit: o.followQueue ?? 10_000, cutOffAfterMissed: o.followCutOff ?? 1_000_000 });
    res.on('close', () => follower.close());
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    // Waiting for the client to take its bytes never outlasts the follower: cut off, it is dropped.
    const write = async (chunk: string | Uint8Array) => {
      if (!res.write(chunk)) {
        let done!: () => void;
        const drained = new Promise<void>((resolve) => (done = resolve));
        res.once('drain', done);
        res.once('close', done);
        await Promise.race([drained, follower.whenClosed]);
        // Listeners of a wait that ended otherwise would pile up on a long follow.
        res.off('drain', done);
        res.off('close', done);
      }
    };
    // A backlog (--last, --since) goes out in slices, the event loop free between them: the
    // pipeline keeps reading the ring while a whole store is sent.
    for (let at = 0; at < backlog.length && !res.destroyed; at += BACKLOG_SLICE) {
      await write(await lines.lines(backlog.slice(at, at + BACKLOG_SLICE)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let batch = await follower.next(); batch && !res.destroyed; batch = await follower.next()) {
      if (batch.missed > 0) {
        o.pipeline.consumerMissed += batch.missed;
        await write(`${JSON.stringify({ missed: batch.missed, node: o.node })}\n`);
      }
      if (batch.flows.length > 0) await write(await lines.lines(batch.flows.map((s) => s.flow)));
    }
    // A follower cut off cannot even take a last line: its connection is dropped.
    if (follower.closed === 'cut-off') res.destroy();
    else res.end();
  }

  server.once('close', () => void lines.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => void lines.close().finally(() => reject(error)));
    server.listen(o.listen.port, o.listen.host, () => resolve());
  });
  return server;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
