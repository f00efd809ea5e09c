// The scenario runner as a user runs it (`npm run scenarios -- FILE...`):
// one cluster for all files, a failing step shown as two matrices, a broken
// file failing alone with its name and step, and the closing summary line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execa } from 'execa';
import { listNetns } from '../cluster/netns.ts';
import { REPO_ROOT } from '../cluster/paths.ts';

const fixtures = `${REPO_ROOT}e2e/tests/fixtures`;

test('runs every file, reports failures precisely, and ends with the summary line', async () => {
  const files = [
    `${REPO_ROOT}e2e/scenarios/00-no-policy-full-mesh.yaml`,
    `${fixtures}/malformed-matrix.yaml`,
    `${fixtures}/wrong-expectation.yaml`,
    `${fixtures}/delete-missing.yaml`,
  ];
  const child = execa(process.execPath, [`${REPO_ROOT}e2e/scenario/main.ts`, ...files], { reject: false, all: true });
  const pid = child.pid;
  const run = await child;
  const out = String(run.all);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.at(-1), '1 passed, 3 failed', out);
  assert.equal(run.exitCode, 1);

  assert.match(out, /^PASS no-policy-full-mesh .*SCTP/m, 'the SCTP probe is reported as skipped, the scenario judged on the rest');
  assert.match(out, /^FAIL .*malformed-matrix\.yaml: step 1 \(probe\): .*x\/a/m);
  assert.match(out, /^FAIL .*delete-missing\.yaml: step 1 \(delete\): .*never-applied/m);
  assert.match(out, /^FAIL wrong-expectation /m);
  assert.match(out, /step 3 \(probe 80\/TCP\)/);
  assert.match(out, /expected/);
  assert.match(out, /observed/);
  assert.match(out, /x\/b -> y\/a: expected X .*observed \./);

  const leftovers = (await listNetns()).filter((n) => n.startsWith(`pal-${pid}-`));
  assert.deepEqual(leftovers, [], 'the runner removes its namespaces');
});
