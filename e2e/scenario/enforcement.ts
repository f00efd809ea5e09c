// Waiting for enforcement instead of sleeping: every write the runner makes
// to a kind the agents watch is noted with the resourceVersion the API server
// gave it; before a probe, the runner waits until every node's PalisadeNode
// status says that kind is realized at least up to that version, and that no
// pod is still waiting for its security identity.
//
// resourceVersions are opaque by contract; this API server's are etcd
// revisions, which increase, and each kind's watch stream delivers them in
// order, so "realized >= written" per kind is exact.
import { CustomObjectsApi, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

/** Kinds whose changes the agents enforce (agent/policy-sync.ts reports these). */
export const WATCHED_KINDS = new Set(['NetworkPolicy', 'PalisadeNetworkPolicy', 'PalisadeClusterNetworkPolicy', 'Pod', 'Namespace', 'Service', 'EndpointSlice']);

interface NodeStatus {
  metadata: { name: string };
  status?: { realized?: Record<string, string>; pendingIdentities?: number };
}

export class EnforcementTracker {
  readonly #written = new Map<string, bigint>();

  note(kind: string, resourceVersion: string | undefined): void {
    if (!WATCHED_KINDS.has(kind) || !resourceVersion) return;
    const rv = BigInt(resourceVersion);
    if (rv > (this.#written.get(kind) ?? 0n)) this.#written.set(kind, rv);
  }

  /** Resolves when every node has realized every noted write; rejects after timeoutMs naming the laggard. */
  async wait(kubeconfig: KubeConfig, nodeNames: readonly string[], timeoutMs = 10_000): Promise<void> {
    const api = kubeconfig.makeApiClient(CustomObjectsApi);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = (await api.listClusterCustomObject({ group: 'palisade.io', version: 'v1alpha1', plural: 'palisadenodes' })) as {
        items: NodeStatus[];
      };
      const lagging = nodeNames.map((name) => this.#lag(list.items.find((n) => n.metadata.name === name), name)).filter(Boolean);
      if (lagging.length === 0) return;
      if (Date.now() > deadline) throw new Error(`policy not enforced within ${timeoutMs} ms: ${lagging.join('; ')}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  #lag(node: NodeStatus | undefined, name: string): string | undefined {
    if (!node?.status?.realized) return `${name} reports nothing yet`;
    for (const [kind, rv] of this.#written) {
      const realized = BigInt(node.status.realized[kind] ?? '0');
      if (realized < rv) return `${name} realized ${kind} up to ${realized}, written ${rv}`;
    }
    if ((node.status.pendingIdentities ?? 0) > 0) return `${name} waits for ${node.status.pendingIdentities} identities`;
    return undefined;
  }
}

/**
 * The resourceVersion of an object's deletion, which the DELETE response does
 * not carry: watches the object from its last known version until its
 * DELETED event, while `remove` deletes it.
 */
export async function deletionVersion(
  kubeconfig: KubeConfig,
  listPath: string,
  object: KubernetesObject,
  remove: () => Promise<unknown>,
  timeoutMs = 10_000,
): Promise<string> {
  const watch = new Watch(kubeconfig);
  let resolveDeleted!: (rv: string) => void;
  const deleted = new Promise<string>((resolve) => (resolveDeleted = resolve));
  const request = await watch.watch(
    listPath,
    { fieldSelector: `metadata.name=${object.metadata?.name}`, resourceVersion: object.metadata?.resourceVersion },
    (type, obj: KubernetesObject) => {
      if (type === 'DELETED') resolveDeleted(obj.metadata?.resourceVersion ?? '');
    },
    () => undefined,
  );
  try {
    await remove();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no DELETED event for ${object.metadata?.name} within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([deleted, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    request.abort();
  }
}
