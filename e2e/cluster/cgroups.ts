// A real node's cgroups on this cgroup v1 (hybrid) machine: one directory
// `/<name>` in every mounted hierarchy (v1 controllers, name=systemd and the
// unified v2 one), which the node's kubelet takes as its cgroupRoot, and
// `/<name>/system` beneath it, which holds the node's own daemons
// (containerd, its shims, the kubelet, the mount-namespace holder).
//
// Why cgroups and not process groups: containerd's shims start their own
// sessions and pods' processes are their children, so a process group never
// reaches them; every one of them, though, lives under `/<name>` in every
// hierarchy. killAll() freezes the tree (nothing forks meanwhile), kills
// every member and thaws it, until no hierarchy lists a process.
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, rmdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Mount points of every cgroup hierarchy (v1 and v2). */
export async function cgroupMounts(): Promise<string[]> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((line) => line.split(' '));
  return mounts.filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2').map((f) => f[1] ?? '').filter(Boolean);
}

export interface NodeCgroups {
  /** The kubelet's cgroupRoot, e.g. `/pal-123-abcdef-n1`. */
  root: string;
  /** `root/system` in every hierarchy, for a process to write its pid into. */
  systemProcFiles: string[];
}

/** Creates `/<name>` and `/<name>/system` in every hierarchy (cpuset ones get their parent's cpus and mems). */
export async function createNodeCgroups(name: string): Promise<NodeCgroups> {
  const systemProcFiles: string[] = [];
  for (const mount of await cgroupMounts()) {
    for (const dir of [join(mount, name), join(mount, name, 'system')]) {
      await mkdir(dir, { recursive: true });
      // A v1 cpuset cgroup takes no task until it has cpus and mems.
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        const parent = await readFile(join(dir, '..', file), 'utf8').catch(() => undefined);
        if (parent !== undefined) await writeFile(join(dir, file), parent.trim() || '\n');
      }
    }
    systemProcFiles.push(join(mount, name, 'system', 'cgroup.procs'));
  }
  return { root: `/${name}`, systemProcFiles };
}

/** Every cgroup directory under `dir`, deepest first. */
async function subtree(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const below = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => subtree(join(dir, e.name))));
  return [...below.flat(), dir];
}

async function members(dirs: string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const dir of dirs) {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const pid of text.split('\n').filter(Boolean)) pids.add(Number(pid));
  }
  return [...pids];
}

/**
 * Kills every process under `/<name>` in every hierarchy and removes the
 * directories; absent is fine. Throws if processes survive 10 s of SIGKILL.
 */
export async function removeNodeCgroups(name: string): Promise<void> {
  const mounts = await cgroupMounts();
  const freezer = mounts.find((m) => m.endsWith('/freezer'));
  const freezerState = freezer ? join(freezer, name, 'freezer.state') : undefined;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const dirs = (await Promise.all(mounts.map((m) => subtree(join(m, name))))).flat();
    const pids = await members(dirs);
    if (pids.length === 0) break;
    if (Date.now() > deadline) throw new Error(`cgroup ${name}: processes ${pids.join(' ')} survive SIGKILL`);
    // Frozen, nothing forks between the listing and the kill.
    if (freezerState) await writeFile(freezerState, 'FROZEN').catch(() => undefined);
    for (const pid of await members(dirs)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    if (freezerState) await writeFile(freezerState, 'THAWED').catch(() => undefined);
    await sleep(50);
  }
  for (const mount of mounts) {
    for (const dir of await subtree(join(mount, name))) {
      // A cgroup whose last task just exited can refuse briefly (EBUSY).
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (attempt >= 40) throw new Error(`cgroup ${dir}: cannot remove it`, { cause: error });
          await sleep(50);
        }
      }
    }
  }
}

/** Top-level cgroup names present in any hierarchy that `match` accepts. */
export async function listTopCgroups(match: (name: string) => boolean): Promise<string[]> {
  const names = new Set<string>();
  for (const mount of await cgroupMounts()) {
    for (const entry of await readdir(mount, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory() && match(entry.name)) names.add(entry.name);
    }
  }
  return [...names];
}

/**
 * For a process 'exit' handler (synchronous): SIGKILLs every process under
 * `/<name>` once, so that a test process that dies without stop() leaves no
 * shim or pod running. The directories are left for the next run's sweep.
 */
export function killNodeCgroupsSync(name: string, mounts: string[]): void {
  const walk = (dir: string): string[] => {
    try {
      return [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => walk(join(dir, e.name)))];
    } catch {
      return [];
    }
  };
  for (const mount of mounts) {
    for (const dir of walk(join(mount, name))) {
      let pids: string[] = [];
      try {
        pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
      } catch {
        continue;
      }
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }
}
