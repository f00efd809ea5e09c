// The policy compiler's entry point: NetworkPolicies (and Palisade's kinds), pods, namespaces and
// identity numbers in; per-endpoint abstract policy entries out (see
// types.ts and docs/adr/0001-datapath-maps.md). Pure: no I/O, no clock, no
// randomness; the same input always gives the same, sorted output.

import { Compiler } from './compiler.ts';
import type { CompileInput, CompiledPolicy } from './types.ts';

export { Compiler, type ChangedEndpoints } from './compiler.ts';
export { identityKey, regionId, ruleRefString, policyRefString } from './ids.ts';

/** One-shot compilation (built on the incremental Compiler). */
export function compile(input: CompileInput): CompiledPolicy {
  const c = new Compiler({ ...(input.node === undefined ? {} : { node: input.node }), ...(input.dnsServers ? { dnsServers: input.dnsServers } : {}) });
  for (const ns of input.namespaces) c.setNamespace(ns);
  c.setIdentities(input.identities);
  for (const pod of input.pods) c.setPod(pod);
  for (const p of input.policies) c.setPolicy(p);
  for (const p of input.palisadePolicies ?? []) c.setPalisadePolicy(p);
  for (const [name, addresses] of input.dnsNames ?? []) c.setDnsName(name, addresses);
  return c.snapshot();
}
