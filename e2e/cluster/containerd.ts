// containerd v2 (CRI) for a real node, run inside the node's network and
// mount namespaces through its `node-exec` launcher (real-node.ts).
//
// Everything it keeps is the node's own: root, state and socket in the
// node's directory; the shims' sockets and runc's state under /run, which is a
// tmpfs of the node's mount namespace; /opt/cni/bin and /etc/cni/net.d are the
// node's (bind mounts). Settings this machine needs (../shared/REAL-NODES.md):
// restrict_oom_score_adj (the capability bounding set lacks CAP_SYS_RESOURCE,
// so runc cannot raise a sandbox's oom_score_adj) and a locally built sandbox
// image, as no registry is reachable.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startProcess, waitFor, type ManagedProcess } from './processes.ts';

const BUILD_SCRIPT = join(import.meta.dirname, '../../scripts/build-cluster-tools.sh');
/** The sandbox image scripts/build-images.sh builds (containerd's default name for it). */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.2';
/** CRI's namespace in containerd. */
export const CRI_NAMESPACE = 'k8s.io';

export async function toolPath(tool: 'containerd' | 'containerd-shim-runc-v2' | 'ctr' | 'kubelet' | 'kube-controller-manager' | 'kube-scheduler'): Promise<string> {
  const { stdout } = await execa('bash', [BUILD_SCRIPT, 'path', tool]);
  return stdout.trim();
}

export interface ContainerdOptions {
  name: string;
  /** The node's directory; containerd's lives in `containerd/` beneath it. */
  nodeDir: string;
  /** The node's launcher: runs a command in the node's namespaces and cgroup. */
  nodeExec: string;
}

export interface Containerd {
  process: ManagedProcess;
  /** Its gRPC socket (a path the root mount namespace sees too). */
  socket: string;
  /** Runs `ctr` against it in the node's namespaces, in CRI's namespace. */
  ctr(args: string[]): Promise<string>;
}

export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  const dir = join(opts.nodeDir, 'containerd');
  const binDir = join(dir, 'bin');
  await mkdir(binDir, { recursive: true });
  const [containerd, shim, ctr] = await Promise.all([toolPath('containerd'), toolPath('containerd-shim-runc-v2'), toolPath('ctr')]);
  // containerd finds its shim on PATH by the runtime's name.
  await execa('ln', ['-sf', shim, join(binDir, 'containerd-shim-runc-v2')]);
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  const cri = "plugins.'io.containerd.cri.v1.runtime'";
  await writeFile(config, `version = 4
root = '${dir}/root'
state = '${dir}/state'
# The node's own drop-ins (an empty list would mean the machine's /etc/containerd/conf.d).
imports = ['${dir}/conf.d/*.toml']
# No NRI socket in /var/run/nri, no host-wide plugin directories.
disabled_plugins = ['io.containerd.nri.v1.nri']

[plugins.'io.containerd.server.v1.grpc']
  address = '${socket}'

[plugins.'io.containerd.server.v1.ttrpc']
  address = '${socket}.ttrpc'

[plugins.'io.containerd.internal.v1.opt']
  path = '${dir}/opt'

[${cri}]
  restrict_oom_score_adj = true

[${cri}.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[${cri}.containerd.runtimes.runc.options]
  BinaryName = '/usr/sbin/runc'
  SystemdCgroup = false

[${cri}.cni]
  bin_dirs = ['/opt/cni/bin']
  conf_dir = '/etc/cni/net.d'
  # Pods need lo up whatever CNI plugin the node gets: containerd brings it up
  # itself rather than expecting the reference 'loopback' plugin in /opt/cni/bin.
  use_internal_loopback = true

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '${PAUSE_IMAGE}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
`);
  const process = await startProcess({
    name: `containerd ${opts.name}`,
    command: opts.nodeExec,
    args: [containerd, '--config', config, '--log-level', 'info'],
    env: { PATH: `${binDir}:/usr/sbin:/usr/bin:/sbin:/bin` },
    logFile: join(opts.nodeDir, 'containerd.log'),
    readyLine: /containerd successfully booted/,
  });
  const run = async (args: string[]) => {
    const result = await execa(opts.nodeExec, [ctr, '--address', socket, '--namespace', CRI_NAMESPACE, ...args]);
    return String(result.stdout);
  };
  try {
    await waitFor(`containerd ${opts.name} answering`, () => run(['version']), { timeoutMs: 10_000, watch: [process], explainTimeoutWith: process });
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { process, socket, ctr: run };
}
