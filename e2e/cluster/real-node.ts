// A real Kubernetes node on this machine: containerd (with runc) and a real
// kubelet, and optionally kube-proxy, in a network namespace of its own on
// the underlay, a mount namespace of its own and a cgroup tree of its own
// (../shared/REAL-NODES.md says why each is needed).
//
//   netns   <run>-n<i>, eth0 on the underlay bridge (underlay.ts), forwarding on
//   cgroup  /<run>-n<i> in every hierarchy: the kubelet's cgroupRoot; the node's
//           daemons in /<run>-n<i>/system (cgroups.ts)
//   mounts  made by a holder process, `nsenter --net unshare -m --propagation slave`
//           (the machine's mounts still reach the node; the node's never reach the
//           machine), then `mount --make-rshared /` as on a systemd host:
//             /run            tmpfs (pod netns files, shim sockets, runc state, /run/palisade)
//             /var/log        tmpfs (the kubelet's /var/log/containers links)
//             /sys/fs/bpf     a bpffs of the node's own
//             /var/lib, /opt  overlays whose writable layer is the node's (CNI state,
//                             a chart's hostPaths such as /var/lib/palisade)
//             /etc/cni/net.d  <node dir>/cni-conf   (bind mounts; a missing mount point
//             /opt/cni/bin    <node dir>/cni-bin     is made in an overlay of its parent)
//   route   the underlay's router (the control-plane namespace) routes the node's
//           spec.podCIDR to it, as a cloud network's route table does, so that the
//           API server reaches pods (webhooks, aggregated APIs) and pods reach it
//
// `<node dir>/node-exec CMD...` runs a command on the node: it joins the
// node's system cgroup and enters the holder's mount and network namespaces.
// containerd and the kubelet are started through it, and so can a test (ls
// /etc/cni/net.d, bpftool, iptables ...).
//
// stop() kills everything under the node's cgroups (containerd, shims, pods,
// the holder), which ends the mount namespace and so every mount in it, then
// removes the cgroups and the network namespace.
import { chmod, copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { ClusterCerts } from './certs.ts';
import { cgroupMounts, createNodeCgroups, killNodeCgroupsSync, removeNodeCgroups } from './cgroups.ts';
import { startContainerd, type Containerd } from './containerd.ts';
import { writeClientKubeconfig } from './controllers.ts';
import { signCert } from './certs.ts';
import { startKubeProxy } from './kube-proxy.ts';
import { createNetns, deleteNetns } from './netns.ts';
import { startProcess, waitFor, type ManagedProcess } from './processes.ts';
import { startRealKubelet } from './real-kubelet.ts';
import { attachNode, type Underlay } from './underlay.ts';

/** Where the node's processes see its CNI directories. */
export const NODE_CNI_CONF_DIR = '/etc/cni/net.d';
export const NODE_CNI_BIN_DIR = '/opt/cni/bin';

export interface RealNode {
  name: string;
  index: number;
  netns: string;
  /** Its address on the underlay (the Node's InternalIP). */
  address: string;
  /** Its spec.podCIDR, allocated by kube-controller-manager. */
  podCidr: string;
  /** Its files: logs (containerd.log, kubelet.log, kube-proxy.log), configs, state. */
  dir: string;
  /** The kubelet's cgroupRoot (a directory of that name in every hierarchy). */
  cgroupRoot: string;
  /** Runs a command on the node (its cgroup, mount and network namespaces). */
  nodeExec: string;
  /** Directories of the root mount namespace that the node sees as /etc/cni/net.d and /opt/cni/bin. */
  cniConfDir: string;
  cniBinDir: string;
  containerd: Containerd;
  kubelet: ManagedProcess;
  kubeProxy?: ManagedProcess;
  /** Runs a command on the node; resolves with its stdout, rejects on a non-zero exit. */
  exec(args: string[], options?: { input?: string }): Promise<string>;
  /** Loads an OCI or Docker archive into the node's containerd, for CRI (`ctr -n k8s.io images import`). */
  importImage(archive: string): Promise<void>;
  /**
   * Installs a CNI configuration (and binaries) as a CNI's installer does: binaries
   * first, then the configuration, written whole and renamed into place, which
   * containerd notices and reports the network ready.
   */
  installCni(cni: CniInstall): Promise<void>;
  /** Removes every configuration from the node's /etc/cni/net.d (the binaries stay). */
  removeCniConfig(): Promise<void>;
  /** Stops the node and removes its namespaces, mounts and cgroups (not its directory or Node object). */
  stop(): Promise<void>;
}

export interface CniInstall {
  /** File name in /etc/cni/net.d (e.g. 10-palisade.conflist) and its JSON. */
  config: { file: string; content: unknown };
  /** Executables to copy into /opt/cni/bin, by the name the configuration's `type` gives. */
  binaries?: { name: string; source: string }[];
}

export interface RealNodeOptions {
  runId: string;
  runDir: string;
  index: number;
  underlay: Underlay;
  core: CoreV1Api;
  certs: ClusterCerts;
  /** https://ADVERTISE:6443 */
  server: string;
  /** Image archives to import before the kubelet starts (the pause image at least). */
  images: string[];
  labels: Record<string, string>;
  kubeletConfig?: Record<string, unknown>;
  /** Run kube-proxy (iptables mode) with this cluster CIDR. */
  kubeProxy?: { clusterCidr: string };
}

/** Where the node's view of `target` comes from: a bind mount, after an overlay on a missing target's parent. */
interface NodeMount {
  target: string;
  source: string;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Machine directories a node writes to as a machine of its own would (CNI state in
 * /var/lib/cni, a chart's hostPaths such as /var/lib/palisade, /opt/cni/bin): each
 * node sees the machine's through an overlay whose writable layer is its own.
 */
const NODE_OVERLAYS = ['/var/lib', '/opt'];

/** The mount namespace's setup script; ends by becoming the long-lived holder. */
async function mountScript(dir: string, binds: NodeMount[]): Promise<string> {
  const lines = [
    'set -eu',
    // As on a systemd host, mounts propagate among the node's own and into its
    // containers (hostPath HostToContainer or Bidirectional need that), while the
    // namespace stays a slave of the machine's: nothing propagates back out.
    'mount --make-rshared /',
    'mount -t tmpfs -o mode=0755 tmpfs /run',
    'mkdir -p /run/netns',
    'mount -t tmpfs -o mode=0755 tmpfs /var/log',
    'mount -t bpf bpffs /sys/fs/bpf',
  ];
  const overlays = new Set(NODE_OVERLAYS);
  for (const { target } of binds) {
    if ([...overlays].some((o) => target.startsWith(`${o}/`)) || (await exists(target))) continue;
    // A missing mount point is made in an overlay of its nearest existing parent.
    let parent = dirname(target);
    while (!(await exists(parent))) parent = dirname(parent);
    if (parent === '/') throw new Error(`cannot make mount point ${target}: only / exists above it`);
    overlays.add(parent);
  }
  for (const lower of overlays) {
    const layer = join(dir, 'overlays', lower.replaceAll('/', '_'));
    await mkdir(join(layer, 'upper'), { recursive: true });
    await mkdir(join(layer, 'work'), { recursive: true });
    lines.push(`mount -t overlay overlay -o lowerdir=${lower},upperdir=${layer}/upper,workdir=${layer}/work ${lower}`);
  }
  for (const { target, source } of binds) lines.push(`mkdir -p ${target}`, `mount --bind ${source} ${target}`);
  lines.push('echo ready', 'exec sleep infinity');
  return lines.join('\n') + '\n';
}

export async function startRealNode(opts: RealNodeOptions): Promise<RealNode> {
  const name = `node-${opts.index}`;
  const netns = `${opts.runId}-n${opts.index}`;
  const dir = join(opts.runDir, name);
  const cniConfDir = join(dir, 'cni-conf');
  const cniBinDir = join(dir, 'cni-bin');
  const cleanup = new AsyncDisposableStack();
  // Last: the namespace; before it, whatever runs in the node's cgroups.
  cleanup.defer(() => deleteNetns(netns));
  cleanup.defer(() => removeNodeCgroups(netns));
  try {
    for (const sub of ['cni-conf', 'cni-bin', 'pod-logs', 'kubelet', 'volume-plugins']) await mkdir(join(dir, sub), { recursive: true });
    await createNetns(netns);
    const address = await attachNode(opts.underlay, opts.index, netns);
    // A default route, as every real node has: a host-network process (the Palisade agent)
    // reaches the API server at the kubernetes Service's address, which kube-proxy
    // translates only after the kernel found a route for it.
    await execa('ip', ['-n', netns, 'route', 'add', 'default', 'via', opts.underlay.advertiseAddress]);
    // A node routes its pods' traffic (kubeadm's preflight requires it).
    await execa('nsenter', [`--net=/var/run/netns/${netns}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const cgroups = await createNodeCgroups(netns);
    // If the test process exits without stop(): containerd's shims and the pods are in
    // no process group processes.ts kills on exit, but they are in these cgroups.
    const mounts = await cgroupMounts();
    const killOnExit = () => killNodeCgroupsSync(netns, mounts);
    process.on('exit', killOnExit);
    cleanup.defer(() => void process.off('exit', killOnExit));

    const mountsScript = join(dir, 'mounts.sh');
    await writeFile(mountsScript, await mountScript(dir, [
      { target: NODE_CNI_CONF_DIR, source: cniConfDir },
      { target: NODE_CNI_BIN_DIR, source: cniBinDir },
    ]));
    const joinCgroups = cgroups.systemProcFiles.map((f) => `echo $$ > ${f}`).join('\n');
    const holderScript = join(dir, 'holder.sh');
    await writeFile(holderScript, `#!/bin/sh\nset -e\n${joinCgroups}\nexec nsenter --net=/var/run/netns/${netns} -- unshare --mount --propagation slave -- /bin/sh ${mountsScript}\n`);
    const holder = await startProcess({ name: `${name} namespace holder`, command: '/bin/sh', args: [holderScript], logFile: join(dir, 'holder.log'), readyLine: /^ready$/ });
    cleanup.defer(() => holder.stop());

    const nodeExec = join(dir, 'node-exec');
    await writeFile(nodeExec, `#!/bin/sh
# Runs a command on ${name}: in its system cgroup and its mount and network namespaces.
set -e
${joinCgroups}
exec nsenter --target ${holder.pid} --mount --net -- "$@"
`);
    await chmod(nodeExec, 0o755);

    const containerd = await startContainerd({ name, nodeDir: dir, nodeExec });
    cleanup.defer(() => containerd.process.stop());
    for (const archive of opts.images) await containerd.ctr(['images', 'import', archive]);

    const kubelet = await startRealKubelet({
      name, nodeDir: dir, nodeExec, address, server: opts.server, certs: opts.certs, containerdSocket: containerd.socket,
      cgroupRoot: cgroups.root, labels: opts.labels, config: opts.kubeletConfig,
    });
    cleanup.defer(() => kubelet.stop());
    await waitFor(`${name} registered`, () => opts.core.readNode({ name }), { timeoutMs: 30_000, intervalMs: 100, watch: [kubelet, containerd.process], explainTimeoutWith: kubelet });

    let kubeProxy: ManagedProcess | undefined;
    if (opts.kubeProxy) {
      const creds = { cert: join(dir, 'kube-proxy.crt'), key: join(dir, 'kube-proxy.key') };
      await signCert(opts.certs, creds, { user: 'system:kube-proxy' });
      const kubeconfig = join(dir, 'kube-proxy.kubeconfig');
      await writeClientKubeconfig(kubeconfig, opts.server, opts.certs.caCert, creds);
      kubeProxy = await startKubeProxy({ nodeName: name, netns, stateDir: dir, kubeconfig, clusterCidr: opts.kubeProxy.clusterCidr });
      cleanup.defer(() => kubeProxy?.stop());
    }

    let podCidr = '';
    await waitFor(`${name} given a pod CIDR`, async () => {
      podCidr = (await opts.core.readNode({ name })).spec?.podCIDR ?? '';
      if (!podCidr) throw new Error('no spec.podCIDR yet');
    }, { timeoutMs: 60_000, intervalMs: 100, watch: [kubelet, containerd.process] });
    await execa('ip', ['-n', opts.underlay.controlPlaneNetns, 'route', 'replace', podCidr, 'via', address]);

    const exec = async (args: string[], options: { input?: string } = {}) => String((await execa(nodeExec, args, { input: options.input })).stdout);
    const stack = cleanup.move();
    return {
      name, index: opts.index, netns, address, podCidr, dir, cgroupRoot: cgroups.root, nodeExec, cniConfDir, cniBinDir,
      containerd, kubelet, kubeProxy, exec,
      importImage: async (archive) => void (await containerd.ctr(['images', 'import', archive])),
      async installCni(cni) {
        for (const binary of cni.binaries ?? []) {
          const target = join(cniBinDir, binary.name);
          await copyFile(binary.source, `${target}.tmp`);
          await chmod(`${target}.tmp`, 0o755);
          await rename(`${target}.tmp`, target);
        }
        // Written outside the watched directory's names containerd reads (.conf, .conflist, .json), then renamed.
        const target = join(cniConfDir, cni.config.file);
        await writeFile(`${target}.tmp`, JSON.stringify(cni.config.content, null, 2) + '\n');
        await rename(`${target}.tmp`, target);
      },
      async removeCniConfig() {
        // The directory itself stays: the node's bind mount holds it.
        for (const file of await readdir(cniConfDir)) await rm(join(cniConfDir, file), { recursive: true, force: true });
      },
      stop: () => stack.disposeAsync(),
    };
  } catch (error) {
    await cleanup.disposeAsync();
    throw error;
  }
}
