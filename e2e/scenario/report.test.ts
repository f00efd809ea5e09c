import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countOutcomes, resultLine, scenarioOutcome, summaryLine, type Counts, type Outcome, type ProbeRun } from './report.ts';

// summaryLine for each shape of the totals.
const summaries: { counts: Counts; line: string }[] = [
  // nothing skipped: no skipped part
  { counts: { passed: 3, failed: 1, skipped: 0 }, line: '3 passed, 1 failed' },
  // zero failures are still printed
  { counts: { passed: 0, failed: 0, skipped: 0 }, line: '0 passed, 0 failed' },
  // skipped appended when any
  { counts: { passed: 2, failed: 0, skipped: 1 }, line: '2 passed, 0 failed, 1 skipped' },
];

for (const row of summaries) {
  test(`summaryLine: ${row.line}`, () => assert.equal(summaryLine(row.counts), row.line));
}

test('countOutcomes tallies each outcome', () => {
  const outcomes: Outcome[] = ['pass', 'fail', 'pass', 'skip'];
  assert.deepEqual(countOutcomes(outcomes), { passed: 2, failed: 1, skipped: 1 });
});

const p = (protocol: ProbeRun['protocol'], status: ProbeRun['status']): ProbeRun => ({ protocol, status });

// scenarioOutcome under FORMAT.md's SCTP rule.
const outcomes: { what: string; probes: ProbeRun[]; sctp: boolean; errored?: boolean; outcome: Outcome; skipped: number }[] = [
  // every probe passed
  { what: 'all pass', probes: [p('TCP', 'passed'), p('SCTP', 'passed')], sctp: true, outcome: 'pass', skipped: 0 },
  // a failed probe fails the scenario
  { what: 'one fails', probes: [p('TCP', 'passed'), p('UDP', 'failed')], sctp: true, outcome: 'fail', skipped: 0 },
  // a probe never reached is not a pass
  { what: 'unrun probe', probes: [p('TCP', 'passed'), p('TCP', 'unrun')], sctp: true, outcome: 'fail', skipped: 0 },
  // with SCTP support, a failed SCTP probe counts like any other
  { what: 'SCTP fails with support', probes: [p('SCTP', 'failed')], sctp: true, outcome: 'fail', skipped: 0 },
  // only SCTP probes, kernel without SCTP: skipped
  { what: 'only SCTP, no support', probes: [p('SCTP', 'failed'), p('SCTP', 'unrun')], sctp: false, outcome: 'skip', skipped: 2 },
  // SCTP skipped, judged on the others, which pass
  { what: 'SCTP skipped, others pass', probes: [p('TCP', 'passed'), p('SCTP', 'failed')], sctp: false, outcome: 'pass', skipped: 1 },
  // SCTP skipped, judged on the others, which fail
  { what: 'SCTP skipped, others fail', probes: [p('UDP', 'failed'), p('SCTP', 'unrun')], sctp: false, outcome: 'fail', skipped: 1 },
  // an error fails the scenario even if only SCTP probes remain
  { what: 'error', probes: [p('SCTP', 'unrun')], sctp: false, errored: true, outcome: 'fail', skipped: 1 },
  // no probe at all and no error: pass
  { what: 'no probes', probes: [], sctp: false, outcome: 'pass', skipped: 0 },
];

for (const row of outcomes) {
  test(`scenarioOutcome: ${row.what}`, () => {
    const verdict = scenarioOutcome(row.probes, { sctpSupported: row.sctp, errored: row.errored ?? false });
    assert.equal(verdict.outcome, row.outcome);
    assert.equal(verdict.sctpSkipped, row.skipped);
    assert.equal(verdict.note !== undefined, row.skipped > 0);
  });
}

// resultLine for each outcome.
const lines: { r: Parameters<typeof resultLine>[0]; line: string }[] = [
  // a pass, seconds to one decimal
  { r: { outcome: 'pass', name: 'deny-all', file: 's/deny-all.yaml', seconds: 12.345 }, line: 'PASS deny-all (s/deny-all.yaml) 12.3s' },
  // a fail
  { r: { outcome: 'fail', name: 'n', file: 'f.yaml', seconds: 0.04 }, line: 'FAIL n (f.yaml) 0.0s' },
  // a skip with its note
  {
    r: { outcome: 'skip', name: 'n', file: 'f.yaml', seconds: 2, note: '1 SCTP probe(s) skipped: the kernel has no SCTP support' },
    line: 'SKIP n (f.yaml) 2.0s - 1 SCTP probe(s) skipped: the kernel has no SCTP support',
  },
];

for (const row of lines) {
  test(`resultLine: ${row.r.outcome}`, () => assert.equal(resultLine(row.r), row.line));
}
