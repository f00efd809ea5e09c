// Test fixtures: the scenario-format cluster (/work/shared/scenarios/FORMAT.md)
// in compiler input form, identity allocation, and connectivity matrices
// computed from compiled policy (evaluate.ts) or from the reference.

import { compile } from './compile.ts';
import { endpointsByIp, evaluate } from './evaluate.ts';
import { identityKey, NAMESPACE_NAME_LABEL } from './ids.ts';
import { allowed } from './reference.ts';
import type { CompiledPolicy, ContainerPort, NamespaceInput, NetworkPolicyInput, NetworkPolicySpec, PodInput, Protocol } from './types.ts';

/** The named container ports every scenario pod serves. */
export const SERVE_PORTS: ContainerPort[] = (['tcp', 'udp', 'sctp'] as const).flatMap((p) =>
  [80, 81].map((n) => ({ name: `serve-${n}-${p}`, containerPort: n, protocol: p.toUpperCase() as Protocol })),
);

export interface Cluster {
  namespaces: NamespaceInput[];
  pods: PodInput[];
}

/**
 * Namespaces labelled `kubernetes.io/metadata.name: N` and `ns: N`, each with
 * one pod per name labelled `pod: P`, at 10.0.<ns index + 1>.<pod index + 1>,
 * pod `a` on node-1, the others on node-2.
 */
export function scenarioCluster(namespaces: string[] = ['x', 'y', 'z'], pods: string[] = ['a', 'b', 'c']): Cluster {
  return {
    namespaces: namespaces.map((n) => ({ name: n, labels: { [NAMESPACE_NAME_LABEL]: n, ns: n } })),
    pods: namespaces.flatMap((n, i) =>
      pods.map((p, j) => ({
        namespace: n,
        name: p,
        labels: { pod: p },
        ip: `10.0.${i + 1}.${j + 1}`,
        node: j === 0 ? 'node-1' : 'node-2',
        containerPorts: SERVE_PORTS,
      })),
    ),
  };
}

/** Identity numbers from 256 for every pod's key, in key order. */
export function allocateIdentities(c: Cluster): Map<string, number> {
  const keys = new Set<string>();
  for (const p of c.pods) {
    const ns = c.namespaces.find((n) => n.name === p.namespace);
    keys.add(identityKey({ ...ns?.labels, [NAMESPACE_NAME_LABEL]: p.namespace }, p.labels));
  }
  return new Map([...keys].sort().map((k, i) => [k, 256 + i]));
}

export const np = (namespace: string, name: string, spec: NetworkPolicySpec): NetworkPolicyInput => ({ namespace, name, spec });

export const podKey = (p: PodInput) => `${p.namespace}/${p.name}`;

export function compileCluster(c: Cluster, policies: NetworkPolicyInput[], identities = allocateIdentities(c)): CompiledPolicy {
  return compile({ policies, pods: c.pods, namespaces: c.namespaces, identities });
}

/** Whether each (source row, destination column) connection is allowed. */
export type Verdicts = (from: PodInput, to: PodInput) => boolean;

export function compiledVerdicts(compiled: CompiledPolicy, protocol: Protocol, port: number): Verdicts {
  const byIp = endpointsByIp(compiled);
  return (from, to) => evaluate(compiled, { src: from.ip!, dst: to.ip!, protocol, port }, byIp).allowed;
}

export function referenceVerdicts(c: Cluster, policies: NetworkPolicyInput[], protocol: Protocol, port: number): Verdicts {
  return (from, to) => allowed(policies, c.pods, c.namespaces, { pod: from }, { pod: to }, protocol, port);
}

/** A matrix in the scenario format (`.` allowed, `X` refused; the diagonal is `.`). */
export function matrix(pods: PodInput[], verdicts: Verdicts): string {
  const names = pods.map(podKey);
  const rows = [['-', ...names].join(' ')];
  for (const from of pods) rows.push([podKey(from), ...pods.map((to) => (from === to || verdicts(from, to) ? '.' : 'X'))].join(' '));
  return rows.join('\n');
}

/** Normalizes a hand-written matrix: trims, single spaces. */
export const tidy = (m: string) =>
  m
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).join(' '))
    .join('\n');
