// The Helm chart (helm/palisade) without a cluster: `helm lint --strict` is
// clean; `helm template` renders what a user relies on (the agent's host
// access, each piece justified; its capabilities; the operator's replicas;
// the flow API's registration and certificates; RBAC exactly as the code
// calls the API); and bad values fail with the value named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse, parseAllDocuments, type Document, YAMLMap, YAMLSeq } from 'yaml';
import { REPO_ROOT } from '../cluster/paths.ts';

const CHART = `${REPO_ROOT}helm/palisade`;
const HELM = (await execa('bash', [`${REPO_ROOT}scripts/build-cluster-tools.sh`, 'path', 'helm'])).stdout.trim();

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Rendered objects are read field by field, as the API server would.
  [key: string]: any;
}
interface Rendered {
  objects: K8sObject[];
  docs: Document[];
  get(kind: string, name: string): K8sObject;
  doc(kind: string, name: string): Document;
}

async function render(args: string[] = [], namespace = 'kube-system'): Promise<Rendered> {
  const { stdout } = await execa(HELM, ['template', 'palisade', CHART, '-n', namespace, ...args]);
  const docs = parseAllDocuments(stdout).filter((d) => d.contents !== null);
  const objects = docs.map((d) => d.toJS() as K8sObject);
  const index = (kind: string, name: string) => {
    const i = objects.findIndex((o) => o.kind === kind && o.metadata.name === name);
    assert.ok(i >= 0, `${kind} ${name} is rendered`);
    return i;
  };
  return { objects, docs, get: (k, n) => objects[index(k, n)]!, doc: (k, n) => docs[index(k, n)]! };
}

/** helm's error for values it refuses (schema or the chart's own checks). */
async function refused(args: string[], namespace = 'kube-system'): Promise<string> {
  const result = await execa(HELM, ['template', 'palisade', CHART, '-n', namespace, ...args], { reject: false });
  assert.notEqual(result.exitCode, 0, `helm template ${args.join(' ')} must fail`);
  return String(result.stderr);
}

/** RBAC rules as "group/resource[:name] verb" lines, sorted. */
function ruleLines(rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>): string[] {
  return rules
    .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => (r.resourceNames ?? ['']).flatMap((n) => r.verbs.map((v) => `${g || 'core'}/${res}${n ? `:${n}` : ''} ${v}`)))))
    .sort();
}
const lines = (spec: Record<string, string[]>) => Object.entries(spec).flatMap(([res, verbs]) => verbs.map((v) => `${res} ${v}`)).sort();

const defaults = await render();
const agent = defaults.get('DaemonSet', 'palisade-agent');
const agentPod = agent.spec.template.spec;
const agentContainer = agentPod.containers.find((c: { name: string }) => c.name === 'agent');
const installContainer = agentPod.initContainers.find((c: { name: string }) => c.name === 'install-cni');
const hostPaths = (pod: { volumes: Array<{ name: string; hostPath?: { path: string } }> }) =>
  Object.fromEntries(pod.volumes.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]));
const flag = (args: string[], name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

test('helm lint --strict is clean', async () => {
  for (const ns of ['kube-system', 'palisade-system']) {
    const args = ns === 'kube-system' ? [] : ['--set', 'flowsApi.enabled=false'];
    const { stdout } = await execa(HELM, ['lint', '--strict', CHART, '-n', ns, ...args]);
    assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    assert.doesNotMatch(stdout, /\[(WARNING|ERROR)\]/);
  }
});

test('the agent DaemonSet: host network, every taint tolerated, node-critical, rolling one node at a time', () => {
  assert.equal(agentPod.hostNetwork, true);
  assert.equal(agentPod.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.deepEqual(agentPod.tolerations, [{ operator: 'Exists' }]);
  assert.equal(agentPod.priorityClassName, 'system-node-critical');
  assert.deepEqual(agent.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  assert.equal(agentPod.serviceAccountName, 'palisade-agent');
  assert.equal(agentContainer.image, 'docker.io/palisade/palisade:0.1.0');
  assert.equal(agentContainer.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(agentContainer.command, ['node', 'agent/main.ts']);
});

test('the agent runs with named capabilities, never privileged, and each host path is justified', () => {
  for (const c of [...agentPod.initContainers, ...agentPod.containers]) {
    assert.notEqual(c.securityContext?.privileged, true, `${c.name} is not privileged`);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  }
  assert.deepEqual(agentContainer.securityContext.capabilities.add, ['NET_ADMIN', 'SYS_ADMIN', 'BPF', 'PERFMON']);
  // Seccomp stays the runtime's; AppArmor's default profile forbids pinning on /sys/fs/bpf.
  assert.equal(agentContainer.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(agentContainer.securityContext.appArmorProfile.type, 'Unconfined');
  assert.deepEqual(agentPod.securityContext.seLinuxOptions, { type: 'spc_t', level: 's0' });
  assert.deepEqual(installContainer.securityContext.capabilities.add, ['NET_ADMIN'], 'ip_forward of the node\'s network namespace, nothing more');
  assert.deepEqual(hostPaths(agentPod), {
    'cni-bin': '/opt/cni/bin',
    'cni-conf': '/etc/cni/net.d',
    'proc-sys-net': '/proc/sys/net',
    bpffs: '/sys/fs/bpf',
    run: '/run/palisade',
    state: '/var/lib/palisade',
    netns: '/run/netns',
  });
  // Every mount of a host path carries a comment saying why (yaml keeps the comments).
  const doc = defaults.doc('DaemonSet', 'palisade-agent');
  const host = new Set(Object.keys(hostPaths(agentPod)));
  for (const [kind, i] of [['initContainers', 0], ['containers', 0]] as const) {
    const seq = doc.getIn(['spec', 'template', 'spec', kind, i, 'volumeMounts'], true) as YAMLSeq<YAMLMap>;
    seq.items.forEach((mount, n) => {
      const name = String(mount.get('name'));
      if (!host.has(name)) return;
      const comment = (n === 0 ? mount.commentBefore ?? seq.commentBefore : mount.commentBefore) ?? '';
      assert.ok(comment.trim().length > 20, `${kind}[${i}] mount ${name} is justified by a comment`);
    });
  }
  const mounts = Object.fromEntries(agentContainer.volumeMounts.map((m: { name: string }) => [m.name, m]));
  assert.equal(mounts.bpffs.mountPath, '/sys/fs/bpf');
  assert.equal(mounts.bpffs.mountPropagation, 'HostToContainer');
  assert.equal(mounts.netns.mountPropagation, 'HostToContainer');
  assert.ok(!JSON.stringify(agent).includes('Bidirectional'), 'no Bidirectional propagation (it needs privileged)');
  // The agent's own container never writes the host's CNI directories.
  assert.equal(mounts['cni-conf'], undefined);
  assert.equal(mounts['cni-bin'], undefined);
});

test('the agent is told its node, serves flows and metrics on the node address, and is probed on /healthz and /readyz', () => {
  const args: string[] = agentContainer.args;
  assert.equal(flag(args, 'node'), '$(NODE_NAME)');
  const env = Object.fromEntries(agentContainer.env.map((e: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }) => [e.name, e.valueFrom.fieldRef.fieldPath]));
  assert.deepEqual(env, { NODE_NAME: 'spec.nodeName', HOST_IP: 'status.hostIP' });
  assert.equal(flag(args, 'flows-listen'), '$(HOST_IP):4244');
  assert.equal(flag(args, 'metrics-listen'), '$(HOST_IP):9965');
  assert.equal(flag(args, 'bpffs'), '/sys/fs/bpf/palisade');
  assert.equal(flag(args, 'state-dir'), '/var/lib/palisade');
  assert.equal(flag(args, 'flow-store-size'), '300000');
  assert.equal(flag(args, 'flow-ring-bytes'), '16777216');
  assert.equal(flag(args, 'flow-export-file'), undefined);
  assert.equal(flag(args, 'masquerade'), 'true', 'pods leaving the cluster are masqueraded by default (ADR 0011)');
  for (const [probe, path] of [['startupProbe', '/healthz'], ['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']] as const) {
    assert.deepEqual(agentContainer[probe].httpGet, { path, port: 'metrics' }, probe);
  }
  assert.equal(agentContainer.ports.find((p: { name: string }) => p.name === 'metrics').containerPort, 9965);
  // The TLS files and the token come from the chart's Secrets.
  const tls = agentPod.volumes.find((v: { name: string }) => v.name === 'flows-tls').projected.sources.map((s: { secret: { name: string } }) => s.secret.name);
  assert.deepEqual(tls, ['palisade-agent-tls', 'palisade-flows-token']);
  for (const [f, file] of [['flows-tls-cert', 'tls.crt'], ['flows-tls-key', 'tls.key'], ['flows-token-file', 'token']]) {
    assert.equal(flag(args, f!), `/etc/palisade/flows/${file}`);
  }
});

test('the install step puts the plugin and a configuration naming the agent socket on the node', () => {
  assert.deepEqual(installContainer.command, ['sh', '/etc/palisade/cni/install.sh']);
  const cm = defaults.get('ConfigMap', 'palisade-cni');
  const conflist = JSON.parse(cm.data['05-palisade.conflist']);
  assert.equal(conflist.cniVersion, '1.1.0');
  assert.equal(conflist.plugins.length, 1);
  assert.equal(conflist.plugins[0].type, 'palisade-cni');
  assert.equal(conflist.plugins[0].agentSocket, flag(agentContainer.args, 'cni-socket'));
  const script: string = cm.data['install.sh'];
  assert.match(script, /cp \/opt\/palisade\/cni\/palisade-cni /);
  assert.match(script, /mv -f \/host\/cni-conf\/\.05-palisade\.conflist\.tmp \/host\/cni-conf\/05-palisade\.conflist/);
  assert.match(script, /bpf_fs/);
  assert.match(agent.spec.template.metadata.annotations['checksum/cni'], /^[0-9a-f]{64}$/);
});

test('the operator: two replicas with leader election in the release namespace, non-root, read-only, no capabilities', () => {
  const op = defaults.get('Deployment', 'palisade-operator');
  assert.equal(op.spec.replicas, 2);
  const pod = op.spec.template.spec;
  const c = pod.containers[0];
  assert.deepEqual(c.command, ['node', 'operator/main.ts']);
  assert.equal(flag(c.args, 'namespace'), 'kube-system');
  assert.equal(flag(c.args, 'identity'), '$(POD_NAME)');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 65532);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
  assert.ok(c.resources.requests.memory && c.resources.limits.memory);
  assert.ok(pod.affinity.podAntiAffinity, 'replicas prefer different nodes');
  assert.equal(defaults.get('PodDisruptionBudget', 'palisade-operator').spec.maxUnavailable, 1);
  assert.equal(flag(c.args, 'health-listen'), ':9966');
  assert.deepEqual([c.livenessProbe.httpGet, c.readinessProbe.httpGet], [{ path: '/healthz', port: 'health' }, { path: '/readyz', port: 'health' }]);
});

test('the flow API: Deployment, Service, and an APIService pointing at it with the chart CA', () => {
  const api = defaults.get('APIService', 'v1alpha1.flows.palisade.io');
  const svc = defaults.get('Service', 'palisade-flows-api');
  const deploy = defaults.get('Deployment', 'palisade-flows-api');
  assert.deepEqual({ group: api.spec.group, version: api.spec.version }, { group: 'flows.palisade.io', version: 'v1alpha1' });
  assert.deepEqual(api.spec.service, { namespace: 'kube-system', name: svc.metadata.name, port: svc.spec.ports[0].port });
  for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) assert.equal(deploy.spec.template.metadata.labels[k], v);
  const c = deploy.spec.template.spec.containers[0];
  assert.equal(svc.spec.ports[0].targetPort, 'https');
  assert.equal(c.ports[0].name, 'https');
  assert.equal(flag(c.args, 'listen'), `0.0.0.0:${c.ports[0].containerPort}`);
  assert.equal(flag(c.args, 'agent-port'), '4244');
  assert.equal(deploy.spec.template.spec.securityContext.runAsNonRoot, true);
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.readinessProbe.httpGet.scheme, 'HTTPS');
  // kube-apiserver's front-proxy CA, from its ConfigMap (the release is in kube-system).
  const rh = deploy.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'requestheader');
  assert.equal(rh.configMap.name, 'extension-apiserver-authentication');
  assert.equal(flag(c.args, 'requestheader-allowed-names'), 'front-proxy-client');

  // One CA: the APIService trusts the flow API's certificate, the flow API trusts the agents'.
  const apiTls = defaults.get('Secret', 'palisade-flows-api-tls').data;
  const agentTls = defaults.get('Secret', 'palisade-agent-tls').data;
  const b64 = (s: string) => Buffer.from(s, 'base64');
  assert.equal(api.spec.caBundle, apiTls['ca.crt']);
  assert.equal(agentTls['ca.crt'], apiTls['ca.crt']);
  const ca = new X509Certificate(b64(apiTls['ca.crt']));
  const apiCert = new X509Certificate(b64(apiTls['tls.crt']));
  const agentCert = new X509Certificate(b64(agentTls['tls.crt']));
  assert.ok(apiCert.verify(ca.publicKey) && agentCert.verify(ca.publicKey));
  assert.ok(apiCert.checkHost('palisade-flows-api.kube-system.svc'), 'the name kube-apiserver dials');
  assert.equal(agentCert.checkHost(flag(c.args, 'agent-server-name')!), flag(c.args, 'agent-server-name'));
  assert.ok(apiCert.checkPrivateKey(createPrivateKey(b64(apiTls['tls.key']))));
  assert.equal(b64(defaults.get('Secret', 'palisade-flows-token').data.token).length, 64);
});

test('RBAC: each component gets exactly the API calls its code makes', () => {
  const role = (name: string) => ruleLines(defaults.get('ClusterRole', name).rules);
  // agent/agent.ts (readNode, nodes informer), policy-sync.ts (informers; readNamespacedPod),
  // status-reporter.ts (create PalisadeNode, merge-patch its status), lib/events.ts.
  assert.deepEqual(role('palisade-agent'), lines({
    'core/nodes': ['get', 'list', 'watch'],
    'core/pods': ['get', 'list', 'watch'],
    'core/namespaces': ['list', 'watch'],
    'core/services': ['list', 'watch'],
    'discovery.k8s.io/endpointslices': ['list', 'watch'],
    'networking.k8s.io/networkpolicies': ['list', 'watch'],
    'palisade.io/palisadenetworkpolicies': ['list', 'watch'],
    'palisade.io/palisadeclusternetworkpolicies': ['list', 'watch'],
    'palisade.io/securityidentities': ['list', 'watch'],
    'palisade.io/palisadenodes': ['create'],
    'palisade.io/palisadenodes/status': ['patch'],
    'core/events': ['create'],
  }));
  // operator/identities.ts, policy-validator.ts, palisade-policies.ts (informers, PalisadeNodes
  // included; server-side apply of status), lib/events.ts; leader.ts in the Role below.
  assert.deepEqual(role('palisade-operator'), lines({
    'core/pods': ['list', 'watch'],
    'core/namespaces': ['list', 'watch'],
    'palisade.io/palisadenodes': ['list', 'watch'],
    'palisade.io/securityidentities': ['create', 'delete', 'list', 'watch'],
    'networking.k8s.io/networkpolicies': ['list', 'watch'],
    'palisade.io/palisadenetworkpolicies': ['list', 'watch'],
    'palisade.io/palisadeclusternetworkpolicies': ['list', 'watch'],
    'palisade.io/palisadenetworkpolicies/status': ['patch'],
    'palisade.io/palisadeclusternetworkpolicies/status': ['patch'],
    'core/events': ['create'],
  }));
  assert.deepEqual(ruleLines(defaults.get('Role', 'palisade-operator-leader').rules), lines({
    'coordination.k8s.io/leases': ['create'],
    'coordination.k8s.io/leases:palisade-operator': ['get', 'update'],
  }));
  // flows-api/main.ts (listNode), server.ts (SubjectAccessReview, readNamespacedPod, readNamespace).
  assert.deepEqual(role('palisade-flows-api'), lines({
    'authorization.k8s.io/subjectaccessreviews': ['create'],
    'core/nodes': ['list'],
    'core/pods': ['get'],
    'core/namespaces': ['get'],
  }));
  assert.deepEqual(role('palisade-flows-viewer'), lines({
    'flows.palisade.io/flows': ['list', 'watch'],
    'flows.palisade.io/verdicts': ['get'],
    'flows.palisade.io/agents': ['list'],
  }));
  // Each binding gives its role to its own ServiceAccount, which its pods use.
  for (const c of ['agent', 'operator', 'flows-api']) {
    const binding = defaults.get('ClusterRoleBinding', `palisade-${c}`);
    assert.equal(binding.roleRef.name, `palisade-${c}`);
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: `palisade-${c}`, namespace: 'kube-system' }]);
    defaults.get('ServiceAccount', `palisade-${c}`);
  }
  assert.equal(defaults.get('Deployment', 'palisade-flows-api').spec.template.spec.serviceAccountName, 'palisade-flows-api');
  assert.equal(defaults.get('Deployment', 'palisade-operator').spec.template.spec.serviceAccountName, 'palisade-operator');
  // Nothing else is granted (the uninstall hook's Role is read-only, below).
  assert.deepEqual(defaults.objects.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name).sort(),
    ['palisade-agent', 'palisade-flows-api', 'palisade-flows-viewer', 'palisade-operator']);
});

test('the CRDs are the repository\'s, kept on uninstall', async () => {
  const files = (await readdir(`${REPO_ROOT}crds`)).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(files, ['palisadeclusternetworkpolicies.yaml', 'palisadenetworkpolicies.yaml', 'palisadenodes.yaml', 'securityidentities.yaml']);
  assert.deepEqual((await readdir(`${CHART}/files/crds`)).sort(), files, 'the chart carries every CRD');
  for (const file of files) {
    const source = parse(await readFile(`${REPO_ROOT}crds/${file}`, 'utf8')) as K8sObject;
    assert.equal(await readFile(`${CHART}/files/crds/${file}`, 'utf8'), await readFile(`${REPO_ROOT}crds/${file}`, 'utf8'), `helm/palisade/files/crds/${file} is a copy of crds/${file}`);
    const crd = defaults.get('CustomResourceDefinition', source.metadata.name);
    assert.deepEqual(crd.spec, source.spec);
    assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
  }
});

test('helm uninstall first removes Palisade from every node (pre-delete DaemonSet, awaited by a Job)', () => {
  const cleanup = defaults.get('DaemonSet', 'palisade-uninstall');
  const job = defaults.get('Job', 'palisade-uninstall-wait');
  for (const o of [cleanup, job]) assert.equal(o.metadata.annotations?.['helm.sh/hook'], 'pre-delete');
  assert.ok(Number(cleanup.metadata.annotations!['helm.sh/hook-weight']) < Number(job.metadata.annotations!['helm.sh/hook-weight']));
  const pod = cleanup.spec.template.spec;
  assert.equal(pod.hostNetwork, true);
  assert.deepEqual(pod.tolerations, agentPod.tolerations);
  assert.deepEqual(pod.nodeSelector, agentPod.nodeSelector);
  assert.deepEqual(pod.initContainers[0].securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN'] });
  const script: string = defaults.get('ConfigMap', 'palisade-uninstall').data['cleanup.sh'];
  assert.match(script, /rm -f \/host\/cni-conf\/05-palisade\.conflist /);
  assert.match(script, /rm -f \/host\/cni-bin\/palisade-cni /);
  assert.ok(script.includes(`rm -rf ${flag(agentContainer.args, 'bpffs')} /host${flag(agentContainer.args, 'state-dir')} /host/run/palisade`));
  assert.match(script, /tc qdisc del dev "\$\{link##\*\/\}" clsact/);
  assert.match(script, /grep ' name pal_prefilter '.*\n.*\n.*xdpgeneric off.*\n.*xdpdrv off/);
  assert.match(script, /proto 231/);
  assert.match(script, /iptables -w -t nat -D POSTROUTING -m comment --comment "palisade: masquerade pod traffic leaving the cluster" -j PALISADE-MASQUERADE/);
  assert.match(script, /iptables -w -t nat -X PALISADE-MASQUERADE/);
  assert.equal(hostPaths(pod)['cni-conf'], hostPaths(agentPod)['cni-conf']);
  assert.equal(hostPaths(pod)['cni-bin'], hostPaths(agentPod)['cni-bin']);
  assert.deepEqual(ruleLines(defaults.get('Role', 'palisade-uninstall').rules), lines({
    'apps/daemonsets:palisade-uninstall': ['get'],
    'core/pods': ['list'],
  }));
  const off = render(['--set', 'cni.uninstall.enabled=false']);
  return off.then((r) => assert.equal(r.objects.filter((o) => o.metadata.annotations?.['helm.sh/hook']).length, 0));
});

test('the scripts the chart runs on nodes parse (sh -n, node --check)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'helm-chart-test-'));
  try {
    const scripts: Array<[string, string]> = [
      ['install.sh', defaults.get('ConfigMap', 'palisade-cni').data['install.sh']],
      ['cleanup.sh', defaults.get('ConfigMap', 'palisade-uninstall').data['cleanup.sh']],
      ['wait.mjs', defaults.get('ConfigMap', 'palisade-uninstall').data['wait.mjs']],
    ];
    for (const [name, text] of scripts) {
      await writeFile(join(dir, name), text);
      await execa(name.endsWith('.sh') ? 'sh' : process.execPath, [name.endsWith('.sh') ? '-n' : '--check', join(dir, name)]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('values change what they say', async () => {
  const r = await render(['--set', 'agent.flows.storeSize=1000', '--set', 'agent.flows.export.enabled=true', '--set', 'operator.replicas=3',
    '--set', 'image.tag=dev', '--set', 'agent.hostReachesPods=false', '--set', 'cni.confDir=/etc/k3s/cni',
    '--set', 'routing.masquerade=false']);
  const a = r.get('DaemonSet', 'palisade-agent').spec.template.spec;
  const args: string[] = a.containers[0].args;
  assert.equal(flag(args, 'flow-store-size'), '1000');
  assert.equal(flag(args, 'flow-export-file'), '/var/log/palisade/flows.jsonl');
  assert.equal(flag(args, 'host-reaches-pods'), 'false');
  assert.equal(flag(args, 'masquerade'), 'false');
  assert.equal(hostPaths(a)['flow-export'], '/var/log/palisade');
  assert.equal(hostPaths(a)['cni-conf'], '/etc/k3s/cni');
  assert.equal(a.containers[0].image, 'docker.io/palisade/palisade:dev');
  assert.equal(r.get('Deployment', 'palisade-operator').spec.replicas, 3);

  const direct = await render(['--set', 'agent.apiServer.host=192.0.2.10']);
  const env = direct.get('DaemonSet', 'palisade-agent').spec.template.spec.containers[0].env;
  assert.deepEqual(env.filter((e: { name: string }) => e.name.startsWith('KUBERNETES_')), [
    { name: 'KUBERNETES_SERVICE_HOST', value: '192.0.2.10' }, { name: 'KUBERNETES_SERVICE_PORT', value: '6443' },
  ], 'the API server directly, not through the kubernetes Service');
  assert.match(await refused(['--set', 'agent.apiServer.host=a b']), /apiServer\/host/);

  const noFlows = await render(['--set', 'flowsApi.enabled=false'], 'palisade-system');
  const args2: string[] = noFlows.get('DaemonSet', 'palisade-agent').spec.template.spec.containers[0].args;
  assert.equal(flag(args2, 'flows-listen'), undefined);
  assert.equal(flag(args2, 'metrics-listen'), '$(HOST_IP):9965');
  assert.deepEqual(noFlows.objects.filter((o) => ['Secret', 'APIService'].includes(o.kind)), []);

  const pem = Buffer.from(defaults.get('Secret', 'palisade-flows-api-tls').data['ca.crt'], 'base64').toString();
  const elsewhere = await render(['--set-string', `flowsApi.requestheader.clientCA=${pem}`], 'palisade-system');
  const vol = elsewhere.get('Deployment', 'palisade-flows-api').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'requestheader');
  assert.equal(vol.configMap.name, 'palisade-requestheader-ca');
  assert.equal(elsewhere.get('ConfigMap', 'palisade-requestheader-ca').data['requestheader-client-ca-file'].trim(), pem.trim());
});

test('bad values are refused with the value named', async () => {
  const cases: Array<[string[], RegExp, string?]> = [
    [['--set', 'agent.flows.storeSize=-1'], /\/agent\/flows\/storeSize': minimum: got -1/],
    [['--set', 'image.pullPolicy=Sometimes'], /\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/],
    [['--set', 'bogus=1'], /additional properties 'bogus' not allowed/],
    [['--set', 'agent.flows.bogus=1'], /\/agent\/flows': additional properties 'bogus' not allowed/],
    [['--set', 'agent.flows.ringBytes=5000'], /\/agent\/flows\/ringBytes': value must be one of 4096/],
    [['--set', 'agent.metrics.port=70000'], /\/agent\/metrics\/port': maximum: got 70,?000/],
    [['--set', 'operator.replicas=0'], /\/operator\/replicas': minimum: got 0/],
    [['--set', 'agent.updateStrategy.maxUnavailable=0'], /\/agent\/updateStrategy\/maxUnavailable'/],
    [['--set', 'ipam.mode=cluster-pool'], /\/ipam\/mode': value must be 'kubernetes'/],
    [['--set-string', 'routing.masquerade=yes'], /\/routing\/masquerade': got string, want boolean/],
    [['--set', 'agent.flows.export.file=relative.jsonl'], /\/agent\/flows\/export\/file'/],
    [['--set', 'image.digest=latest'], /\/image\/digest'/],
    [['--set', 'operator.leaderElection.renewDeadlineSeconds=20'], /operator\.leaderElection\.renewDeadlineSeconds \(20\) must be shorter than operator\.leaderElection\.leaseDurationSeconds \(15\)/],
    [['--set', 'agent.metrics.port=4244'], /agent\.flows\.port and agent\.metrics\.port are both 4244/],
    [[], /flowsApi\.requestheader\.clientCA is required when the release is not in kube-system/, 'palisade-system'],
  ];
  for (const [args, message, namespace] of cases) {
    assert.match(await refused(args, namespace), message, args.join(' '));
  }
});
