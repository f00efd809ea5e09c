// Palisade's policy kinds against a real kube-apiserver with the generated
// CRDs, and the operator that writes their status:
//
// - the API server accepts the API page's policies and refuses invalid ones
//   with a message naming the field (schema and CEL rules, as generated from
//   the zod schemas);
// - parity: every case of policy/palisade-policy-cases.ts gets the same
//   verdict from the API server as from validatePalisadePolicy (except the
//   cases marked operator-only, which the API server stores), and every field
//   the API server names is one zod names;
// - the operator marks each generation Valid=True or Valid=False naming the
//   field (by server-side apply of the status subresource, as its own field
//   manager), and posts a Warning event; with no more rights than the chart's
//   ClusterRole gives it;
// - Enforced and selectedEndpoints: pods (Pod objects with a node and an
//   address, written here as a kubelet would) and PalisadeNode objects
//   (status written here as an agent would: Ready, realized versions) drive
//   them: NoAgent, Pending until every node running a selected pod has
//   realized the policy's version, Enforced once they have (and it stays so,
//   the operator's own writes notwithstanding), the count following pods.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type V1ClusterRole } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { signCert } from '../cluster/certs.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { writeClientKubeconfig } from '../cluster/controllers.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { waitFor } from '../cluster/processes.ts';
import { createNamespace } from '../cluster/workload.ts';
import { POLICY_CASES } from '../../policy/palisade-policy-cases.ts';
import { PALISADE_CLUSTER_NETWORK_POLICY, PALISADE_NETWORK_POLICY, validatePalisadePolicy, type PolicyKindInfo } from '../../policy/palisade-policy.ts';
import { startPalisadePolicyController } from '../../operator/palisade-policies.ts';

const GROUP = 'palisade.io';
const VERSION = 'v1alpha1';
const NS = 'pp';

let cluster: Cluster;
let custom: CustomObjectsApi;

before(async () => {
  cluster = await startCluster({ nodes: 0 });
  custom = cluster.kubeconfig.makeApiClient(CustomObjectsApi);
  await createNamespace(cluster, NS, { 'kubernetes.io/metadata.name': NS });
});

after(async () => {
  await cluster?.stop();
});

const kubectl = (args: string[]) => execa('kubectl', ['--kubeconfig', cluster.controlPlane.adminKubeconfig, ...args]);

const manifest = (info: PolicyKindInfo, name: string, spec: unknown) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: info.kind,
  metadata: info.scope === 'Namespaced' ? { name, namespace: NS } : { name },
  spec,
});

/** What the API server answered: stored, or refused with the fields it names and its message. */
type Answer = { stored: true; object: any } | { stored: false; fields: string[]; message: string };

/** Creates a policy as kubectl does, with strict field validation (unknown fields are errors, not warnings). */
async function create(info: PolicyKindInfo, name: string, spec: unknown): Promise<Answer> {
  const body = manifest(info, name, spec);
  const coordinates = { group: GROUP, version: VERSION, plural: info.plural, body, fieldValidation: 'Strict' };
  try {
    const object =
      info.scope === 'Namespaced'
        ? await custom.createNamespacedCustomObject({ ...coordinates, namespace: NS })
        : await custom.createClusterCustomObject(coordinates);
    return { stored: true, object };
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const status = JSON.parse(String(error.body)) as { message: string; details?: { causes?: Array<{ field?: string }> } };
    // A strict decoding error (400) names unknown fields only in its message.
    const unknown = [...status.message.matchAll(/unknown field "([^"]+)"/g)].map((m) => m[1]!);
    const causes = (status.details?.causes ?? []).map((c) => c.field ?? '').filter((f) => f !== '' && f !== '<nil>');
    return { stored: false, fields: [...new Set([...unknown, ...causes])], message: status.message };
  }
}

async function remove(info: PolicyKindInfo, name: string): Promise<void> {
  const c = { group: GROUP, version: VERSION, plural: info.plural, name };
  if (info.scope === 'Namespaced') await custom.deleteNamespacedCustomObject({ ...c, namespace: NS });
  else await custom.deleteClusterCustomObject(c);
}

async function read(info: PolicyKindInfo, name: string, namespace = NS): Promise<any> {
  const c = { group: GROUP, version: VERSION, plural: info.plural, name };
  return info.scope === 'Namespaced' ? custom.getNamespacedCustomObject({ ...c, namespace }) : custom.getClusterCustomObject(c);
}

const refused = (answer: Answer) => {
  assert.ok(!answer.stored, 'the API server refuses it');
  return answer;
};

const FQDN_EGRESS = {
  endpointSelector: { matchLabels: { app: 'billing' } },
  egress: [
    { toFQDNs: [{ matchName: 'api.stripe.com' }, { matchPattern: '*.s3.amazonaws.com' }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] },
    { toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }], toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchPattern: '*' }] } }] },
  ],
};

describe('the API server with the generated CRDs', () => {
  test('accepts the API page\'s policies in both kinds, defaulting protocol to ANY; kubectl knows the short names and columns', async () => {
    const pnp = await create(PALISADE_NETWORK_POLICY, 'billing', FQDN_EGRESS);
    assert.ok(pnp.stored, JSON.stringify(pnp));
    assert.equal(pnp.object.spec.egress[1].toPorts[0].ports[0].protocol, 'ANY');
    const pcnp = await create(PALISADE_CLUSTER_NETWORK_POLICY, 'no-metadata-server', {
      endpointSelector: { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'NotIn', values: ['kube-system'] }] },
      egressDeny: [{ toCIDR: ['169.254.169.254/32'] }],
      ingressDeny: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
    });
    assert.ok(pcnp.stored, JSON.stringify(pcnp));
    const { stdout } = await kubectl(['get', 'pnp', '-n', NS]);
    assert.match(stdout.split('\n')[0]!, /^NAME\s+VALID\s+ENFORCED\s+ENDPOINTS\s+AGE$/);
    assert.match((await kubectl(['get', 'pcnp', 'no-metadata-server', '-o', 'name'])).stdout, /^palisadeclusternetworkpolicy\.palisade\.io\/no-metadata-server$/);
  });

  test('refuses an unknown field (strict field validation), naming it', async () => {
    const a = refused(await create(PALISADE_NETWORK_POLICY, 'unknown', { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '443', bogus: true }] }] }] }));
    assert.match(a.message, /unknown field "spec\.egress\[0\]\.toPorts\[0\]\.ports\[0\]\.bogus"/);
  });

  test('refuses a bad CIDR and an IPv6 one, naming the field and saying IPv6 is not supported', async () => {
    const a = refused(await create(PALISADE_NETWORK_POLICY, 'bad-cidr', { endpointSelector: {}, egress: [{ toCIDR: ['10.0.0.0/33'] }] }));
    assert.deepEqual(a.fields, ['spec.egress[0].toCIDR[0]']);
    assert.match(a.message, /spec\.egress\[0\]\.toCIDR\[0\]: Invalid value: "10\.0\.0\.0\/33"/);
    const b = refused(await create(PALISADE_CLUSTER_NETWORK_POLICY, 'v6', { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: 'fd00::/8' }] }] }));
    assert.match(b.message, /spec\.ingress\[0\]\.fromCIDRSet\[0\]\.cidr: Invalid value: "fd00::\/8": IPv6 is not supported: Palisade enforces IPv4 only/);
  });

  test('refuses endPort below port (a CEL rule), naming endPort', async () => {
    const a = refused(await create(PALISADE_NETWORK_POLICY, 'range', { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '8080', endPort: 8000 }] }] }] }));
    assert.match(a.message, /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.endPort: Invalid value: .*endPort must be greater than or equal to port/);
  });

  test('refuses DNS rules in a deny rule, naming rules', async () => {
    const a = refused(await create(PALISADE_CLUSTER_NETWORK_POLICY, 'deny-dns', { endpointSelector: {}, egressDeny: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchName: 'example.com' }] } }] }] }));
    assert.match(a.message, /spec\.egressDeny\[0\]\.toPorts\[0\]\.rules: Forbidden: DNS rules are not allowed in deny rules/);
  });

  test('refuses a bad FQDN pattern, naming matchPattern', async () => {
    const a = refused(await create(PALISADE_NETWORK_POLICY, 'pattern', { endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: 'a.**.example.com' }] }] }));
    assert.deepEqual(a.fields, ['spec.egress[0].toFQDNs[0].matchPattern']);
  });

  test('parity: the API server and validatePalisadePolicy reach the same verdict on every case of the table', async () => {
    const disagreements: string[] = [];
    for (const [i, c] of POLICY_CASES.entries()) {
      const zod = validatePalisadePolicy(manifest(PALISADE_NETWORK_POLICY, `case-${i}`, c.spec));
      const zodPaths = zod.ok ? [] : zod.issues.map((x) => x.path);
      assert.deepEqual([...new Set(zodPaths)], c.errors, `zod on ${c.name}`);
      const api = await create(PALISADE_NETWORK_POLICY, `case-${i}`, c.spec);
      const apiValid = api.stored;
      const expected = c.errors.length === 0 || c.operatorOnly === true;
      if (apiValid !== expected) disagreements.push(`${c.name}: the API server ${apiValid ? 'stores it' : `refuses it (${api.stored ? '' : api.message})`}; zod ${zod.ok ? 'accepts' : `refuses: ${zod.errors.join('; ')}`}`);
      if (!api.stored) {
        assert.ok(api.fields.length > 0, `${c.name}: the API server names a field: ${api.message}`);
        for (const field of api.fields) {
          if (!zodPaths.includes(field)) disagreements.push(`${c.name}: the API server names ${field}, zod names ${zodPaths.join(', ')}`);
        }
      } else {
        await remove(PALISADE_NETWORK_POLICY, `case-${i}`);
      }
    }
    assert.deepEqual(disagreements, []);
  });
});

describe('the operator writes status', () => {
  const core = () => cluster.kubeconfig.makeApiClient(CoreV1Api);
  const condition = (object: any, type: string) => (object.status?.conditions ?? []).find((c: { type: string }) => c.type === type);

  async function until(info: PolicyKindInfo, name: string, check: (object: any) => void, namespace = NS): Promise<any> {
    let last: any;
    await waitFor(`${info.kind} ${name} status`, async () => {
      last = await read(info, name, namespace);
      check(last);
    }, { timeoutMs: 15_000, intervalMs: 100 });
    return last;
  }

  test('a valid policy: Valid=True, Enforced=True (NoEndpoints: no pod), observedGeneration, by server-side apply as palisade-operator', async () => {
    const object = await until(PALISADE_NETWORK_POLICY, 'billing', (o) => assert.equal(condition(o, 'Valid')?.status, 'True'));
    assert.equal(object.status.observedGeneration, object.metadata.generation);
    assert.deepEqual(
      (({ status, reason, observedGeneration }) => ({ status, reason, observedGeneration }))(condition(object, 'Valid')),
      { status: 'True', reason: 'Accepted', observedGeneration: object.metadata.generation },
    );
    const enforced = condition(object, 'Enforced');
    assert.equal(enforced.status, 'True');
    assert.equal(enforced.reason, 'NoEndpoints');
    assert.match(enforced.message, /selects no endpoint/);
    assert.equal(object.status.selectedEndpoints, 0);
    const managers = object.metadata.managedFields.map((f: any) => `${f.manager} ${f.operation} ${f.subresource ?? ''}`.trim());
    assert.ok(managers.includes('palisade-operator Apply status'), managers.join(', '));
    const { stdout } = await kubectl(['get', 'pnp', 'billing', '-n', NS, '--no-headers']);
    assert.match(stdout, /^billing\s+True\s+True\s+0\s+\S+$/, 'Valid, Enforced, Endpoints, Age');
  });

  test('a policy the API server stores but Palisade refuses: Valid=False naming the field, and a Warning event', async () => {
    const answer = await create(PALISADE_CLUSTER_NETWORK_POLICY, 'bad-except', { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] });
    assert.ok(answer.stored);
    const object = await until(PALISADE_CLUSTER_NETWORK_POLICY, 'bad-except', (o) => assert.equal(condition(o, 'Valid')?.status, 'False'));
    const valid = condition(object, 'Valid');
    assert.equal(valid.reason, 'InvalidSpec');
    assert.equal(valid.message, 'spec.egress[0].toCIDRSet[0].except[0]: must be a strict subset of cidr 10.0.0.0/8');
    await waitFor('the Warning event', async () => {
      const events = await core().listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=bad-except' });
      const event = events.items.find((e) => e.reason === 'InvalidPalisadePolicy');
      assert.ok(event, 'an InvalidPalisadePolicy event');
      assert.equal(event.type, 'Warning');
      assert.equal(event.involvedObject.kind, 'PalisadeClusterNetworkPolicy');
      assert.match(event.message ?? '', /except\[0\]/);
    }, { timeoutMs: 10_000, intervalMs: 100 });
  });

  test('each generation is judged again: valid -> invalid -> valid, with observedGeneration and transition times', async () => {
    const info = PALISADE_NETWORK_POLICY;
    const first = await until(info, 'billing', (o) => assert.equal(condition(o, 'Valid')?.status, 'True'));
    const patch = async (spec: unknown) =>
      custom.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, plural: info.plural, namespace: NS, name: 'billing', body: [{ op: 'replace', path: '/spec', value: spec }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    await patch({ ...FQDN_EGRESS, egressDeny: [{ toCIDRSet: [{ cidr: '10.1.0.0/16', except: ['10.0.0.0/8'] }] }] });
    const second = await until(info, 'billing', (o) => {
      assert.equal(o.status.observedGeneration, first.metadata.generation + 1);
      assert.equal(condition(o, 'Valid').status, 'False');
    });
    assert.equal(condition(second, 'Valid').message, 'spec.egressDeny[0].toCIDRSet[0].except[0]: must be a strict subset of cidr 10.1.0.0/16');
    assert.deepEqual([condition(second, 'Enforced').status, condition(second, 'Enforced').reason], ['False', 'Invalid']);
    assert.match(condition(second, 'Enforced').message, /fail-closed.*; it selects no endpoint/);
    assert.equal(second.status.selectedEndpoints, 0, 'counted by its endpointSelector, valid on its own');
    await patch(FQDN_EGRESS);
    const third = await until(info, 'billing', (o) => {
      assert.equal(o.status.observedGeneration, first.metadata.generation + 2);
      assert.equal(condition(o, 'Valid').status, 'True');
    });
    assert.equal(condition(third, 'Valid').observedGeneration, first.metadata.generation + 2);
    assert.equal(condition(third, 'Enforced').status, 'True');
  });

  describe('Enforced and selectedEndpoints, from pods and the agents\' PalisadeNodes', () => {
    const ENF = 'enf';
    const nodesApi = { group: GROUP, version: VERSION, plural: 'palisadenodes' };
    let podIndex = 0;

    /** A Pod object on `node` with an address, as a kubelet would report it (no kubelet runs here). */
    async function runPod(name: string, labels: Record<string, string>, node: string): Promise<void> {
      await core().createNamespacedPod({ namespace: ENF, body: { metadata: { name, labels }, spec: { nodeName: node, containers: [{ name: 'c', image: 'none' }] } } });
      const ip = `10.99.0.${++podIndex}`;
      await core().patchNamespacedPodStatus(
        { namespace: ENF, name, body: { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }
    const deletePod = (name: string) => core().deleteNamespacedPod({ namespace: ENF, name, gracePeriodSeconds: 0 });

    /** A PalisadeNode whose status says what its (fake) agent has realized, as agent/status-reporter.ts writes it. */
    async function agentReports(node: string, realized: Record<string, string>, ready = true): Promise<void> {
      await custom.createClusterCustomObject({ ...nodesApi, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'PalisadeNode', metadata: { name: node }, spec: {} } }).catch((error: unknown) => {
        if (!(error instanceof ApiException && error.code === 409)) throw error;
      });
      await custom.patchClusterCustomObjectStatus(
        {
          ...nodesApi,
          name: node,
          body: {
            status: {
              revision: 1,
              endpoints: 0,
              realized,
              pendingIdentities: 0,
              conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? 'Enforcing' : 'Degraded', message: ready ? 'enforcing' : 'map full', lastTransitionTime: new Date().toISOString() }],
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }

    const enforced = (o: any) => condition(o, 'Enforced') ?? {};
    /** Waits for Enforced with `reason` (and the count), returns the object. */
    const untilEnforced = (info: PolicyKindInfo, name: string, reason: string, endpoints: number, message?: RegExp) =>
      until(info, name, (o) => {
        assert.equal(enforced(o).reason, reason, enforced(o).message);
        assert.equal(o.status.selectedEndpoints, endpoints);
        assert.equal(enforced(o).observedGeneration, o.metadata.generation);
        if (message) assert.match(enforced(o).message, message);
      }, ENF);
    /** The version the nodes must realize, as the Pending message names it. */
    const wanted = (o: any) => enforced(o).message.match(/resourceVersion (\d+) not yet realized/)?.[1] as string;

    before(async () => {
      await createNamespace(cluster, ENF, { team: 'web' });
    });

    test('NoAgent, then Pending until every node running a selected pod realized the version, then Enforced, and it stays so', async () => {
      const info = PALISADE_NETWORK_POLICY;
      const c = { group: GROUP, version: VERSION, plural: info.plural, namespace: ENF };
      await custom.createNamespacedCustomObject({ ...c, body: { apiVersion: `${GROUP}/${VERSION}`, kind: info.kind, metadata: { name: 'web', namespace: ENF }, spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEntities: ['cluster'] }] } } });
      await untilEnforced(info, 'web', 'NoEndpoints', 0);

      // Pods on two nodes; only fake-a has an agent, and it is not Ready.
      await runPod('web-1', { app: 'web' }, 'fake-a');
      await runPod('web-2', { app: 'web' }, 'fake-b');
      await runPod('other', { app: 'db' }, 'fake-c');
      await agentReports('fake-a', {}, false);
      const noAgent = await untilEnforced(info, 'web', 'NoAgent', 2,
        /^no Palisade agent on 1 of the 2 nodes that run its 2 selected endpoints: fake-b \(no PalisadeNode\); resourceVersion \d+ not yet realized on 1 of the 2 nodes that run its 2 selected endpoints: fake-a \(agent not Ready\)$/);
      assert.equal(enforced(noAgent).status, 'False');
      const version = wanted(noAgent);
      const below = (BigInt(version) - 1n).toString();

      // Both agents Ready, one version short: Pending, naming both.
      await agentReports('fake-a', { PalisadeNetworkPolicy: below, Pod: '999999999' });
      await agentReports('fake-b', { PalisadeNetworkPolicy: below });
      const pending = await untilEnforced(info, 'web', 'Pending', 2, /fake-a \(has not realized it yet\), fake-b \(has not realized it yet\)$/);
      assert.equal(wanted(pending), version, 'our own status writes do not move the version to realize');
      // fake-a realizes it exactly; fake-b does not yet.
      await agentReports('fake-a', { PalisadeNetworkPolicy: version });
      await untilEnforced(info, 'web', 'Pending', 2, /not yet realized on 1 of the 2 nodes that run its 2 selected endpoints: fake-b \(has not realized it yet\)$/);
      await agentReports('fake-b', { PalisadeNetworkPolicy: version });
      const done = await untilEnforced(info, 'web', 'Enforced', 2, new RegExp(`^every node that runs one of its 2 selected endpoints \\(2 nodes\\) has realized resourceVersion ${version}$`));
      assert.equal(enforced(done).status, 'True');
      // Writing True moved the object's resourceVersion past what the agents realized: it stays True.
      assert.ok(BigInt(done.metadata.resourceVersion) > BigInt(version));
      await sleep(1_000);
      const later = await read(info, 'web', ENF);
      assert.equal(enforced(later).reason, 'Enforced');
      assert.equal(later.metadata.resourceVersion, done.metadata.resourceVersion, 'no further write');
      const { stdout } = await kubectl(['get', 'pnp', 'web', '-n', ENF, '--no-headers']);
      assert.match(stdout, /^web\s+True\s+True\s+2\s+\S+$/);

      // An agent that stops being Ready: Pending again, naming it.
      await agentReports('fake-b', { PalisadeNetworkPolicy: version }, false);
      await untilEnforced(info, 'web', 'Pending', 2, /fake-b \(agent not Ready\)$/);
      await agentReports('fake-b', { PalisadeNetworkPolicy: version });
      await untilEnforced(info, 'web', 'Enforced', 2);

      // A new generation: a new version to realize.
      await custom.patchNamespacedCustomObject(
        { ...c, name: 'web', body: [{ op: 'replace', path: '/spec/ingress', value: [{ fromEntities: ['world'] }] }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      const next = await untilEnforced(info, 'web', 'Pending', 2);
      assert.ok(BigInt(wanted(next)) > BigInt(version));
      await agentReports('fake-a', { PalisadeNetworkPolicy: wanted(next) });
      await agentReports('fake-b', { PalisadeNetworkPolicy: wanted(next) });
      await untilEnforced(info, 'web', 'Enforced', 2);
    });

    test('selectedEndpoints follows pods created, finished, relabelled and deleted; a new node without an agent is NoAgent', async () => {
      const info = PALISADE_NETWORK_POLICY;
      await untilEnforced(info, 'web', 'Enforced', 2);
      await runPod('web-3', { app: 'web' }, 'fake-a');
      await untilEnforced(info, 'web', 'Enforced', 3, /its 3 selected endpoints \(2 nodes\)/);
      await deletePod('web-2');
      await untilEnforced(info, 'web', 'Enforced', 2, /its 2 selected endpoints \(1 node\)/);
      await core().patchNamespacedPodStatus({ namespace: ENF, name: 'web-3', body: { status: { phase: 'Succeeded' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      await untilEnforced(info, 'web', 'Enforced', 1);
      await core().patchNamespacedPod({ namespace: ENF, name: 'other', body: { metadata: { labels: { app: 'web' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      await untilEnforced(info, 'web', 'NoAgent', 2, /: fake-c \(no PalisadeNode\)$/);
      await deletePod('other');
      await untilEnforced(info, 'web', 'Enforced', 1);
      await deletePod('web-1');
      await untilEnforced(info, 'web', 'NoEndpoints', 0);
    });

    test('a cluster-wide policy reads its own kind\'s realized version, and selects by namespace labels', async () => {
      const info = PALISADE_CLUSTER_NETWORK_POLICY;
      await runPod('api-1', { app: 'api' }, 'fake-a');
      assert.ok((await create(info, 'team-web', { endpointSelector: { matchLabels: { 'io.cilium.k8s.namespace.labels.team': 'web' } }, egressDeny: [{ toCIDR: ['169.254.169.254/32'] }] })).stored);
      // fake-a realized far beyond it, but for the namespaced kind only.
      await agentReports('fake-a', { PalisadeNetworkPolicy: '999999999' });
      const pending = await untilEnforced(info, 'team-web', 'Pending', 1, /fake-a \(has realized no PalisadeClusterNetworkPolicy yet\)$/);
      await agentReports('fake-a', { PalisadeNetworkPolicy: '999999999', PalisadeClusterNetworkPolicy: wanted(pending) });
      await untilEnforced(info, 'team-web', 'Enforced', 1);
      await cluster.core.patchNamespace({ name: ENF, body: { metadata: { labels: { team: 'other' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      await untilEnforced(info, 'team-web', 'NoEndpoints', 0);
      await deletePod('api-1');
      await remove(info, 'team-web');
    });
  });

  test('the chart\'s ClusterRole is enough: the controller, as a user bound to it alone, writes status and posts events', async () => {
    // The cluster's operator (admin credentials) stops; the controller runs here as `palisade-operator-rbac`.
    await cluster.operator.stop();
    const helm = (await execa('bash', [`${REPO_ROOT}scripts/build-cluster-tools.sh`, 'path', 'helm'])).stdout.trim();
    const rendered = (await execa(helm, ['template', 'palisade', `${REPO_ROOT}helm/palisade`, '-n', 'kube-system', '--show-only', 'templates/operator.yaml'])).stdout;
    const role = parseAllDocuments(rendered).map((d) => d.toJS()).find((o) => o?.kind === 'ClusterRole') as V1ClusterRole;
    const user = 'palisade-operator-rbac';
    const rbac = cluster.kubeconfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: { metadata: { name: user }, rules: role.rules } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: user }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: user }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }] },
    });
    const creds = { cert: join(cluster.runDir, `${user}.crt`), key: join(cluster.runDir, `${user}.key`) };
    await signCert(cluster.controlPlane.certs, creds, { user });
    const path = join(cluster.runDir, `${user}.kubeconfig`);
    await writeClientKubeconfig(path, cluster.kubeconfig.getCurrentCluster()!.server, cluster.controlPlane.certs.caCert, creds);
    const kubeconfig = new KubeConfig();
    kubeconfig.loadFromFile(path);

    assert.ok((await create(PALISADE_NETWORK_POLICY, 'rbac-bad', { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] }] }] })).stored);
    assert.ok((await create(PALISADE_CLUSTER_NETWORK_POLICY, 'rbac-good', { endpointSelector: {}, ingressDeny: [{ fromEntities: ['world'] }] })).stored);
    const lines: string[] = [];
    const controller = await startPalisadePolicyController(kubeconfig, { log: (line) => lines.push(line), isLeading: () => true });
    try {
      await until(PALISADE_NETWORK_POLICY, 'rbac-bad', (o) => assert.equal(condition(o, 'Valid')?.status, 'False'));
      await until(PALISADE_CLUSTER_NETWORK_POLICY, 'rbac-good', (o) => {
        assert.equal(condition(o, 'Valid')?.status, 'True');
        assert.equal(condition(o, 'Enforced')?.observedGeneration, o.metadata.generation, 'Enforced written: it reads pods and PalisadeNodes');
        assert.equal(typeof o.status.selectedEndpoints, 'number');
      });
      await waitFor('the Warning event', async () => {
        const events = await core().listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=rbac-bad' });
        assert.ok(events.items.some((e) => e.reason === 'InvalidPalisadePolicy'));
      }, { timeoutMs: 10_000, intervalMs: 100 });
    } finally {
      await controller.stop();
    }
    assert.deepEqual(lines.filter((l) => /forbidden|could not|failed/i.test(l)), [], 'no call was refused');
  });
});
