// Outcomes of scenarios and the lines the runner prints for them.
import type { Protocol } from './ports.ts';

export type Outcome = 'pass' | 'fail' | 'skip';
export type Counts = { passed: number; failed: number; skipped: number };

/** A probe step as the runner left it; `unrun` = never reached. */
export type ProbeRun = { protocol: Protocol; status: 'passed' | 'failed' | 'unrun' };

/** `note` says why probes were left out of the verdict, when any were. */
export type Verdict = { outcome: Outcome; sctpSkipped: number; note: string | undefined };

/**
 * FORMAT.md's rule: without kernel SCTP support, SCTP probes are skipped
 * whatever their status. The scenario is then judged on its other probes, and
 * is skipped if it has none. A scenario that hit an error always fails.
 */
export function scenarioOutcome(probes: readonly ProbeRun[], env: { sctpSupported: boolean; errored: boolean }): Verdict {
  const isSkipped = (p: ProbeRun) => p.protocol === 'SCTP' && !env.sctpSupported;
  const judged = probes.filter((p) => !isSkipped(p));
  const sctpSkipped = probes.length - judged.length;
  const note = sctpSkipped > 0 ? `${sctpSkipped} SCTP probe(s) skipped: the kernel has no SCTP support` : undefined;
  const failed = env.errored || judged.some((p) => p.status !== 'passed');
  const outcome = failed ? 'fail' : judged.length === 0 && sctpSkipped > 0 ? 'skip' : 'pass';
  return { outcome, sctpSkipped, note };
}

export function countOutcomes(outcomes: Iterable<Outcome>): Counts {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const outcome of outcomes) counts[outcome === 'pass' ? 'passed' : outcome === 'fail' ? 'failed' : 'skipped']++;
  return counts;
}

/** `N passed, N failed`, then `, N skipped` only when some were skipped. */
export function summaryLine({ passed, failed, skipped }: Counts): string {
  return `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
}

/** One scenario's line, e.g. `FAIL deny-all (scenarios/deny-all.yaml) 12.3s`, then ` - note` if given. */
export function resultLine(r: { outcome: Outcome; name: string; file: string; seconds: number; note?: string }): string {
  return `${r.outcome.toUpperCase()} ${r.name} (${r.file}) ${r.seconds.toFixed(1)}s${r.note ? ` - ${r.note}` : ''}`;
}
