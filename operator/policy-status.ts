// The status the operator writes on a PalisadeNetworkPolicy or
// PalisadeClusterNetworkPolicy (pure): observedGeneration, selectedEndpoints,
// and the conditions Valid (the zod validator's verdict, naming every invalid
// field) and Enforced (whether every node running a selected endpoint has
// realized this version: policy-enforcement.ts decides it).
//
// Conditions keep their lastTransitionTime while their status stays the
// same; `needsWrite` compares everything else, so the operator writes only
// when something a reader can see would change.

import type { PalisadePolicyValidation, PolicyCondition } from '../policy/palisade-policy.ts';
import type { EnforcementVerdict } from './policy-enforcement.ts';

export const VALID = 'Valid';
export const ENFORCED = 'Enforced';

/** Condition messages are capped (the CRD allows 32768; a reader wants less). */
export const MAX_MESSAGE = 4096;

export interface PolicyObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; generation?: number; resourceVersion?: string };
  spec?: unknown;
  status?: { observedGeneration?: number; selectedEndpoints?: number; conditions?: Array<Partial<PolicyCondition>> };
}

export interface DesiredStatus {
  observedGeneration: number;
  selectedEndpoints: number;
  conditions: PolicyCondition[];
}

/** The messages of an invalid policy, joined and capped, saying how many were left out. */
export function invalidMessage(errors: readonly string[]): string {
  let out = '';
  for (let i = 0; i < errors.length; i++) {
    const next = (out === '' ? '' : '; ') + errors[i];
    const rest = errors.length - i;
    if (out.length + next.length > MAX_MESSAGE - 40 && rest > 1) return `${out}; and ${rest} more`;
    if (out.length + next.length > MAX_MESSAGE) return `${out}${next}`.slice(0, MAX_MESSAGE - 1) + '…';
    out += next;
  }
  return out;
}

const capped = (message: string) => (message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE - 1) + '…' : message);

/** What the status should say about this generation of `policy`, given the validator's and the enforcement's verdicts. */
export function desiredStatus(policy: PolicyObject, validation: PalisadePolicyValidation, enforcement: EnforcementVerdict, now: Date): DesiredStatus {
  const generation = policy.metadata?.generation ?? 0;
  const current = new Map((policy.status?.conditions ?? []).map((c) => [c.type, c]));
  const condition = (type: string, status: PolicyCondition['status'], reason: string, message: string): PolicyCondition => {
    const before = current.get(type);
    const since = before?.status === status && typeof before.lastTransitionTime === 'string' ? before.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z');
    return { type, status, observedGeneration: generation, lastTransitionTime: since, reason, message };
  };
  const valid = validation.ok
    ? condition(VALID, 'True', 'Accepted', 'every field is valid')
    : condition(VALID, 'False', 'InvalidSpec', invalidMessage(validation.errors));
  const enforced = condition(ENFORCED, enforcement.status, enforcement.reason, capped(enforcement.message));
  return {
    observedGeneration: generation,
    selectedEndpoints: enforcement.selectedEndpoints,
    conditions: [valid, enforced],
  };
}

/** Whether the object's status differs from `desired` in anything but transition times. */
export function needsWrite(policy: PolicyObject, desired: DesiredStatus): boolean {
  if (policy.status?.observedGeneration !== desired.observedGeneration) return true;
  if (policy.status?.selectedEndpoints !== desired.selectedEndpoints) return true;
  const current = new Map((policy.status?.conditions ?? []).map((c) => [c.type, c]));
  return desired.conditions.some((d) => {
    const c = current.get(d.type);
    return !c || c.status !== d.status || c.reason !== d.reason || c.message !== d.message || c.observedGeneration !== d.observedGeneration;
  });
}

/** The server-side apply body of the status subresource: only the fields the operator owns. */
export function statusApplyBody(policy: PolicyObject, desired: DesiredStatus): Record<string, unknown> {
  const { name, namespace } = policy.metadata ?? {};
  return {
    apiVersion: policy.apiVersion,
    kind: policy.kind,
    metadata: { name, ...(namespace ? { namespace } : {}) },
    status: desired,
  };
}
