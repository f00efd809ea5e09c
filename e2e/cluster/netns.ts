// Network namespaces and the names of everything a test run creates.
//
// Every name starts with `pal-<pid>-<random>-` (namespaces, the run directory
// under the temp dir), so that runs never collide and a later run can sweep
// away what a killed run left behind (its pid is gone).
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';

export const NETNS_DIR = '/var/run/netns';
const RUN_NAME = /^pal-(\d+)-[0-9a-f]+/;

export function newRunId(): string {
  return `pal-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

export async function createNetns(name: string): Promise<void> {
  await execa('ip', ['netns', 'add', name]);
  await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Kills whatever still runs inside the namespace, then deletes it; absent is fine. */
export async function deleteNetns(name: string): Promise<void> {
  const pids = await execa('ip', ['netns', 'pids', name], { reject: false });
  for (const pid of String(pids.stdout).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await execa('ip', ['netns', 'delete', name], { reject: false });
}

export async function listNetns(): Promise<string[]> {
  const out = await execa('ip', ['netns', 'list']);
  return String(out.stdout)
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** Whether a run's name (or a path's last part) is of a run whose process has died. */
export function isDeadRun(name: string): boolean {
  const match = RUN_NAME.exec(name);
  if (!match) return false;
  try {
    process.kill(Number(match[1]), 0);
    return false;
  } catch {
    return true;
  }
}

/** Removes what earlier runs whose process has died left behind: namespaces, bpffs mounts, run directories. */
export async function sweepDeadRuns(): Promise<void> {
  const deadRun = (path: string) => isDeadRun(basename(path));
  for (const name of (await listNetns()).filter(deadRun)) await deleteNetns(name);
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((line) => line.split(' ')[1] ?? '');
  for (const mountpoint of mounts.filter((m) => m.split('/').some(deadRun))) {
    await execa('umount', [mountpoint], { reject: false });
  }
  for (const name of (await readdir(tmpdir())).filter(deadRun)) {
    await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
}
