// Removing namespaces on a real cluster without the namespace controller's
// fixed wait. kube-controller-manager's namespace controller starts on a
// deleted namespace only 5 s after its deletion (namespaceDeletionGracePeriod,
// a constant: time for other API servers and etcd members of an HA control
// plane to see the deletion), so every namespace removal costs 5-6 s: half of
// a scenario on real nodes. With one API server and one etcd member there is
// nobody to wait for, and this does the controller's work at once, in an
// order that leaves no window:
//
//   1. DELETE the namespace: it is Terminating, and the API server's
//      NamespaceLifecycle admission refuses every new object in it (for 30 s
//      after a namespace's DELETE it looks the namespace up live, not in its
//      cache, before admitting a create);
//   2. finalize it (remove the `kubernetes` finalizer): the namespace object
//      is gone, its name free;
//   3. delete every namespaced object left in it, of every resource the API
//      serves with list and delete (as the controller does: discovery), pods
//      without grace;
//   4. list them all again until none is left.
//
// So when it returns, the names are free and nothing of the old namespaces
// remains to be found by a new namespace of the same name. The namespace
// controller, when its turn comes, finds the namespace gone (or a new one that
// is not being deleted) and does nothing.
import http from 'node:http';
import https from 'node:https';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';

interface Resource {
  /** /api/v1 or /apis/GROUP/VERSION */
  base: string;
  name: string;
  deleteCollection: boolean;
}

interface APIResourceList {
  resources: Array<{ name: string; namespaced: boolean; verbs: string[] }>;
}

type Request = (method: string, path: string) => Promise<{ status: number; body: unknown }>;

/** JSON requests to the API server over kept-alive connections (a TLS handshake per request costs more than the request). */
function requester(kubeconfig: KubeConfig, agent: https.Agent): Request {
  const server = new URL(kubeconfig.getCurrentCluster()!.server);
  return async (method, path) => {
    const options: https.RequestOptions = {
      protocol: server.protocol,
      hostname: server.hostname,
      port: server.port || 443,
      path: `${server.pathname.replace(/\/+$/, '')}${path}`,
      method,
      headers: { accept: 'application/json' },
    };
    await kubeconfig.applyToHTTPSOptions(options);
    if (server.protocol === 'https:') options.agent = agent;
    return new Promise((resolve, reject) => {
      const req = (server.protocol === 'http:' ? http : https).request(options, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('error', reject);
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
      req.on('error', reject);
      req.end();
    });
  };
}

async function get<T>(request: Request, path: string): Promise<T> {
  const { status, body } = await request('GET', path);
  if (status !== 200) throw new Error(`GET ${path}: ${status} ${JSON.stringify(body).slice(0, 200)}`);
  return body as T;
}

/** Every namespaced resource the API server serves with list and delete (its preferred version of each group). */
async function namespacedResources(request: Request): Promise<Resource[]> {
  const groups = await get<{ groups: Array<{ preferredVersion: { groupVersion: string } }> }>(request, '/apis');
  const bases = ['/api/v1', ...groups.groups.map((g) => `/apis/${g.preferredVersion.groupVersion}`)];
  const lists = await Promise.all(bases.map(async (base) => ({ base, list: await get<APIResourceList>(request, base) })));
  return lists.flatMap(({ base, list }) => list.resources
    .filter((r) => r.namespaced && !r.name.includes('/') && r.verbs.includes('list') && r.verbs.includes('delete'))
    .map((r) => ({ base, name: r.name, deleteCollection: r.verbs.includes('deletecollection') })));
}

/** Deletes the objects of `resource` left in `namespaces` (one list over all namespaces); returns how many there were. */
async function deleteContent(request: Request, namespaces: Set<string>, resource: Resource): Promise<number> {
  const { items } = await get<{ items: Array<{ metadata: { name: string; namespace: string } }> }>(request, `${resource.base}/${resource.name}`);
  const left = items.filter((i) => namespaces.has(i.metadata.namespace));
  const ok = (what: string) => ({ status, body }: { status: number; body: unknown }) => {
    if (status >= 300 && status !== 404) throw new Error(`DELETE ${what}: ${status} ${JSON.stringify(body).slice(0, 200)}`);
  };
  const path = (namespace: string) => `${resource.base}/namespaces/${namespace}/${resource.name}`;
  await Promise.all(resource.deleteCollection
    ? [...new Set(left.map((i) => i.metadata.namespace))].map((ns) => request('DELETE', `${path(ns)}?gracePeriodSeconds=0`).then(ok(path(ns))))
    : left.map((i) => request('DELETE', `${path(i.metadata.namespace)}/${i.metadata.name}?gracePeriodSeconds=0`).then(ok(`${path(i.metadata.namespace)}/${i.metadata.name}`))));
  return left.length;
}

/**
 * Removes the namespaces and everything in them; resolves once their names
 * are free and nothing of them is left. Resolves false, having done nothing,
 * when discovery fails (an aggregated API that is unavailable, e.g. while its
 * pods roll): the caller then leaves the work to the namespace controller,
 * which retries until discovery succeeds.
 */
export async function removeNamespacesAtOnce(kubeconfig: KubeConfig, core: CoreV1Api, names: string[], timeoutMs = 60_000): Promise<boolean> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const request = requester(kubeconfig, agent);
    const resources = await namespacedResources(request).catch(() => undefined);
    if (!resources) return false;
    await Promise.all(names.map(async (name) => {
      // Absent already: only its content may be left.
      if (await core.deleteNamespace({ name }).then(() => true, () => false)) {
        await core.replaceNamespaceFinalize({ name, body: { metadata: { name }, spec: { finalizers: [] } } });
      }
    }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const present = (await Promise.all(names.map((name) => core.readNamespace({ name }).then(() => name, () => undefined)))).filter(Boolean);
      const left = (await Promise.all(resources.map((r) => deleteContent(request, new Set(names), r)))).reduce((a, b) => a + b, 0);
      if (present.length === 0 && left === 0) return true;
      if (Date.now() > deadline) throw new Error(`namespaces ${names.join(', ')}: ${present.length ? `${present.join(', ')} still there` : `${left} objects left in them`} after ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  } finally {
    agent.destroy();
  }
}
