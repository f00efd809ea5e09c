// Palisade's aggregated flow API in a test cluster, as the Helm chart will
// install it: flows-api/main.ts runs in the control-plane namespace (where
// kube-apiserver reaches it), registered by an APIService whose Service has
// a manual endpoint at the advertise address; every agent serves its flows
// on its node address to the holder of the token (agent/flows/server.ts).
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiregistrationV1Api, CoreV1Api, DiscoveryV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ClusterCerts } from './certs.ts';
import { NODE_BIN, REPO_ROOT } from './paths.ts';
import { startProcess, waitFor, type ManagedProcess } from './processes.ts';

export const FLOWS_API_PORT = 8444;
export const AGENT_FLOWS_PORT = 4244;
export const AGENT_METRICS_PORT = 9965;
const NAMESPACE = 'palisade-system';

export interface FlowsApi {
  process: ManagedProcess;
  /** The token file agents require of the flows API. */
  tokenFile: string;
}

export async function startFlowsApi(o: { runDir: string; netns: string; advertiseAddress: string; certs: ClusterCerts; kubeconfig: KubeConfig; adminKubeconfigForNetns: string }): Promise<FlowsApi> {
  const tokenFile = join(o.runDir, 'flows-token');
  await writeFile(tokenFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const proc = await startProcess({
    name: 'flows-api',
    command: NODE_BIN,
    netns: o.netns,
    args: [
      `${REPO_ROOT}flows-api/main.ts`,
      '--listen', `${o.advertiseAddress}:${FLOWS_API_PORT}`,
      '--tls-cert', o.certs.flowsApiCert,
      '--tls-key', o.certs.flowsApiKey,
      '--requestheader-client-ca', o.certs.frontProxyCaCert,
      '--requestheader-allowed-names', 'front-proxy-client',
      '--agent-ca', o.certs.caCert,
      '--agent-token-file', tokenFile,
      '--agent-port', String(AGENT_FLOWS_PORT),
      '--kubeconfig', o.adminKubeconfigForNetns,
    ],
    logFile: join(o.runDir, 'flows-api.log'),
    readyLine: /ready: serving flows.palisade.io/,
  });
  try {
    await register(o.kubeconfig, o.advertiseAddress, await readFile(o.certs.caCert));
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return { process: proc, tokenFile };
}

/** The APIService, and its Service with an endpoint at the flows API's address; resolves once the API server finds it Available. */
async function register(kubeconfig: KubeConfig, address: string, ca: Buffer): Promise<void> {
  const core = kubeconfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch((e: { code?: number }) => {
    if (e.code !== 409) throw e;
  });
  await core.createNamespacedService({
    namespace: NAMESPACE,
    body: { metadata: { name: 'palisade-flows-api' }, spec: { ports: [{ name: 'https', port: 443, targetPort: FLOWS_API_PORT, protocol: 'TCP' }] } },
  });
  await kubeconfig.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
    namespace: NAMESPACE,
    body: {
      metadata: { name: 'palisade-flows-api', labels: { 'kubernetes.io/service-name': 'palisade-flows-api', 'endpointslice.kubernetes.io/managed-by': 'palisade-e2e-harness' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
      ports: [{ name: 'https', port: FLOWS_API_PORT, protocol: 'TCP' }],
    },
  });
  // Endpoints too: kube-apiserver's aggregator routing has read one or the other across versions.
  await core.createNamespacedEndpoints({
    namespace: NAMESPACE,
    body: { metadata: { name: 'palisade-flows-api' }, subsets: [{ addresses: [{ ip: address }], ports: [{ name: 'https', port: FLOWS_API_PORT, protocol: 'TCP' }] }] },
  });
  const registration = kubeconfig.makeApiClient(ApiregistrationV1Api);
  await registration.createAPIService({
    body: {
      metadata: { name: 'v1alpha1.flows.palisade.io' },
      spec: {
        group: 'flows.palisade.io',
        version: 'v1alpha1',
        service: { namespace: NAMESPACE, name: 'palisade-flows-api', port: 443 },
        caBundle: ca.toString('base64'),
        groupPriorityMinimum: 1000,
        versionPriority: 15,
      },
    },
  });
  await waitFor('APIService v1alpha1.flows.palisade.io Available', async () => {
    const svc = await registration.readAPIService({ name: 'v1alpha1.flows.palisade.io' });
    const available = svc.status?.conditions?.find((c) => c.type === 'Available');
    if (available?.status !== 'True') throw new Error(`${available?.reason ?? 'no condition'}: ${available?.message ?? ''}`);
  }, { timeoutMs: 30_000, intervalMs: 200 });
}
