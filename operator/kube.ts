// Kubernetes access shared by the operator's controllers: the client
// configuration, the Palisade custom resource coordinates, and bounded calls
// (every request the operator makes carries an AbortSignal, so a hung API
// server cannot hold up a decision that depends on time).
import { ApiException, KubeConfig, Observable, type ConfigurationOptions, type ObservableMiddleware } from '@kubernetes/client-node';

export const PALISADE_GROUP = 'palisade.io';
export const PALISADE_VERSION = 'v1alpha1';

/** Annotation naming the operator replica that created a SecurityIdentity (who wrote what, after a split). */
export const ALLOCATED_BY_ANNOTATION = 'palisade.io/allocated-by';

/** Bound on one API call of the controllers (the leader election has its own). */
export const CALL_TIMEOUT_MS = 5_000;

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeconfig = new KubeConfig();
  if (path) kubeconfig.loadFromFile(path);
  else kubeconfig.loadFromCluster();
  return kubeconfig;
}

/** Per-call options that attach `signal` to the request (the client's fetch honours it). */
export function callOptions(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  return {
    middleware: [
      {
        pre: (context) => (context.setSignal(signal), new Observable(Promise.resolve(context))),
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** Per-call options that abort the request after `ms`. */
export const timeoutOptions = (ms = CALL_TIMEOUT_MS) => callOptions(AbortSignal.timeout(ms));

export function isHttpStatus(error: unknown, code: number): boolean {
  return error instanceof ApiException && error.code === code;
}

export interface SecurityIdentityObject {
  apiVersion: string;
  kind: 'SecurityIdentity';
  metadata: { name: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec: { key: string; namespace: string; namespaceLabels: Record<string, string>; podLabels: Record<string, string> };
}
