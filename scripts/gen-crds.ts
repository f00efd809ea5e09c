// Writes the CRDs of Palisade's policy kinds, generated from their zod schemas
// (policy/palisade-crds.ts), to crds/ and to the chart's copy
// (helm/palisade/files/crds/). `npm run crds`; with --check, writes nothing and
// exits 1 naming every file that differs.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { palisadePolicyCrdFiles } from '../policy/palisade-crds.ts';

const ROOT = join(import.meta.dirname, '..');
const DIRS = ['crds', 'helm/palisade/files/crds'];
const check = process.argv.includes('--check');

let stale = 0;
for (const { file, text } of palisadePolicyCrdFiles()) {
  for (const dir of DIRS) {
    const path = join(ROOT, dir, file);
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === text) continue;
    if (check) {
      stale++;
      process.stderr.write(`${dir}/${file} differs from the generator's output: run npm run crds\n`);
    } else {
      await writeFile(path, text);
      process.stdout.write(`wrote ${dir}/${file}\n`);
    }
  }
}
process.exit(stale > 0 ? 1 : 0);
