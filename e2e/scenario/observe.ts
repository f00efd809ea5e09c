// How the scenario runner reads flows for `explain`: the way a user does,
// `kubectl palisade observe ... -o json` (cli/), one Flow per line.
import { execa } from 'execa';
import type { Flow } from '../../lib/flow.ts';
import { REPO_ROOT } from '../cluster/paths.ts';

export interface ObserveQuery {
  fromPod: string;
  toPod: string;
  port: number;
  protocol: string;
  /** Flows at or after this time (ms since the epoch). */
  sinceMs: number;
}

export type Observe = (q: ObserveQuery) => Promise<Flow[]>;

export const PLUGIN = `${REPO_ROOT}cli/kubectl-palisade`;

/** How much earlier than asked the plugin's window starts: it reads `--since` against its own clock once started, seconds later on a loaded machine. */
const STARTUP_SLACK_S = 60;

/**
 * Runs the plugin with the given kubeconfig; throws with its stderr when it
 * fails. The plugin is asked for a window wider than `sinceMs` by the time it
 * may take to start, and the flows before `sinceMs` are dropped here: a
 * window computed from the runner's clock alone missed every flow whenever
 * the plugin took over a second to start.
 */
export function observeThroughPlugin(kubeconfig: string): Observe {
  return async (q) => {
    const since = `${Math.max(1, Math.ceil((Date.now() - q.sinceMs) / 1000)) + STARTUP_SLACK_S}s`;
    const result = await execa(PLUGIN, [
      'observe', '-A', '--from-pod', q.fromPod, '--to-pod', q.toPod, '--port', String(q.port), '--protocol', q.protocol, '--since', since, '-o', 'json',
    ], { env: { KUBECONFIG: kubeconfig }, reject: false });
    if (result.exitCode !== 0) throw new Error(`kubectl palisade observe failed (exit ${result.exitCode}): ${String(result.stderr).trim()}`);
    return String(result.stdout).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Flow).filter((f) => Date.parse(f.time) >= q.sinceMs);
  };
}
