// Kubernetes access shared by the operator's controllers: the client
// configuration and the Palisade custom resource coordinates.
import { KubeConfig } from '@kubernetes/client-node';

export const PALISADE_GROUP = 'palisade.io';
export const PALISADE_VERSION = 'v1alpha1';

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeconfig = new KubeConfig();
  if (path) kubeconfig.loadFromFile(path);
  else kubeconfig.loadFromCluster();
  return kubeconfig;
}

export interface SecurityIdentityObject {
  apiVersion: string;
  kind: 'SecurityIdentity';
  metadata: { name: string; resourceVersion?: string };
  spec: { key: string; namespace: string; namespaceLabels: Record<string, string>; podLabels: Record<string, string> };
}
