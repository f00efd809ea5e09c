// Writes and removes the node's masquerade chain (agent/masquerade.ts plans
// it) with iptables, through execa: `iptables-restore --noflush` replaces the
// chain's rules in one transaction whenever the nodes change, so no packet
// ever meets half a list, and one rule in nat POSTROUTING, marked by its
// comment, jumps to it. The chain is the only iptables state Palisade owns.
// Whatever iptables the node's kube-proxy uses (iptables-nft on current
// distributions) is the one on PATH here too.
//
// The chain outlives the agent, as routes and pins do: pods keep leaving
// through the node's address while it restarts. The chart's uninstall step
// removes it (helm/palisade/templates/uninstall-cleanup.yaml).
import { execa } from 'execa';
import { SELF, type Netns } from './iproute.ts';

/** The nat chain Palisade owns (its name says whose it is, as kube-proxy's KUBE-* chains do). */
export const MASQUERADE_CHAIN = 'PALISADE-MASQUERADE';
/** The comment on POSTROUTING's jump, by which the agent and the uninstall find it. */
export const MASQUERADE_COMMENT = 'palisade: masquerade pod traffic leaving the cluster';

export interface MasqueradePlan {
  /** This node's pod CIDR: only its pods' traffic is masqueraded here. */
  podCidr: string;
  /** Destinations that stay unmasqueraded: every node's pod CIDR and address, as canonical IPv4 CIDRs. */
  cluster: string[];
}

/**
 * `iptables-restore --noflush` input that replaces the chain's rules (a chain
 * declared in the input is flushed first; nothing else of the table is
 * touched): traffic not from this node's pods, or to the cluster, returns;
 * the rest is masqueraded. Every address is checked to be an IPv4 CIDR, so
 * nothing else reaches the input.
 */
export function masqueradeRules(plan: MasqueradePlan): string {
  for (const cidr of [plan.podCidr, ...plan.cluster]) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) throw new TypeError(`not an IPv4 CIDR: ${JSON.stringify(cidr)}`);
  }
  return [
    '*nat',
    `:${MASQUERADE_CHAIN} - [0:0]`,
    `-A ${MASQUERADE_CHAIN} ! -s ${plan.podCidr} -j RETURN`,
    ...plan.cluster.map((cidr) => `-A ${MASQUERADE_CHAIN} -d ${cidr} -j RETURN`),
    `-A ${MASQUERADE_CHAIN} -j MASQUERADE`,
    'COMMIT',
    '',
  ].join('\n');
}

export class IptablesError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IptablesError';
  }
}

const JUMP = ['POSTROUTING', '-m', 'comment', '--comment', MASQUERADE_COMMENT, '-j', MASQUERADE_CHAIN];

function command(netns: Netns, file: string, args: string[], input?: string) {
  const [bin, full] = netns.kind === 'self' ? [file, args] : ['nsenter', [`--net=${netns.path}`, file, ...args]];
  return execa(bin, full, { input, reject: false });
}

async function iptables(netns: Netns, args: string[]): Promise<{ ok: boolean; stderr: string; missing: boolean }> {
  const result = await command(netns, 'iptables', ['-w', '-t', 'nat', ...args]);
  return { ok: result.exitCode === 0, stderr: String(result.stderr ?? '').trim(), missing: result.code === 'ENOENT' };
}

/**
 * Replaces the chain's rules with the plan's and makes sure POSTROUTING jumps to
 * it, once. Writes nothing when the node has exactly that already (an agent's
 * restart); resolves whether it wrote.
 */
export async function applyMasquerade(plan: MasqueradePlan, netns: Netns = SELF): Promise<boolean> {
  const rules = masqueradeRules(plan);
  const current = await listMasquerade(netns);
  const wanted = rules.split('\n').filter((line) => line.startsWith('-A '));
  if (current && current.jumps === 1 && current.chain.slice(1).join('\n') === wanted.join('\n')) return false;
  const restore = await command(netns, 'iptables-restore', ['-w', '--noflush'], rules);
  if (restore.exitCode !== 0) {
    const why = restore.code === 'ENOENT' ? 'iptables-restore is not installed' : String(restore.stderr ?? '').trim();
    throw new IptablesError(`cannot write the masquerade chain ${MASQUERADE_CHAIN}: ${why}`, { cause: restore });
  }
  if ((await iptables(netns, ['-C', ...JUMP])).ok) return true;
  const added = await iptables(netns, ['-A', ...JUMP]);
  if (!added.ok) throw new IptablesError(`cannot add the jump to ${MASQUERADE_CHAIN} in nat POSTROUTING: ${added.stderr}`);
  return true;
}

/**
 * Removes the jump and the chain, when there (an agent started with masquerading
 * off after one that had it on). Resolves true when it removed something;
 * without iptables on the node there is nothing of Palisade's to remove.
 */
export async function removeMasquerade(netns: Netns = SELF): Promise<boolean> {
  const listed = await iptables(netns, ['-S', MASQUERADE_CHAIN]);
  if (listed.missing || !listed.ok) return false; // no iptables, or no such chain
  while ((await iptables(netns, ['-D', ...JUMP])).ok) {
    // a jump added twice (by hand, say) goes too
  }
  for (const args of [['-F', MASQUERADE_CHAIN], ['-X', MASQUERADE_CHAIN]]) {
    const done = await iptables(netns, args);
    if (!done.ok) throw new IptablesError(`cannot remove the masquerade chain ${MASQUERADE_CHAIN}: ${done.stderr}`);
  }
  return true;
}

/** The chain's rules as `iptables -S` prints them (tests and diagnostics); undefined when there is no chain. */
export async function listMasquerade(netns: Netns = SELF): Promise<{ chain: string[]; jumps: number } | undefined> {
  const listed = await iptables(netns, ['-S', MASQUERADE_CHAIN]);
  if (!listed.ok) return undefined;
  const postrouting = await command(netns, 'iptables', ['-w', '-t', 'nat', '-S', 'POSTROUTING']);
  const jumps = String(postrouting.stdout).split('\n').filter((line) => line.endsWith(`-j ${MASQUERADE_CHAIN}`)).length;
  const result = await command(netns, 'iptables', ['-w', '-t', 'nat', '-S', MASQUERADE_CHAIN]);
  return { chain: String(result.stdout).split('\n').filter(Boolean), jumps };
}
