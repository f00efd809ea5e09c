// Pure: `--since` durations, as kubectl writes them (`5s`, `5m`, `2h`,
// `1h30m`, `500ms`; `d` for days too). A bare number is refused rather than
// guessed at: seconds or minutes would both be plausible.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Milliseconds; throws an Error saying what is wrong with the text. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (t === '') throw new Error('empty duration: say 5s, 5m or 2h');
  if (/^\d+(\.\d+)?$/.test(t)) throw new Error(`duration ${JSON.stringify(text)} has no unit: say ${t}s, ${t}m or ${t}h`);
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < t.length) {
    const at = PART.lastIndex;
    const m = PART.exec(t);
    if (!m) throw new Error(`not a duration: ${JSON.stringify(text)} (at ${JSON.stringify(t.slice(at))}; units are ms, s, m, h, d, e.g. 90s or 1h30m)`);
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  if (ms <= 0) throw new Error(`duration ${JSON.stringify(text)} is zero`);
  return Math.round(ms);
}
