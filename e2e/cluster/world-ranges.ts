// Pure facts about the world outside the test clusters (world.ts), shared
// with the scenario format's checks: which addresses external hosts may
// have and what they serve.

/** The documentation ranges (RFC 5737): external hosts' addresses lie in them, nothing else here does. */
export const WORLD_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'] as const;

/** What every external host serves, on TCP and UDP (FORMAT.md version 2). */
export const EXTERNAL_PORTS = [80, 81, 443] as const;
export const EXTERNAL_PROTOCOLS = ['TCP', 'UDP'] as const;

/** Whether `ip` is a dotted IPv4 address in one of the documentation ranges. */
export function inWorldRanges(ip: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m || m.slice(1).some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')))) return false;
  return (WORLD_RANGES as readonly string[]).includes(`${m[1]}.${m[2]}.${m[3]}.0/24`);
}
