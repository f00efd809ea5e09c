/**
 * The test cluster's control plane: etcd and a real kube-apiserver.
 *
 * Topology. Both run inside the control-plane network namespace, which also holds the
 * cluster's underlay bridge; `advertiseAddress` is that namespace's address on the
 * underlay. Simulated nodes are other namespaces on the underlay, and their agents reach
 * the API server directly at https://ADVERTISE:6443 (see nodeKubeconfig). etcd listens on
 * 127.0.0.1:2379/2380 of the control-plane namespace only; fixed ports are fine there,
 * since nothing else lives in it.
 *
 * Why a tunnel. The root namespace (the user's shell, the tests, kubectl) has no route to
 * the underlay, and we add no interfaces or addresses to it. A Unix socket, though, is
 * reached through the filesystem from any network namespace, so:
 *
 *   root netns                                   control-plane netns
 *   socat TCP-LISTEN:127.0.0.1:<port> ─> runDir/apiserver.sock ─> socat ─> kube-apiserver 127.0.0.1:6443
 *
 * adminKubeconfig points at https://127.0.0.1:<port>; the serving certificate names
 * 127.0.0.1 as well as the advertise address, so TLS verifies on both paths. The root
 * side's port is chosen by the kernel (port 0) and read back from socat's log, so
 * parallel control planes never race for a port.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { generateCerts, signCert, type ClusterCerts } from './certs.ts';
import { probeHttps, startProcess, waitFor, type ManagedProcess, type ProcessOptions } from './processes.ts';

export type ControlPlaneOptions = {
  /** Certificates, kubeconfigs, etcd's data and the logs go here (created if missing). */
  runDir: string;
  /** The existing control-plane network namespace. */
  netns: string;
  /** This namespace's address on the underlay; nodes reach the API server there. */
  advertiseAddress: string;
  /**
   * Real kubelets and a kube-controller-manager will join (real-cluster.ts): the API
   * server gets a client certificate for the kubelets' API (logs, exec) and the
   * admission plugins of a kubeadm cluster (ServiceAccount, which the stand-in cluster
   * turns off for want of a token controller, and NodeRestriction).
   */
  realNodes?: boolean;
};

export type ControlPlane = {
  /** The cluster's PKI (its CA signs agents' and test users' certificates too). */
  certs: ClusterCerts;
  /** Kubeconfig for the root namespace (through the tunnel), as system:masters. */
  adminKubeconfig: string;
  /** Kubeconfig for node namespaces: https://ADVERTISE:6443, same admin credentials. */
  nodeKubeconfig: string;
  /** The tunnel's port on 127.0.0.1 in the root namespace. */
  apiserverPort: number;
  /** Outage tests: kills kube-apiserver (SIGKILL, as a crash would), starts it again with the same flags, resolves once /readyz answers. */
  restartApiserver(): Promise<void>;
  /** Outage tests: kube-apiserver hangs (SIGSTOP) for `ms`, then resumes; connections stay open, requests go unanswered. */
  pauseApiserver(ms: number): Promise<void>;
  /** Stops everything started; idempotent. runDir is left for the caller. */
  stop(): Promise<void>;
};

const SECURE_PORT = 6443;
const READY_TIMEOUT_MS = 60_000;
const BUILD_SCRIPT = join(import.meta.dirname, '../../scripts/build-cluster-tools.sh');

/** Path of a cached cluster tool (builds it on a first run). */
async function toolPath(tool: 'etcd' | 'kube-apiserver'): Promise<string> {
  const { stdout } = await execa('bash', [BUILD_SCRIPT, 'path', tool]);
  return stdout.trim();
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { runDir, netns, advertiseAddress } = opts;
  await mkdir(runDir, { recursive: true });
  const started = new AsyncDisposableStack(); // stops in reverse order of starting
  const start = async (spec: ProcessOptions): Promise<ManagedProcess> => {
    const proc = await startProcess(spec);
    started.defer(() => proc.stop());
    return proc;
  };
  try {
    const [etcdBin, apiserverBin, certs] = await Promise.all([
      toolPath('etcd'),
      toolPath('kube-apiserver'),
      generateCerts(join(runDir, 'pki'), { advertiseAddress }),
    ]);
    // Without realNodes no controller-manager runs, so no namespace would ever get its
    // default ServiceAccount, and that admission plugin would reject every pod for lacking it.
    let nodeArgs = ['--disable-admission-plugins=ServiceAccount'];
    if (opts.realNodes) {
      // As kubeadm's apiserver-kubelet-client: the kubelets authorize it by a webhook.
      const kubeletClient = { cert: join(runDir, 'pki', 'apiserver-kubelet-client.crt'), key: join(runDir, 'pki', 'apiserver-kubelet-client.key') };
      await signCert(certs, kubeletClient, { user: 'kube-apiserver-kubelet-client', groups: ['system:masters'] });
      nodeArgs = [
        '--enable-admission-plugins=NodeRestriction',
        `--kubelet-client-certificate=${kubeletClient.cert}`,
        `--kubelet-client-key=${kubeletClient.key}`,
        // Kubelets serve with certificates of the cluster CA for their InternalIP (no DNS for node names here).
        `--kubelet-certificate-authority=${certs.caCert}`,
        '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
      ];
    }

    const etcd = await start({
      name: 'etcd',
      command: etcdBin,
      netns,
      args: [
        '--name=control-plane',
        `--data-dir=${join(runDir, 'etcd')}`,
        '--listen-client-urls=http://127.0.0.1:2379',
        '--advertise-client-urls=http://127.0.0.1:2379',
        '--listen-peer-urls=http://127.0.0.1:2380',
        '--initial-advertise-peer-urls=http://127.0.0.1:2380',
        '--initial-cluster=control-plane=http://127.0.0.1:2380',
        // A throwaway store: losing it on a crash is fine, waiting for disks is not.
        '--unsafe-no-fsync',
        '--quota-backend-bytes=268435456',
      ],
      logFile: join(runDir, 'etcd.log'),
      readyLine: /ready to serve client requests/,
    });

    // Not waited on here: its /readyz is checked through the tunnel below, which tests
    // the whole path the root namespace will use.
    const apiserverSpec: ProcessOptions = {
      name: 'kube-apiserver',
      command: apiserverBin,
      netns,
      args: [
        '--etcd-servers=http://127.0.0.1:2379',
        '--bind-address=0.0.0.0',
        `--secure-port=${SECURE_PORT}`,
        `--advertise-address=${advertiseAddress}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--authorization-mode=Node,RBAC',
        `--client-ca-file=${certs.caCert}`,
        `--tls-cert-file=${certs.apiserverCert}`,
        `--tls-private-key-file=${certs.apiserverKey}`,
        `--service-account-key-file=${certs.serviceAccountPub}`,
        `--service-account-signing-key-file=${certs.serviceAccountKey}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        ...nodeArgs,
        '--allow-privileged=true',
        // The aggregation layer, for Palisade's flow API (flows-api/): kube-apiserver
        // proxies /apis/flows.palisade.io with the user in X-Remote-* headers, over its
        // front-proxy client certificate, to the endpoint of the APIService's Service.
        `--requestheader-client-ca-file=${certs.frontProxyCaCert}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${certs.proxyClientCert}`,
        `--proxy-client-key-file=${certs.proxyClientKey}`,
        '--enable-aggregator-routing=true',
        '-v=0',
      ],
      logFile: join(runDir, 'kube-apiserver.log'),
    };
    // Replaced by restartApiserver(); stopped at the end whichever it is.
    let apiserver = await startProcess(apiserverSpec);
    started.defer(() => apiserver.stop());

    const socket = join(runDir, 'apiserver.sock');
    // backlog=128 on both listeners: socat's default of 5 drops the SYNs of a burst of
    // parallel requests (the client library opens a connection per request), and each
    // dropped SYN costs the kernel's 1 s retransmission timeout (TcpExtListenOverflows).
    const netnsTunnel = await start({
      name: 'apiserver tunnel (control-plane netns side)',
      command: 'socat',
      netns,
      args: ['-d', '-d', `UNIX-LISTEN:${socket},fork,backlog=128`, `TCP:127.0.0.1:${SECURE_PORT}`],
      logFile: join(runDir, 'tunnel-netns.log'),
      readyLine: /listening on/,
    });
    const rootTunnel = await start({
      name: 'apiserver tunnel (root netns side)',
      command: 'socat',
      args: ['-d', '-d', 'TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128', `UNIX-CONNECT:${socket}`],
      logFile: join(runDir, 'tunnel-root.log'),
      readyLine: /listening on .*:(\d+)$/,
    });
    const apiserverPort = Number(rootTunnel.readyMatch?.[1]);

    const [ca, cert, key] = await Promise.all([readFile(certs.caCert), readFile(certs.adminCert), readFile(certs.adminKey)]);
    const credentials = { ca, cert, key };
    const adminKubeconfig = join(runDir, 'admin.kubeconfig');
    const nodeKubeconfig = join(runDir, 'node.kubeconfig');
    await Promise.all([
      writeKubeconfig(adminKubeconfig, `https://127.0.0.1:${apiserverPort}`, credentials),
      writeKubeconfig(nodeKubeconfig, `https://${advertiseAddress}:${SECURE_PORT}`, credentials),
    ]);

    await waitFor('kube-apiserver /readyz', () => probeHttps(`https://127.0.0.1:${apiserverPort}/readyz`, credentials), {
      timeoutMs: READY_TIMEOUT_MS,
      watch: [etcd, apiserver, netnsTunnel, rootTunnel],
      explainTimeoutWith: apiserver,
    });

    const restartApiserver = async () => {
      process.kill(-apiserver.pid, 'SIGKILL'); // its own process group (see processes.ts)
      await apiserver.stop();
      apiserver = await startProcess(apiserverSpec);
      await waitFor('kube-apiserver /readyz after a restart', () => probeHttps(`https://127.0.0.1:${apiserverPort}/readyz`, credentials), {
        timeoutMs: READY_TIMEOUT_MS,
        watch: [apiserver],
        explainTimeoutWith: apiserver,
      });
    };

    const pauseApiserver = async (ms: number) => {
      const paused = apiserver;
      process.kill(paused.pid, 'SIGSTOP'); // nsenter execs in place: this is kube-apiserver itself
      try {
        await sleep(ms);
      } finally {
        process.kill(paused.pid, 'SIGCONT');
      }
    };

    const running = started.move();
    return { certs, adminKubeconfig, nodeKubeconfig, apiserverPort, restartApiserver, pauseApiserver, stop: () => running.disposeAsync() };
  } catch (err) {
    await started.disposeAsync();
    throw err;
  }
}

export type Credentials = { ca: Buffer; cert: Buffer; key: Buffer };

/** A self-contained kubeconfig (credentials inline). JSON is valid kubeconfig YAML. */
export async function writeKubeconfig(path: string, server: string, { ca, cert, key }: Credentials): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'palisade', cluster: { server, 'certificate-authority-data': ca.toString('base64') } }],
    users: [
      {
        name: 'palisade-admin',
        user: { 'client-certificate-data': cert.toString('base64'), 'client-key-data': key.toString('base64') },
      },
    ],
    contexts: [{ name: 'palisade', context: { cluster: 'palisade', user: 'palisade-admin' } }],
    'current-context': 'palisade',
  };
  await writeFile(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}
