// The BPF filesystem that pinned programs and maps live in, so that they
// outlive the agent process. Most distributions mount one at /sys/fs/bpf at
// boot; where nothing did, the agent mounts it, as Cilium's agent does.
import { mkdir, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';

const BPF_FS_MAGIC = 0xcafe4a11;

async function onBpffs(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes sure `pinDir` is a directory on a bpffs: it is one already (a mount
 * of its own, as each simulated node has), or it is created on the bpffs of
 * its parent, which is mounted first if need be.
 */
export async function ensurePinDir(pinDir: string): Promise<void> {
  if (await onBpffs(pinDir)) return;
  const parent = dirname(pinDir);
  if (!(await onBpffs(parent))) await execa('mount', ['-t', 'bpf', 'bpffs', parent]);
  await mkdir(pinDir, { recursive: true });
}
