// kube-controller-manager and kube-scheduler for the real-node cluster
// (real-cluster.ts), in the control-plane network namespace beside
// kube-apiserver, configured as kubeadm configures them: each its own client
// certificate of the cluster CA (the users the API server's bootstrap RBAC
// knows), leader election on, the controller-manager allocating every Node's
// spec.podCIDR from the cluster CIDR, signing ServiceAccount tokens with the
// cluster's key and running each controller under its own ServiceAccount.
// Their secure ports listen on 127.0.0.1 of that namespace only.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signCert, type ClusterCerts } from './certs.ts';
import { toolPath } from './containerd.ts';
import { writeKubeconfig } from './control-plane.ts';
import { startProcess, type ManagedProcess } from './processes.ts';

/** The API server's --service-cluster-ip-range (control-plane.ts). */
export const SERVICE_CIDR = '10.96.0.0/16';

/** A kubeconfig with the credentials inline, for a client certificate made by signCert. */
export async function writeClientKubeconfig(path: string, server: string, caCert: string, client: { cert: string; key: string }): Promise<void> {
  const [ca, cert, key] = await Promise.all([readFile(caCert), readFile(client.cert), readFile(client.key)]);
  await writeKubeconfig(path, server, { ca, cert, key });
}

export interface ControllersOptions {
  runDir: string;
  netns: string;
  certs: ClusterCerts;
  /** The API server as the control-plane namespace reaches it. */
  server: string;
  /** Pod CIDR of the cluster; each Node gets a /nodeCidrMaskSize of it. */
  clusterCidr: string;
  nodeCidrMaskSize: number;
}

/** A client identity: key, certificate (user/groups) and kubeconfig. */
async function identity(opts: ControllersOptions, file: string, user: string): Promise<string> {
  const creds = { cert: join(opts.runDir, `${file}.crt`), key: join(opts.runDir, `${file}.key`) };
  await signCert(opts.certs, creds, { user });
  const kubeconfig = join(opts.runDir, `${file}.kubeconfig`);
  await writeClientKubeconfig(kubeconfig, opts.server, opts.certs.caCert, creds);
  return kubeconfig;
}

/** Resolves once it leads (holds its Lease), i.e. its controllers run. */
export async function startControllerManager(opts: ControllersOptions): Promise<ManagedProcess> {
  const [binary, kubeconfig] = await Promise.all([toolPath('kube-controller-manager'), identity(opts, 'controller-manager', 'system:kube-controller-manager')]);
  return startProcess({
    name: 'kube-controller-manager',
    command: binary,
    netns: opts.netns,
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=true',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${opts.certs.serviceAccountKey}`,
      `--root-ca-file=${opts.certs.caCert}`,
      `--cluster-signing-cert-file=${opts.certs.caCert}`,
      `--cluster-signing-key-file=${opts.certs.caKey}`,
      `--requestheader-client-ca-file=${opts.certs.frontProxyCaCert}`,
      '--allocate-node-cidrs=true',
      `--cluster-cidr=${opts.clusterCidr}`,
      `--node-cidr-mask-size=${opts.nodeCidrMaskSize}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--controllers=*,bootstrapsigner,tokencleaner',
      '--cluster-name=palisade',
      // Its default, /usr/libexec/kubernetes/..., would be created on the machine.
      `--flex-volume-plugin-dir=${join(opts.runDir, 'volume-plugins')}`,
      '--v=1',
    ],
    logFile: join(opts.runDir, 'kube-controller-manager.log'),
    readyLine: /Successfully acquired lease.*kube-system\/kube-controller-manager/,
    readyTimeoutMs: 60_000,
  });
}

/** Resolves once it leads (holds its Lease). */
export async function startScheduler(opts: ControllersOptions): Promise<ManagedProcess> {
  const [binary, kubeconfig] = await Promise.all([toolPath('kube-scheduler'), identity(opts, 'scheduler', 'system:kube-scheduler')]);
  return startProcess({
    name: 'kube-scheduler',
    command: binary,
    netns: opts.netns,
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=true',
      '--v=1',
    ],
    logFile: join(opts.runDir, 'kube-scheduler.log'),
    readyLine: /Successfully acquired lease.*kube-system\/kube-scheduler/,
    readyTimeoutMs: 60_000,
  });
}
