// Whether a pod may resolve a name through an upstream: the DNS rules of
// ../shared/POLICY-API.md, judged by the compiled policy. Pure.
//
// The rules that allow the pod's query to that upstream on port 53 are
// unioned: one without rules.dns (a plain L4 allow) lets every name
// through; the others let through the names their rules.dns (or, for an
// FQDN rule's implicit DNS rule, its FQDN selectors) match. A pod whose
// egress is not isolated resolves any name.
import { parseAddress } from '../../policy/cidr.ts';
import { matchingRules } from '../../policy/evaluate.ts';
import { fqdnMatcher, fqdnKey } from '../../policy/fqdn.ts';
import type { FqdnSelector } from '../../policy/palisade-policy.ts';
import type { EndpointPolicy, Protocol, RuleRef } from '../../policy/types.ts';

const matchers = new Map<string, (name: string) => boolean>();
const matches = (sel: FqdnSelector, name: string) => {
  const key = fqdnKey(sel);
  let m = matchers.get(key);
  if (!m) matchers.set(key, (m = fqdnMatcher(sel)));
  return m(name);
};

export function dnsAllows(
  endpoint: EndpointPolicy | undefined,
  upstream: { address: string; identity: number },
  protocol: Protocol,
  name: string,
  restriction: (rule: RuleRef) => readonly FqdnSelector[] | undefined,
): boolean {
  // Not a pod of this node the datapath redirects: the proxy is no open resolver.
  if (!endpoint?.dns) return false;
  if (!endpoint.egress) return true;
  const address = parseAddress(upstream.address);
  if (!address) return false;
  const rules = matchingRules(endpoint.egress, { address, identity: upstream.identity }, protocol, 53);
  for (const rule of rules) {
    const names = restriction(rule);
    if (names === undefined || names.some((sel) => matches(sel, name))) return true;
  }
  return false;
}
