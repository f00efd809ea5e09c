// Palisade's aggregated API server (docs/adr/0006-flows.md): kube-apiserver
// proxies /apis/flows.palisade.io/... here with the user it authenticated in
// X-Remote-User/-Group headers, over TLS with its front-proxy client
// certificate. This server trusts those headers only from that certificate,
// asks the API server (SubjectAccessReview) whether the user may list or
// watch flows where they asked, and fans out to the agents, restricting
// the flows to the namespace asked for.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { AuthorizationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CriteriaError, flowFilter, type FlowCriteria } from '../lib/flow-filter.ts';
import type { Agents } from './agents.ts';
import { access, forbiddenMessage, GROUP, GROUP_VERSION, route, status, type Access } from './routes.ts';

export interface FlowsApiOptions {
  listen: { host: string; port: number };
  cert: Buffer;
  key: Buffer;
  /** The CA of kube-apiserver's front-proxy client certificate (--requestheader-client-ca-file). */
  requestHeaderCa: Buffer;
  /** Common names that certificate may have (--requestheader-allowed-names); empty: any the CA signed. */
  allowedNames: string[];
  kubeconfig: KubeConfig;
  agents: Agents;
  log: (line: string) => void;
}

interface Caller {
  user: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export async function serveFlowsApi(o: FlowsApiOptions): Promise<Server> {
  const authz = o.kubeconfig.makeApiClient(AuthorizationV1Api);
  const core = o.kubeconfig.makeApiClient(CoreV1Api);

  /** The user kube-apiserver vouches for, or undefined when the request did not come through it. */
  const callerOf = (req: IncomingMessage): Caller | undefined => {
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) return undefined;
    const cn = socket.getPeerCertificate()?.subject?.CN;
    if (o.allowedNames.length > 0 && !o.allowedNames.includes(String(cn))) return undefined;
    const user = req.headers['x-remote-user'];
    if (typeof user !== 'string' || !user) return undefined;
    const groups = ([] as string[]).concat(req.headers['x-remote-group'] ?? []).flatMap((g) => g.split(',')).map((g) => g.trim()).filter(Boolean);
    const extra: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!name.startsWith('x-remote-extra-') || value === undefined) continue;
      extra[decodeURIComponent(name.slice('x-remote-extra-'.length))] = ([] as string[]).concat(value);
    }
    return { user, groups, extra };
  };

  const allowed = async (caller: Caller, a: Access): Promise<boolean> => {
    const review = await authz.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: caller.user,
          groups: caller.groups,
          extra: caller.extra,
          resourceAttributes: { group: GROUP, version: GROUP_VERSION.split('/')[1], resource: a.resource, verb: a.verb, ...(a.namespace ? { namespace: a.namespace } : {}) },
        },
      },
    });
    return review.status?.allowed === true;
  };

  const server = createServer({ cert: o.cert, key: o.key, ca: o.requestHeaderCa, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    void handle(req, res).catch((error: unknown) => {
      o.log(`flows-api: ${req.url}: ${(error as Error).message}`);
      if (!res.headersSent) send(res, 500, status(500, 'InternalError', (error as Error).message));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const r = route(req.url ?? '/');
    if (r?.kind === 'health') return send(res, 200, 'ok');
    const caller = callerOf(req);
    if (!caller) return send(res, 401, status(401, 'Unauthorized', 'Palisade\'s flow API is reached through the Kubernetes API server only'));
    if (!r) return send(res, 404, status(404, 'NotFound', `the server could not find the requested resource ${req.url}`));
    if (r.kind === 'discovery') return send(res, 200, r.document);
    if (req.method !== 'GET') return send(res, 405, status(405, 'MethodNotAllowed', 'only get, list and watch'));
    const need = access(r)!;
    if (!(await allowed(caller, need))) return send(res, 403, status(403, 'Forbidden', forbiddenMessage(caller.user, need)));
    if (r.kind === 'agents') {
      return send(res, 200, { kind: 'AgentList', apiVersion: GROUP_VERSION, items: await o.agents.statuses() });
    }
    if (r.kind === 'verdicts') {
      // ?pod=NAME (in the namespace)&direction=&peer=&protocol=&port=: asked of the agent on the pod's node.
      const name = r.query.get('pod') ?? '';
      const pod = await core.readNamespacedPod({ namespace: r.namespace, name }).catch((error: { code?: number }) => {
        if (error.code === 404) return undefined;
        throw error;
      });
      if (!pod?.spec?.nodeName) return send(res, 404, status(404, 'NotFound', `pods "${name}" not found in namespace "${r.namespace}" (or not on a node yet)`));
      const params = new URLSearchParams(r.query);
      params.set('pod', `${r.namespace}/${name}`);
      const answer = await o.agents.verdict(pod.spec.nodeName, params);
      if (answer.status !== 200) return send(res, answer.status, status(answer.status, 'ServiceUnavailable', String((answer.body as { error?: string }).error)));
      return send(res, 200, { kind: 'Verdict', apiVersion: GROUP_VERSION, ...(answer.body as object) });
    }

    let criteria: FlowCriteria;
    try {
      criteria = JSON.parse(r.query.get('criteria') ?? '{}') as FlowCriteria;
      flowFilter(criteria);
    } catch (error) {
      return send(res, 400, status(400, 'BadRequest', error instanceof CriteriaError ? error.message : `criteria: ${(error as Error).message}`));
    }
    // A namespace that does not exist is an error, never an empty answer; so is one named in a filter.
    for (const ns of new Set([...(r.namespace ? [r.namespace] : []), ...(criteria.namespaces ?? [])])) {
      const found = await core.readNamespace({ name: ns }).then(() => true, (error: { code?: number }) => {
        if (error.code === 404) return false;
        throw error;
      });
      if (!found) return send(res, 404, status(404, 'NotFound', `namespaces "${ns}" not found`));
    }
    if (r.namespace) criteria = { ...criteria, namespaces: [r.namespace] };
    const last = r.query.has('last') ? Number(r.query.get('last')) : undefined;
    const since = r.query.has('since') ? Number(r.query.get('since')) : undefined;
    if ((last !== undefined && !(Number.isInteger(last) && last >= 0)) || (since !== undefined && !Number.isFinite(since))) {
      return send(res, 400, status(400, 'BadRequest', 'last must be a count and since a time in milliseconds since the epoch'));
    }
    if (!r.follow) {
      const merged = await o.agents.list(criteria, last, since);
      if (merged.unreachable.length > 0 && Object.keys(merged.nodes).length === 0) {
        return send(res, 503, status(503, 'ServiceUnavailable', `no Palisade agent reachable: ${merged.unreachable.join('; ')}`));
      }
      return send(res, 200, { kind: 'FlowList', apiVersion: GROUP_VERSION, ...merged });
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const stream = await o.agents.follow(criteria, (line) => {
      if (!res.write(`${line}\n`)) {
        stream?.pause();
        res.once('drain', () => stream?.resume());
      }
    }, { last, sinceMs: since });
    res.on('close', () => stream.close());
    await stream.done;
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.host, () => resolve());
  });
  return server;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
