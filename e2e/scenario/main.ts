// `npm run scenarios -- FILE...`: runs policy scenarios (shared/scenarios/FORMAT.md)
// on one two-node cluster, one scenario after another, and ends with the
// line `N passed, N failed` (`, N skipped` when any were skipped).
//
// By default the cluster is the stand-in (e2e/cluster/cluster.ts: agents as
// host processes, a kubelet stand-in), which starts and runs scenarios
// several times faster. `--real-nodes` runs the same scenarios on real nodes
// (kubelet, containerd, runc, kube-proxy) with Palisade installed by
// `helm install` of its chart, as a user runs it; the start and install
// timings go to stderr. Figures: docs/adr/0008-real-nodes-in-tests.md.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startCluster } from '../cluster/cluster.ts';
import { startRealCluster } from '../cluster/real-cluster.ts';
import { installPalisade, realScenarioCluster } from '../cluster/real-pods.ts';
import { forever, StopOnSignal } from '../cluster/stop-on-signal.ts';
import { standInScenarioCluster, type ScenarioCluster } from './scenario-cluster.ts';
import { parseScenario, ScenarioError, type Scenario } from './format.ts';
import { countOutcomes, resultLine, scenarioOutcome, summaryLine, type Outcome } from './report.ts';
import { runScenario } from './runner.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string', default: '2' },
    'probe-timeout-ms': { type: 'string', default: '1000' },
    'real-nodes': { type: 'boolean', default: false },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: npm run scenarios -- [--real-nodes] [--nodes N] [--probe-timeout-ms MS] FILE...\n');
  process.exit(2);
}

const log = (text: string) => process.stderr.write(`${text}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const nodes = Number(values.nodes);
type Running = { scenarios: ScenarioCluster; stop(): Promise<void> };
const lifetime = new StopOnSignal<Running>(log);

async function start(): Promise<Running> {
  const t = performance.now();
  if (!values['real-nodes']) {
    const cluster = await startCluster({ nodes });
    log(`stand-in cluster (${nodes} nodes, agents as host processes) up in ${seconds(performance.now() - t)}`);
    return { scenarios: standInScenarioCluster(cluster), stop: () => cluster.stop() };
  }
  const cluster = await startRealCluster({ nodes, images: ['testpod', 'palisade'] });
  const c = cluster.timings;
  log(`real nodes: ${nodes}-node cluster up in ${seconds(c.total)} (images ${seconds(c.images)}, control plane ${seconds(c.controlPlane)}, controllers ${seconds(c.controllers)}, nodes ${seconds(c.nodes)})`);
  try {
    const i = await installPalisade(cluster, { importImage: false });
    log(`real nodes: Palisade installed by helm install in ${seconds(i.helm + i.nodesReady)} (helm install --wait ${seconds(i.helm)}, then every node Ready ${seconds(i.nodesReady)}); ${seconds(performance.now() - t)} in all`);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return { scenarios: realScenarioCluster(cluster), stop: () => cluster.stop() };
}

const outcomes: Outcome[] = [];
let running: Running | undefined;
try {
  for (const file of positionals) {
    let scenario: Scenario;
    try {
      scenario = parseScenario(await readFile(file, 'utf8'), file);
    } catch (error) {
      const message = error instanceof ScenarioError ? error.message : `${file}: ${(error as Error).message}`;
      outcomes.push('fail');
      console.log(resultLine({ outcome: 'fail', name: '(unparsed)', file, seconds: 0, note: message }));
      continue;
    }
    running ??= await lifetime.start(start);
    const started = performance.now(); // the cluster's start is not the scenario's
    const run = await runScenario(running.scenarios, scenario, file, { probeTimeoutMs: Number(values['probe-timeout-ms']) });
    if (lifetime.interrupted) await forever(); // what failed is what Ctrl-C killed: no verdict; the signal's handler exits
    const verdict = scenarioOutcome(run.probes, { sctpSupported: run.sctpSupported, errored: run.error !== undefined });
    outcomes.push(verdict.outcome);
    console.log(resultLine({ outcome: verdict.outcome, name: scenario.name, file, seconds: (performance.now() - started) / 1000, note: run.error?.message ?? verdict.note }));
    for (const failure of run.failures) console.log(indent(failure));
  }
} finally {
  await lifetime.stop();
}
console.log(summaryLine(countOutcomes(outcomes)));
process.exitCode = outcomes.includes('fail') ? 1 : 0;

function indent(text: string): string {
  return text.replace(/^/gm, '    ');
}
