// Every policy scenario of the project (e2e/scenarios/*.yaml) and, when the
// shared folder is present, every shared example
// (../shared/scenarios/examples/*.yaml) and the shared scenarios of next/
// this project can run (explanations through flows, names through the DNS server pod), run as a user runs them: one
// invocation of the scenario runner, one cluster for all files. The runner's
// last line must report no failure, and every file must be accounted for.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { REPO_ROOT } from '../cluster/paths.ts';

const projectScenarios = fileURLToPath(new URL('../scenarios/', import.meta.url));
const sharedExamples = fileURLToPath(new URL('../../../shared/scenarios/examples/', import.meta.url));
/** Shared scenarios of capabilities not in examples/ yet that this project has built (FORMAT.md version 2): explanations, names. */
const sharedNext = ['07-explain-verdicts.yaml', '08-fqdn-egress.yaml'].map((name) => fileURLToPath(new URL(`../../../shared/scenarios/next/${name}`, import.meta.url)));

/** The .yaml files of a folder, sorted; none when the folder does not exist. */
async function yamlFiles(dir: string, { optional }: { optional: boolean }): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => `${dir}${name}`);
}

test('every project scenario and shared example passes', { timeout: 45 * 60_000 }, async (t) => {
  const own = await yamlFiles(projectScenarios, { optional: false });
  const shared = await yamlFiles(sharedExamples, { optional: true });
  if (shared.length === 0) t.diagnostic(`no shared examples at ${sharedExamples}: running the project's scenarios only`);
  assert.ok(own.length > 0, `no scenario files in ${projectScenarios}`);
  const next = shared.length === 0 ? [] : sharedNext;
  const files = [...own, ...shared, ...next];

  const started = performance.now();
  const run = await execa(process.execPath, [`${REPO_ROOT}e2e/scenario/main.ts`, ...files], {
    cwd: REPO_ROOT,
    reject: false,
    all: true,
  });
  const out = String(run.all ?? '');
  t.diagnostic(`${files.length} scenario files in ${((performance.now() - started) / 1000).toFixed(0)} s`);

  const last = out.trimEnd().split('\n').at(-1) ?? '';
  const summary = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/.exec(last);
  assert.ok(summary, `the runner did not end with its summary line (exit ${run.exitCode}):\n${out}`);
  const [passed, failed, skipped] = [summary[1], summary[2], summary[3] ?? '0'].map(Number) as [number, number, number];
  assert.equal(failed, 0, `${failed} scenario(s) failed:\n${out}`);
  assert.equal(passed + skipped, files.length, `the runner accounted for ${passed + skipped} of ${files.length} files:\n${out}`);
  assert.equal(run.exitCode, 0, `the runner exited with ${run.exitCode}:\n${out}`);
});
