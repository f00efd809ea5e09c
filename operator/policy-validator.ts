// Reports NetworkPolicies that Palisade cannot enforce as written: a Warning
// Event on the policy that names the field. (NetworkPolicy v1 has no status;
// agents run the same validation and enforce such a policy fail-closed.)
import { CoreV1Api, makeInformer, NetworkingV1Api, type KubeConfig, type V1NetworkPolicy } from '@kubernetes/client-node';
import { validateNetworkPolicy } from '../policy/validate.ts';
import { postWarningEvent } from '../lib/events.ts';
import { watchInformer } from '../lib/informers.ts';
import { apiNetworkPolicy } from '../lib/network-policy.ts';
import { timeoutOptions } from './kube.ts';

export async function startPolicyValidator(kubeconfig: KubeConfig, log: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  const core = kubeconfig.makeApiClient(CoreV1Api);
  const networking = kubeconfig.makeApiClient(NetworkingV1Api);
  const policies = makeInformer<V1NetworkPolicy>(kubeconfig, '/apis/networking.k8s.io/v1/networkpolicies', () =>
    networking.listNetworkPolicyForAllNamespaces({}, timeoutOptions()),
  );
  /** uid -> resourceVersion already reported, so each version is reported once. */
  const reported = new Map<string, string>();

  const check = (policy: V1NetworkPolicy) => {
    const { uid = '', resourceVersion = '', namespace = 'default', name = '' } = policy.metadata ?? {};
    if (reported.get(uid) === resourceVersion) return;
    reported.set(uid, resourceVersion);
    const result = validateNetworkPolicy(apiNetworkPolicy(policy));
    if (result.ok) return;
    const message = result.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    log(`policy ${namespace}/${name} cannot be enforced as written: ${message}`);
    void postWarningEvent(core, {
      involved: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', namespace, name, uid, resourceVersion },
      reason: 'InvalidNetworkPolicy',
      message: `Palisade enforces this policy fail-closed for the pods it selects: ${message}`,
      component: 'palisade-operator',
    }).catch((error: unknown) => log(`could not record event for ${namespace}/${name}: ${(error as Error).message}`));
  };
  policies.on('add', check);
  policies.on('update', check);
  policies.on('delete', (policy) => reported.delete(policy.metadata?.uid ?? ''));
  const watch = watchInformer(policies, () => undefined, (error) => log(`policies: watch failed, restarting: ${String(error)}`));
  await watch.start();
  return { stop: () => watch.stop() };
}
