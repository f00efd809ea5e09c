// A real kubelet for a real node, run inside the node's network and mount
// namespaces through its `node-exec` launcher (real-node.ts), configured as
// a kubeadm node is where that matters (client certificate of the cluster CA
// as system:node:NAME, webhook authentication and authorization of its API,
// registration with labels) and as this machine needs
// (../shared/REAL-NODES.md): cgroup v1 allowed, the cgroupfs driver under the
// node's own cgroupRoot, its own root, pod-log and volume-plugin directories.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signCert, type ClusterCerts } from './certs.ts';
import { toolPath } from './containerd.ts';
import { writeClientKubeconfig } from './controllers.ts';
import { startProcess, type ManagedProcess } from './processes.ts';

export interface RealKubeletOptions {
  name: string;
  nodeDir: string;
  nodeExec: string;
  /** The node's address on the underlay (InternalIP; its serving certificate names it). */
  address: string;
  /** https://ADVERTISE:6443, as the node's namespace reaches the API server. */
  server: string;
  certs: ClusterCerts;
  containerdSocket: string;
  cgroupRoot: string;
  labels: Record<string, string>;
  /** KubeletConfiguration fields to override (e.g. nodeStatusUpdateFrequency). */
  config?: Record<string, unknown>;
}

export async function startRealKubelet(opts: RealKubeletOptions): Promise<ManagedProcess> {
  const dir = (name: string) => join(opts.nodeDir, name);
  const client = { cert: dir('kubelet-client.crt'), key: dir('kubelet-client.key') };
  const serving = { cert: dir('kubelet.crt'), key: dir('kubelet.key') };
  const [binary] = await Promise.all([
    toolPath('kubelet'),
    signCert(opts.certs, client, { user: `system:node:${opts.name}`, groups: ['system:nodes'] }),
    signCert(opts.certs, serving, { serverIps: [opts.address], commonName: opts.name }),
  ]);
  const kubeconfig = dir('kubelet.kubeconfig');
  await writeClientKubeconfig(kubeconfig, opts.server, opts.certs.caCert, client);
  const config = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine runs cgroup v1 (hybrid), which the kubelet refuses unless told.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: opts.cgroupRoot,
    containerRuntimeEndpoint: `unix://${opts.containerdSocket}`,
    podLogsDir: dir('pod-logs'),
    volumePluginDir: dir('volume-plugins'),
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: opts.certs.caCert },
    },
    authorization: { mode: 'Webhook' },
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    serverTLSBootstrap: false,
    rotateCertificates: false,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    clusterDomain: 'cluster.local',
    failSwapOn: false,
    // It cannot lower its own score without CAP_SYS_RESOURCE: don't try.
    oomScoreAdj: 0,
    // A shared test machine's disk is not this node's to guard: never taint or evict for it.
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    ...opts.config,
  };
  const configFile = dir('kubelet-config.json');
  await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
  return startProcess({
    name: `kubelet ${opts.name}`,
    command: opts.nodeExec,
    args: [
      binary,
      `--config=${configFile}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${dir('kubelet')}`,
      `--cert-dir=${dir('kubelet/pki')}`,
      `--hostname-override=${opts.name}`,
      `--node-ip=${opts.address}`,
      `--node-labels=${Object.entries(opts.labels).map(([k, v]) => `${k}=${v}`).join(',')}`,
      '--v=2',
    ],
    logFile: dir('kubelet.log'),
  });
}
