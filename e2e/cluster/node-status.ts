// What tests read of Palisade through the API server: wait until every
// node enforces a write (e2e/scenario/enforcement.ts), and read one node's
// PalisadeNode Ready condition, list the SecurityIdentities.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { EnforcementTracker } from '../scenario/enforcement.ts';
import type { Cluster } from './cluster.ts';

/** Resolves once every node of the cluster enforces `kind` up to `resourceVersion`. */
export async function enforcedEverywhere(cluster: Cluster, kind: string, resourceVersion: string | undefined): Promise<void> {
  const tracker = new EnforcementTracker();
  tracker.note(kind, resourceVersion);
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
}

/** The Ready condition of a node's PalisadeNode ('missing' before the agent wrote one). */
export async function readyCondition(cluster: Cluster, node: string): Promise<{ status: string; message: string }> {
  const object = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).getClusterCustomObject({
    group: 'palisade.io',
    version: 'v1alpha1',
    plural: 'palisadenodes',
    name: node,
  })) as { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } };
  const ready = object.status?.conditions?.find((c) => c.type === 'Ready');
  return { status: ready?.status ?? 'missing', message: ready?.message ?? '' };
}

/** A SecurityIdentity object as the operator writes it (crds/securityidentities.yaml). */
export interface SecurityIdentityObject {
  metadata: { name: string; uid: string; annotations?: Record<string, string> };
  spec: { key: string; namespace: string; podLabels: Record<string, string> };
}

/** Every SecurityIdentity of the cluster. */
export async function listIdentities(cluster: Cluster): Promise<SecurityIdentityObject[]> {
  const list = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).listClusterCustomObject({
    group: 'palisade.io',
    version: 'v1alpha1',
    plural: 'securityidentities',
  })) as { items: SecurityIdentityObject[] };
  return list.items;
}
