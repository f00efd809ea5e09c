// kube-proxy in iptables mode inside a simulated node's network namespace,
// as a node of a real cluster runs it (opt-in: ClusterOptions.kubeProxy).
//
// - Built from the same pinned k8s.io/kubernetes module as kube-apiserver
//   (scripts/build-cluster-tools.sh kube-proxy).
// - Its `iptables`, `iptables-save` and `iptables-restore` (and ip6tables'*)
//   are Debian's iptables-nft (xtables-nft-multi), put first on its PATH from
//   the node's state directory, whatever `update-alternatives` says: the
//   rules are nf_tables tables of the node's namespace, and go with it.
// - It touches no global state: no conntrack sysctl (maxPerCore 0 and zero
//   timeouts skip them all; nf_conntrack_max is not per namespace), no
//   oom_score_adj change, no localhost NodePorts (route_localnet). Healthz and
//   metrics listen on 127.0.0.1 of the node's own namespace, so the default
//   ports never collide between nodes or with the machine.
// - Logs to <state dir>/kube-proxy.log; started after the agent (which turns
//   on forwarding) and stopped before the namespace is deleted.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startProcess, waitFor, type ManagedProcess } from './processes.ts';

const BUILD_SCRIPT = join(import.meta.dirname, '../../scripts/build-cluster-tools.sh');
/** Debian's nf_tables flavour of the iptables commands (package `iptables`). */
const XTABLES_NFT = '/usr/sbin/xtables-nft-multi';
const IPTABLES_COMMANDS = ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore'];
/** How long kube-proxy may take to write its first rules. */
const READY_TIMEOUT_MS = 30_000;

export interface KubeProxyOptions {
  /** The node's name (--hostname-override): kube-proxy reads its Node object for the node IP. */
  nodeName: string;
  netns: string;
  /** The node's state directory: config, PATH directory and log go here. */
  stateDir: string;
  kubeconfig: string;
  /** All pod addresses of the cluster: sources inside it are not masqueraded on their way to a ClusterIP. */
  clusterCidr: string;
}

async function kubeProxyBinary(): Promise<string> {
  const { stdout } = await execa('bash', [BUILD_SCRIPT, 'path', 'kube-proxy']);
  return stdout.trim();
}

/** The nat table of a namespace as iptables-nft-save prints it. */
export async function natRules(netns: string): Promise<string> {
  const { stdout } = await execa('nsenter', [`--net=/var/run/netns/${netns}`, 'iptables-nft-save', '-t', 'nat']);
  return String(stdout);
}

export async function startKubeProxy(opts: KubeProxyOptions): Promise<ManagedProcess> {
  const binary = await kubeProxyBinary();
  const pathDir = join(opts.stateDir, 'kube-proxy-bin');
  await mkdir(pathDir, { recursive: true });
  for (const name of IPTABLES_COMMANDS) await symlink(XTABLES_NFT, join(pathDir, name)).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const configFile = join(opts.stateDir, 'kube-proxy.config');
  const config = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: opts.kubeconfig },
    hostnameOverride: opts.nodeName,
    mode: 'iptables',
    clusterCIDR: opts.clusterCidr,
    detectLocalMode: 'ClusterCIDR',
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    oomScoreAdj: 0,
    // NodePorts on the node's underlay address only (and not on 127.0.0.1, which needs route_localnet).
    nodePortAddresses: ['primary'],
    // Rules follow Service and EndpointSlice changes within a second (createService waits for them).
    iptables: { minSyncPeriod: '1s', syncPeriod: '30s', localhostNodePorts: false },
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s', udpTimeout: '0s', udpStreamTimeout: '0s' },
  };
  await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
  const proc = await startProcess({
    name: `kube-proxy ${opts.nodeName}`,
    command: binary,
    args: ['--config', configFile, '--v=2'],
    netns: opts.netns,
    env: { PATH: `${pathDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` },
    logFile: join(opts.stateDir, 'kube-proxy.log'),
  });
  try {
    // Ready once its first full sync wrote the service chains of the namespace.
    await waitFor(`kube-proxy ${opts.nodeName} rules`, async () => {
      if (!(await natRules(opts.netns)).includes(':KUBE-SERVICES')) throw new Error('no KUBE-SERVICES chain yet');
    }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, watch: [proc], explainTimeoutWith: proc });
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return proc;
}
