// Pure: whether the flows recorded for one probed connection explain its
// verdict as a scenario's `explain` entry says (FORMAT.md version 2):
// dropped at a hook by exactly a set of policies, or forwarded with, in
// each direction, one of the listed policies naming itself as the reason
// (or, for [], no policy isolating the pod there).
import { policyText, type Flow } from '../../lib/flow.ts';
import type { Explanation } from './format.ts';

const podOf = (p: Flow['source']) => (p.pod ? `${p.pod.namespace}/${p.pod.name}` : undefined);
const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

/** undefined when the flows explain the connection; otherwise what is missing and what was seen. */
export function explainFailure(e: Explanation, flows: readonly Flow[]): string | undefined {
  const mine = flows.filter((f) => podOf(f.source) === e.from && podOf(f.destination) === e.to);
  const seen = () => (mine.length === 0 ? 'no flow of this connection' : `seen: ${mine.map(describe).join('; ')}`);
  if (e.verdict === 'dropped') {
    const drops = mine.filter((f) => f.verdict === 'dropped' && f.direction === e.at);
    if (drops.some((f) => sameSet(f.policies.map(policyText), e.by))) return undefined;
    return `${e.from} -> ${e.to}: no flow says dropped at ${e.at} by [${e.by.join(', ')}] (${seen()})`;
  }
  for (const direction of ['egress', 'ingress'] as const) {
    const listed = e[direction];
    const opened = mine.filter((f) => f.type === 'new' && f.verdict === 'forwarded' && f.direction === direction);
    const ok = listed.length === 0
      ? opened.some((f) => !f.isolated && f.policies.length === 0)
      : opened.some((f) => f.policies.length > 0 && f.policies.every((p) => listed.includes(policyText(p))));
    if (!ok) {
      const want = listed.length === 0 ? 'no policy isolating it' : `one of [${listed.join(', ')}]`;
      return `${e.from} -> ${e.to}: no flow says forwarded at ${direction} by ${want} (${seen()})`;
    }
  }
  return undefined;
}

function describe(f: Flow): string {
  return `${f.type} ${f.verdict} at ${f.direction} by [${f.policies.map(policyText).join(', ')}]${f.isolated ? '' : ' (not isolated)'}`;
}
