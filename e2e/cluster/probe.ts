// Connectivity checks between pods, all run by one prober process that opens
// each connection from inside its source pod's network namespace.
import { execa } from 'execa';
import { netnsPath } from './netns.ts';
import { programs } from './paths.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type ProbeOutcome = { verdict: 'ok' } | { verdict: 'fail'; reason: string } | { verdict: 'skip'; reason: string };

export interface ProbeRequest {
  /** A pod or a node: anything with a network namespace (a name under /var/run/netns, or a path). */
  from: { netns: string };
  to: { ip: string };
  port: number;
  protocol: Protocol;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

export async function probeAll(requests: ProbeRequest[], timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeOutcome[]> {
  if (requests.length === 0) return [];
  const input = requests
    .map((r, i) => `${i} ${r.from.netns.startsWith('/') ? r.from.netns : netnsPath(r.from.netns)} ${r.protocol.toLowerCase()} ${r.to.ip} ${r.port}`)
    .join('\n');
  const result = await execa(programs.prober, ['--timeout-ms', String(timeoutMs)], { input: `${input}\n`, reject: false });
  if (result.exitCode !== 0) throw new Error(`prober failed (exit ${result.exitCode}): ${String(result.stderr).trim()}`);
  const outcomes: Array<ProbeOutcome | undefined> = requests.map(() => undefined);
  for (const line of String(result.stdout).split('\n').filter(Boolean)) {
    const [id, verdict, reason = ''] = line.split(' ');
    const index = Number(id);
    if (verdict === 'ok') outcomes[index] = { verdict: 'ok' };
    else if (verdict === 'fail' || verdict === 'skip') outcomes[index] = { verdict, reason };
    else throw new Error(`prober printed an unexpected line: ${line}`);
  }
  const missing = outcomes.findIndex((o) => o === undefined);
  if (missing >= 0) throw new Error(`prober gave no answer for probe ${missing} of ${requests.length}`);
  return outcomes as ProbeOutcome[];
}
