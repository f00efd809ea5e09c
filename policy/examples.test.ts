// The shared scenario examples, run against the compiler (through evaluate.ts)
// and against the reference: every probe matrix must match the file's.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { allocateIdentities, compileCluster, compiledVerdicts, matrix, referenceVerdicts, scenarioCluster, SERVE_PORTS, tidy } from './fixtures.ts';
import { NAMESPACE_NAME_LABEL } from './ids.ts';
import type { NetworkPolicyInput, Protocol } from './types.ts';
import { validateNetworkPolicy } from './validate.ts';

const DIR = '/work/shared/scenarios/examples/';
const files = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort() : [];

interface Step {
  apply?: unknown[];
  delete?: { kind: string; namespace: string; name: string }[];
  labelNamespace?: { namespace: string; labels: Record<string, string> };
  labelPod?: { pod: string; labels: Record<string, string> };
  probe?: { port: number | string; protocol?: Protocol; expect: string };
}

test('the scenario examples are present', { skip: files.length === 0 ? `no examples at ${DIR}` : false }, () => {
  assert.ok(files.length >= 6);
});

for (const file of files) {
  test(`example ${file}: compiled and reference matrices match the expectations`, () => {
    const doc = parse(readFileSync(DIR + file, 'utf8')) as { cluster?: { namespaces?: string[]; pods?: string[] }; steps: Step[] };
    const cluster = scenarioCluster(doc.cluster?.namespaces, doc.cluster?.pods);
    const ipOf = (key: string) => cluster.pods.find((p) => `${p.namespace}/${p.name}` === key)!.ip!;
    const substitute = (text: string) =>
      text
        .replace(/\$\{podIP:([^}]+)\}/g, (_, k: string) => ipOf(k))
        .replace(/\$\{podNet:([^}/]+\/[^}/]+)\/(\d+)\}/g, (_, k: string, len: string) => {
          const octets = ipOf(k).split('.').map(Number);
          const v = octets.reduce((a, o) => a * 256 + o, 0);
          const n = Number(len);
          const masked = n === 0 ? 0 : Math.floor(v / 2 ** (32 - n)) * 2 ** (32 - n);
          return `${[masked >>> 24, (masked >>> 16) & 255, (masked >>> 8) & 255, masked & 255].join('.')}/${n}`;
        });
    const policies = new Map<string, NetworkPolicyInput>();
    doc.steps.forEach((step, i) => {
      if (step.apply) {
        for (const obj of step.apply) {
          const r = validateNetworkPolicy(JSON.parse(substitute(JSON.stringify(obj))));
          assert.ok(r.ok, `${file} step ${i}: ${JSON.stringify(r)}`);
          policies.set(`${r.policy.namespace}/${r.policy.name}`, r.policy);
        }
      }
      for (const d of step.delete ?? []) policies.delete(`${d.namespace}/${d.name}`);
      if (step.labelNamespace) {
        const ns = cluster.namespaces.find((n) => n.name === step.labelNamespace!.namespace)!;
        ns.labels = { ns: ns.name, ...step.labelNamespace.labels, [NAMESPACE_NAME_LABEL]: ns.name };
      }
      if (step.labelPod) {
        const pod = cluster.pods.find((p) => `${p.namespace}/${p.name}` === step.labelPod!.pod)!;
        pod.labels = { pod: pod.name, ...step.labelPod.labels };
      }
      if (step.probe) {
        const named = typeof step.probe.port === 'string' ? SERVE_PORTS.find((p) => p.name === step.probe!.port) : undefined;
        const port = named ? named.containerPort : (step.probe.port as number);
        const protocol = named ? named.protocol : step.probe.protocol!;
        const list = [...policies.values()];
        const expect = tidy(step.probe.expect);
        const compiled = compileCluster(cluster, list, allocateIdentities(cluster));
        assert.deepEqual(compiled.problems, []);
        assert.equal(matrix(cluster.pods, compiledVerdicts(compiled, protocol, port)), expect, `${file} step ${i}: compiled`);
        assert.equal(matrix(cluster.pods, referenceVerdicts(cluster, list, protocol, port)), expect, `${file} step ${i}: reference`);
      }
    });
  });
}
