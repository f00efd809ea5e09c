// Which code a benchmark measured: the commit, and the files of the given
// directories that differ from it (other engineers work in the same tree).
import { execa } from 'execa';

export async function revision(dirs: readonly string[] = ['policy', 'bpf', 'agent', 'datapath']): Promise<string> {
  const root = new URL('../../', import.meta.url).pathname;
  try {
    const { stdout: head } = await execa('git', ['-C', root, 'log', '-1', '--format=%h %s']);
    const { stdout: dirty } = await execa('git', ['-C', root, 'status', '--porcelain', '--', ...dirs]);
    const changed = dirty.split('\n').filter(Boolean).map((l) => l.slice(3));
    return `${head.slice(0, 100)}${changed.length ? `; uncommitted: ${changed.join(', ')}` : `; ${dirs.join('/, ')}/ clean`}`;
  } catch (error) {
    return `unknown (${(error as Error).message.split('\n')[0]})`;
  }
}
