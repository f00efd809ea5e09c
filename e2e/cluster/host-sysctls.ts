// The machine-wide sysctls a kubelet sets at every start, wherever its
// namespaces are (../shared/REAL-NODES.md): saved before a real cluster's
// first kubelet starts and put back when the cluster stops.
//
// Each run writes what it saved into its run directory. Runs may overlap, so
// a run that finds another run's file (alive or dead) takes the originals
// from there rather than reading values a kubelet has already changed, and a
// run that stops while another run still lives leaves the restoring to it. A
// killed run's file is restored by the next run's sweep.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const KUBELET_SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'] as const;
const FILE = 'kubelet-sysctls.json';
const RUN_DIR = /^pal-(\d+)-[0-9a-f]+-/;

type Saved = Record<string, string>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Other runs' saved files: [run directory, saved values, its process alive]. */
async function otherRuns(ownRunDir: string): Promise<{ dir: string; saved: Saved; alive: boolean }[]> {
  const found = [];
  for (const name of await readdir(tmpdir())) {
    const match = RUN_DIR.exec(name);
    const dir = join(tmpdir(), name);
    if (!match || dir === ownRunDir) continue;
    const text = await readFile(join(dir, FILE), 'utf8').catch(() => undefined);
    if (text !== undefined) found.push({ dir, saved: JSON.parse(text) as Saved, alive: alive(Number(match[1])) });
  }
  return found;
}

async function write(saved: Saved): Promise<void> {
  for (const [key, value] of Object.entries(saved)) await writeFile(`/proc/sys/${key}`, value);
}

/** Records the original values in runDir, before any kubelet of the run starts. */
export async function saveKubeletSysctls(runDir: string): Promise<void> {
  const earlier = (await otherRuns(runDir))[0];
  const saved: Saved = {};
  for (const key of KUBELET_SYSCTLS) saved[key] = earlier?.saved[key] ?? (await readFile(`/proc/sys/${key}`, 'utf8')).trim();
  await writeFile(join(runDir, FILE), JSON.stringify(saved) + '\n');
}

/** Puts the values saved in runDir back, unless another live run still needs them changed. */
export async function restoreKubeletSysctls(runDir: string): Promise<void> {
  const text = await readFile(join(runDir, FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return;
  if (!(await otherRuns(runDir)).some((run) => run.alive)) await write(JSON.parse(text) as Saved);
}

/** A dead run's saved values go back if no live run has kubelets running. */
export async function restoreDeadRunsSysctls(): Promise<void> {
  const runs = await otherRuns('');
  const dead = runs.find((run) => !run.alive);
  if (dead && !runs.some((run) => run.alive)) await write(dead.saved);
}
