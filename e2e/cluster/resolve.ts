// Name lookups from inside network namespaces, as their applications make
// them: dns-client.ts runs in the namespace (nsenter --net) and queries the
// cluster's DNS server over UDP from its own socket there. One process per
// namespace, its names resolved at once.
import { execa } from 'execa';
import type { Resolution } from './dns-client.ts';
import { netnsPath } from './netns.ts';
import { NODE_BIN, REPO_ROOT } from './paths.ts';

export { firstAddress, type Resolution } from './dns-client.ts';

export const DNS_CLIENT = `${REPO_ROOT}e2e/cluster/dns-client.ts`;

/** `nsenter --net=...` of a namespace given by name (under /var/run/netns) or by path (/proc/PID/ns/net). */
export function nsenterNet(netns: string): string {
  return `--net=${netns.startsWith('/') ? netns : netnsPath(netns)}`;
}

/**
 * Resolves each request's names (A, over UDP) from its namespace through `server`;
 * returns, per request, each name's Resolution in the order given.
 */
export async function resolveFrom(
  requests: ReadonlyArray<{ netns: string; names: readonly string[] }>,
  server: string,
  timeoutMs: number,
): Promise<Resolution[][]> {
  return Promise.all(requests.map(async ({ netns, names }) => {
    if (names.length === 0) return [];
    const result = await execa('nsenter', [nsenterNet(netns), NODE_BIN, DNS_CLIENT, 'resolve', '--server', server, '--timeout-ms', String(timeoutMs), ...names], { reject: false });
    if (result.exitCode !== 0) throw new Error(`dns-client in ${netns} failed (exit ${result.exitCode}): ${String(result.stderr).trim()}`);
    const lines = String(result.stdout).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Resolution);
    if (lines.length !== names.length) throw new Error(`dns-client in ${netns} answered ${lines.length} of ${names.length} names`);
    return lines;
  }));
}
