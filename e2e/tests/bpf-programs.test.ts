// The eBPF programs' own unit tests (bpf/tests/run-tests.c, and the XDP
// prefilter's bpf/tests/prefilter-tests.c): crafted packets
// through BPF_PROG_TEST_RUN on the real kernel, checked for verdict, reason
// counter and conntrack effect, one fixture per row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execa } from 'execa';
import { BIN_DIR } from '../cluster/paths.ts';

test('every BPF_PROG_TEST_RUN fixture of the datapath passes', async () => {
  const run = await execa(`${BIN_DIR}/palisade-bpf-tests`, [], { reject: false, all: true });
  const out = String(run.all);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(out);
  assert.ok(summary, `no summary line in:\n${out}`);
  assert.ok(Number(summary[1]) >= 50, `only ${summary[1]} fixtures ran`);
  assert.equal(Number(summary[2]), 0, out);
  assert.equal(run.exitCode, 0, out);
});

test('every BPF_PROG_TEST_RUN fixture of the XDP prefilter passes (bpf/tests/prefilter-tests.c)', async () => {
  const run = await execa(`${BIN_DIR}/palisade-prefilter-tests`, [], { reject: false, all: true });
  const out = String(run.all);
  const summary = /^(\d+) passed, (\d+) failed \(\d+ checks\)$/m.exec(out);
  assert.ok(summary, `no summary line in:\n${out}`);
  assert.ok(Number(summary[1]) >= 9, `only ${summary[1]} fixtures ran`);
  assert.equal(Number(summary[2]), 0, out);
  assert.equal(run.exitCode, 0, out);
});
