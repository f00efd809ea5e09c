// Labels of the scenario's namespaces and pods. A label step replaces all
// earlier labels: the result depends only on the defaults and the step's own
// labels, which is why these functions take no previous state.
import { z } from 'zod';

export type Labels = Record<string, string>;

export const METADATA_NAME = 'kubernetes.io/metadata.name';

// Kubernetes label syntax: key `[dns-subdomain/]name`, value of at most 63 chars.
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = key.slice(0, Math.max(slash, 0));
  return NAME.test(key.slice(slash + 1)) && (slash < 0 || (prefix.length <= 253 && SUBDOMAIN.test(prefix)));
}

export const LabelsSchema = z.record(
  z.string().refine(isLabelKey, { error: (issue) => `"${String(issue.input)}" is not a valid label key` }),
  z.string().refine((v) => v === '' || NAME.test(v), { error: (issue) => `"${String(issue.input)}" is not a valid label value` }),
);

/**
 * A namespace's labels after a step setting `overrides` (none: the initial
 * labels). `ns: N` may be overridden; `kubernetes.io/metadata.name` may not,
 * and like an API server we keep it silently rather than reject the step.
 */
export function namespaceLabels(ns: string, overrides: Labels = {}): Labels {
  return { ns, ...overrides, [METADATA_NAME]: ns };
}

/** A pod's labels after a step setting `overrides`; `pod` is the pod's name (`a`, not `x/a`). */
export function podLabels(pod: string, overrides: Labels = {}): Labels {
  return { pod, ...overrides };
}
