// `npm run scenarios -- FILE...`: runs policy scenarios (shared/scenarios/FORMAT.md)
// on one simulated two-node cluster, one scenario after another, and ends
// with the line `N passed, N failed` (`, N skipped` when any were skipped).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { standInScenarioCluster } from './scenario-cluster.ts';
import { parseScenario, ScenarioError, type Scenario } from './format.ts';
import { countOutcomes, resultLine, scenarioOutcome, summaryLine, type Outcome } from './report.ts';
import { runScenario } from './runner.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string', default: '2' },
    'probe-timeout-ms': { type: 'string', default: '1000' },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: npm run scenarios -- [--nodes N] [--probe-timeout-ms MS] FILE...\n');
  process.exit(2);
}

const outcomes: Outcome[] = [];
let cluster: Cluster | undefined;
const stop = async () => {
  await cluster?.stop();
  cluster = undefined;
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop().then(() => process.exit(130)));

try {
  for (const file of positionals) {
    const started = performance.now();
    let scenario: Scenario;
    try {
      scenario = parseScenario(await readFile(file, 'utf8'), file);
    } catch (error) {
      const message = error instanceof ScenarioError ? error.message : `${file}: ${(error as Error).message}`;
      outcomes.push('fail');
      console.log(resultLine({ outcome: 'fail', name: '(unparsed)', file, seconds: 0, note: message }));
      continue;
    }
    cluster ??= await startCluster({ nodes: Number(values.nodes) });
    const run = await runScenario(standInScenarioCluster(cluster), scenario, file, { probeTimeoutMs: Number(values['probe-timeout-ms']) });
    const verdict = scenarioOutcome(run.probes, { sctpSupported: run.sctpSupported, errored: run.error !== undefined });
    outcomes.push(verdict.outcome);
    const seconds = (performance.now() - started) / 1000;
    console.log(resultLine({ outcome: verdict.outcome, name: scenario.name, file, seconds, note: run.error?.message ?? verdict.note }));
    for (const failure of run.failures) console.log(indent(failure));
  }
} finally {
  await stop();
}
console.log(summaryLine(countOutcomes(outcomes)));
process.exitCode = outcomes.includes('fail') ? 1 : 0;

function indent(text: string): string {
  return text.replace(/^/gm, '    ');
}
