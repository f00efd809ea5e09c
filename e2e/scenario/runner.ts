// Runs one parsed scenario against a running cluster: creates its namespaces,
// pods and external hosts, has the cluster's DNS server answer its names,
// carries out each step through the Kubernetes API,
// probes every pair of a probe's sources and destinations (every pair of pods
// by default; a name is first resolved from the source's own namespace), and
// removes everything it created at the end (also when a
// step fails), so the next scenario starts from a clean cluster.
import { ApiException, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
// Not re-exported by the package root; it is the serializer KubernetesObjectApi itself uses.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { probeAll } from '../cluster/probe.ts';
import { firstAddress, resolveFrom, type Resolution } from '../cluster/resolve.ts';
import type { DnsRecord } from '../cluster/dns-server.ts';
import type { ScenarioCluster, ScenarioHost, ScenarioPod } from './scenario-cluster.ts';
import {
  classifyApplyObject,
  clusterPods,
  isName,
  namespaceLabels,
  usesDns,
  WORLD,
  podLabels,
  ScenarioError,
  type KubeObject,
  type ObjectRef,
  type Scenario,
  type Step,
} from './format.ts';
import { compareMatrix, gridOf, renderSideBySide, type ObservedCell } from './matrix.ts';
import { substitute } from './placeholders.ts';
import { deletionVersion, EnforcementTracker } from './enforcement.ts';
import type { ProbeRun } from './report.ts';
import { explainFailure } from './explain.ts';
import { observeThroughPlugin, type Observe } from './observe.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ScenarioRun {
  probes: ProbeRun[];
  /** Set when the scenario could not run to its end. */
  error: ScenarioError | undefined;
  /** Human-readable reports of failing probe steps. */
  failures: string[];
  sctpSupported: boolean;
}

export interface RunOptions {
  probeTimeoutMs?: number;
  /** How long a probe waits for the agents to report the scenario's changes enforced. */
  enforcementTimeoutMs?: number;
  /** How flows are read for `explain` (default: `kubectl palisade observe -o json`, as a user would). */
  observe?: Observe;
  /** How long `explain` waits for the flows of a probe to arrive. Default 5 s. */
  explainTimeoutMs?: number;
  /** How long a probe's name lookup waits for its answer (the query is resent meanwhile). Default 2 s. */
  resolveTimeoutMs?: number;
}

export async function runScenario(cluster: ScenarioCluster, scenario: Scenario, file: string, options: RunOptions = {}): Promise<ScenarioRun> {
  const run: ScenarioRun = { probes: [], error: undefined, failures: [], sctpSupported: true };
  const objects = cluster.kubeconfig.makeApiClient(ObjectApi);
  const applied = new Map<string, KubernetesObject>();
  const pods = new Map<string, ScenarioPod>();
  const hosts: ScenarioHost[] = [];
  const enforcement = new EnforcementTracker();
  // The names the DNS server answers now (cluster.dns, then setDNS steps), and its address once serving.
  const names = new Map(scenario.cluster.dns.map((d) => [d.name, d]));
  let dnsServer: string | undefined;
  let index = 0;
  try {
    for (const ns of scenario.cluster.namespaces) {
      const created = await cluster.core.createNamespace({ body: { metadata: { name: ns, labels: namespaceLabels(ns) } } });
      enforcement.note('Namespace', created.metadata?.resourceVersion ?? '');
    }
    const started = await cluster.startPods(
      clusterPods(scenario.cluster).map((id) => {
        const [namespace, name] = id.split('/') as [string, string];
        return { namespace, name, labels: podLabels(name) };
      }),
    );
    for (const pod of started) {
      pods.set(`${pod.namespace}/${pod.name}`, pod);
      enforcement.note('Pod', pod.resourceVersion);
    }
    if (scenario.cluster.external.length > 0) hosts.push(...(await cluster.startExternalHosts(scenario.cluster.external)));
    const podIps = new Map([...pods].map(([id, pod]) => [id, pod.ip]));
    const hostIps = new Map(hosts.map((h) => [h.name, h.ip]));
    // What a probe connects from (a network namespace) and to (an address): pods and external hosts.
    const ends = new Map<string, { netns: string; ip: string }>([...pods, ...hosts.map((h) => [`${WORLD}/${h.name}`, h] as const)]);
    const records = (): DnsRecord[] => [...names.values()].map((d) => ({ name: d.name, addresses: d.hosts.map((h) => hostIps.get(h)!), ttl: d.ttl }));
    if (usesDns(scenario)) dnsServer = await cluster.serveDns(records());

    for (const step of scenario.steps) {
      index++;
      try {
        await runStep(step);
      } catch (error) {
        if (error instanceof ScenarioError) throw error;
        throw new ScenarioError(file, { index, type: step.type }, (error as Error).message, { cause: error });
      }
    }

    async function runStep(step: Step): Promise<void> {
      switch (step.type) {
        case 'apply':
          for (const raw of step.objects) {
            const target = classifyApplyObject(substitute(raw, podIps, hostIps) as KubeObject, scenario.cluster);
            if (target.type === 'object') await applyObject(target.object);
            else await runStep(target);
          }
          return;
        case 'delete':
          for (const ref of step.objects) await deleteObject(ref);
          return;
        case 'labelNamespace':
          return relabel({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: step.namespace } }, namespaceLabels(step.namespace, step.labels));
        case 'labelPod':
          return relabel({ apiVersion: 'v1', kind: 'Pod', metadata: { name: step.name, namespace: step.namespace } }, podLabels(step.name, step.labels));
        case 'wait':
          await sleep(step.seconds * 1000);
          return;
        case 'setDNS':
          if (step.hosts.length === 0) names.delete(step.name);
          else names.set(step.name, step);
          dnsServer = await cluster.serveDns(records());
          return;
        case 'probe': {
          await enforcement.wait(cluster.kubeconfig, cluster.nodeNames, options.enforcementTimeoutMs);
          const probedAt = Date.now();
          const { rows, cols } = step.expect;
          // Names first: each source resolves them from its own namespace (FORMAT.md), then connects to the first address.
          const lookups = new Map<string, Resolution>();
          const asked = cols.filter(isName);
          if (asked.length > 0) {
            const answers = await resolveFrom(rows.map((from) => ({ netns: ends.get(from)!.netns, names: asked })), dnsServer!, options.resolveTimeoutMs ?? 2000);
            rows.forEach((from, r) => asked.forEach((name, n) => lookups.set(`${from}>${name}`, answers[r]![n]!)));
          }
          const target = (from: string, to: string): { ip: string } | undefined => {
            if (!isName(to)) return ends.get(to)!;
            const ip = firstAddress(lookups.get(`${from}>${to}`)!);
            return ip === undefined ? undefined : { ip };
          };
          // A name that did not resolve is X without a connection.
          const pairs = rows.flatMap((from) => cols.filter((to) => to !== from).map((to) => ({ from, to, dst: target(from, to) })));
          const connecting = pairs.filter((p) => p.dst !== undefined);
          const outcomes = await probeAll(
            connecting.map(({ from, dst }) => ({ from: ends.get(from)!, to: dst!, port: step.port, protocol: step.protocol })),
            options.probeTimeoutMs,
          );
          const observed = new Map<string, ObservedCell>();
          for (const { from, to } of pairs) observed.set(`${from}>${to}`, 'X');
          connecting.forEach(({ from, to }, i) => {
            const outcome = outcomes[i]!;
            if (outcome.verdict === 'skip') run.sctpSupported = false;
            observed.set(`${from}>${to}`, outcome.verdict === 'ok' ? '.' : outcome.verdict === 'fail' ? 'X' : '?');
          });
          if (outcomes.some((o) => o.verdict === 'skip')) {
            run.probes.push({ protocol: step.protocol, status: 'unrun' });
            return;
          }
          const matrix = gridOf<ObservedCell>(rows, cols, (from, to) => (from === to ? '.' : observed.get(`${from}>${to}`)!));
          const diffs = compareMatrix(step.expect, matrix);
          run.probes.push({ protocol: step.protocol, status: diffs.length === 0 ? 'passed' : 'failed' });
          if (diffs.length > 0) {
            // What each differing cell's name resolved to, so that a lookup's failure reads apart from a connection's.
            const resolved = diffs.filter((d) => isName(d.to)).map((d) => `  ${d.from} resolved ${d.to}: ${describeLookup(lookups.get(`${d.from}>${d.to}`)!)}`);
            run.failures.push(`step ${index} (probe ${step.portLabel}):\n${renderSideBySide(step.expect, matrix, diffs)}${resolved.map((l) => `\n${l}`).join('')}`);
          }
          const observe = options.observe ?? observeThroughPlugin(cluster.adminKubeconfig);
          for (const e of step.explain) {
            // Flows reach the agents' stores within moments; drop summaries within a second or two.
            const deadline = Date.now() + (options.explainTimeoutMs ?? 5000);
            let failure: string | undefined;
            for (;;) {
              const flows = await observe({ fromPod: e.from, toPod: e.to, port: step.port, protocol: step.protocol, sinceMs: probedAt - 1000 });
              failure = explainFailure(e, flows);
              if (!failure || Date.now() > deadline) break;
              await sleep(250);
            }
            if (failure) {
              run.failures.push(`step ${index} (probe ${step.portLabel}): explain: ${failure}`);
              // A probe whose flows do not explain it fails, whatever its matrix said.
              run.probes[run.probes.length - 1]!.status = 'failed';
            }
          }
          return;
        }
      }
    }

    async function applyObject(object: KubeObject): Promise<void> {
      const spec = asModel(object);
      let written: KubernetesObject;
      try {
        written = await objects.create(spec);
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw apiError('apply', object, error);
        // Exists already: replace it, as FORMAT.md says an apply does.
        const current = await objects.read(spec as Parameters<typeof objects.read>[0]);
        written = await objects.replace({ ...spec, metadata: { ...spec.metadata, resourceVersion: current.metadata?.resourceVersion } }).catch((e: unknown) => {
          throw apiError('replace', object, e);
        });
      }
      enforcement.note(object.kind, written.metadata?.resourceVersion);
      applied.set(objectKey(object), {
        apiVersion: object.apiVersion,
        kind: object.kind,
        metadata: { name: object.metadata.name, namespace: object.metadata.namespace, resourceVersion: written.metadata?.resourceVersion },
      });
    }

    async function deleteObject(ref: ObjectRef): Promise<void> {
      const known = [...applied.values()].find((o) => o.kind === ref.kind && o.metadata?.name === ref.name && o.metadata?.namespace === ref.namespace);
      if (!known) throw new Error(`cannot delete ${describe(ref)}: no such object was applied`);
      try {
        const deletedAt = await deletionVersion(cluster.kubeconfig, await objects.collectionPath(known), known, () => objects.delete(known));
        enforcement.note(known.kind!, deletedAt);
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) throw new Error(`cannot delete ${describe(ref)}: it does not exist`);
        throw apiError('delete', known as KubeObject, error);
      }
      applied.delete(objectKey(known as KubeObject));
    }

    async function relabel(header: KubernetesObject, labels: Record<string, string>): Promise<void> {
      const current = await objects.read(header as Parameters<typeof objects.read>[0]);
      const written = await objects.replace({ ...current, metadata: { ...current.metadata, labels } });
      enforcement.note(header.kind!, written.metadata?.resourceVersion);
    }
  } catch (error) {
    run.error =
      error instanceof ScenarioError ? error : new ScenarioError(file, index ? { index } : undefined, (error as Error).message, { cause: error });
  } finally {
    // The DNS server forgets the scenario's names (it serves the next scenario, if any).
    if (dnsServer !== undefined) await cluster.serveDns([]).catch(() => undefined);
    await teardown(cluster, objects, [...applied.values()], [...pods.values()], hosts, scenario.cluster.namespaces);
  }
  return run;
}

function describeLookup(r: Resolution): string {
  if ('error' in r) return `no answer (${r.error})`;
  return r.rcode !== 'NOERROR' || r.addresses.length === 0 ? `${r.rcode}, no address` : `${r.addresses.join(', ')} (TTL ${r.ttl ?? '-'})`;
}

/** Removes the scenario's objects, pods, external hosts and namespaces, so that their names and addresses are free again. */
async function teardown(
  cluster: ScenarioCluster, objects: KubernetesObjectApi, applied: KubernetesObject[], pods: ScenarioPod[], hosts: ScenarioHost[], namespaces: string[],
): Promise<void> {
  for (const object of applied) await objects.delete(object).catch(() => undefined);
  await cluster.stopExternalHosts(hosts);
  await cluster.stopPods(pods);
  await cluster.removeNamespaces(namespaces);
}

/**
 * The generic client serializes a known kind through its typed model, which
 * drops fields the model spells differently (NetworkPolicy's `from` is
 * `_from` there): turn the API-shaped object into that model first.
 */
function asModel(object: KubeObject): KubernetesObject {
  const version = object.apiVersion.split('/').pop()!;
  return ObjectSerializer.deserialize(object, `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`) as KubernetesObject;
}

/** The generic object client, plus the collection path of an object's kind (for watching it). */
class ObjectApi extends KubernetesObjectApi {
  async collectionPath(o: KubernetesObject): Promise<string> {
    const resource = await this.resource(o.apiVersion!, o.kind!);
    if (!resource) throw new Error(`the API server does not serve ${o.kind} in ${o.apiVersion}`);
    const base = o.apiVersion!.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
    return resource.namespaced ? `${base}/namespaces/${o.metadata!.namespace}/${resource.name}` : `${base}/${resource.name}`;
  }
}

function objectKey(o: KubeObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function describe(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}

function apiError(verb: string, object: KubeObject, error: unknown): Error {
  let reason = (error as Error).message;
  if (error instanceof ApiException) {
    try {
      const body = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as { message?: string };
      reason = body.message ?? reason;
    } catch {
      // keep the exception's own message
    }
  }
  return new Error(`${verb} ${describe({ kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name })} failed: ${reason}`, { cause: error });
}
