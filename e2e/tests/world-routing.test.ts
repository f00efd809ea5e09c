// Routing to and from the world (issue 10 item 3, ADR 0011) on the stand-in
// cluster: external hosts behind the world's router on the underlay
// (e2e/cluster/world.ts), pods on two nodes. Pods reach the hosts and the
// hosts reach the pods, through the nodes; NetworkPolicy ipBlocks judge the
// hosts' real addresses, egress and ingress; masquerading is observed both
// ways: with it (the default) a host sees the node's address, without it
// (`--masquerade false`) the pod's, and the chain is gone. Only this test
// judges the addresses a host sees; scenarios never do (FORMAT.md).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { NetworkingV1Api } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { listNetns, netnsPath } from '../cluster/netns.ts';
import { probeAll, type ProbeRequest } from '../cluster/probe.ts';
import { startProcess, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import type { ExternalHost } from '../cluster/world.ts';
import { listMasquerade } from '../../datapath/masquerade.ts';
import type { Flow } from '../../lib/flow.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';
import { PLUGIN } from '../scenario/observe.ts';

const WHOAMI_PORT = 8080;

describe('routing to and from the world', { timeout: 180_000 }, () => {
  let cluster: Cluster;
  let web: ExternalHost;
  let db: ExternalHost;
  let a: SimPod; // on node-1
  let b: SimPod; // on node-2
  const whoami: ManagedProcess[] = [];
  const enforcement = new EnforcementTracker();

  before(async () => {
    cluster = await startCluster({ nodes: 2 });
    [web, db] = (await cluster.world.addHosts([{ name: 'web', ip: '203.0.113.10' }, { name: 'db', ip: '198.51.100.20' }])) as [ExternalHost, ExternalHost];
    enforcement.note('Namespace', await createNamespace(cluster, 'x', { 'kubernetes.io/metadata.name': 'x' }));
    [a, b] = (await startPods(cluster, [{ namespace: 'x', name: 'a', labels: { pod: 'a' } }, { namespace: 'x', name: 'b', labels: { pod: 'b' } }])) as [SimPod, SimPod];
    for (const pod of [a, b]) enforcement.note('Pod', pod.resourceVersion);
    assert.deepEqual([a.node.name, b.node.name], ['node-1', 'node-2']);
    // A server on each host that answers with the address it sees the client at.
    for (const host of [web, db]) {
      whoami.push(await startProcess({
        name: `whoami on ${host.name}`,
        command: 'socat',
        args: [`TCP-LISTEN:${WHOAMI_PORT},reuseaddr,fork`, 'SYSTEM:echo $SOCAT_PEERADDR'],
        netns: host.netns,
        logFile: `${cluster.runDir}/whoami-${host.name}.log`,
      }));
    }
  });

  let stopped = false;
  after(async () => {
    for (const p of whoami) await p.stop();
    if (!stopped) await cluster?.stop();
  });
  const hostNamespaces = async () => (await listNetns()).filter((n) => n.startsWith(`${cluster.runId}-x`)).sort();

  /** The address `host` sees a connection from `pod` come from. */
  async function seenAs(pod: SimPod, host: ExternalHost): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const r = await execa('nsenter', [`--net=${netnsPath(pod.netns)}`, 'socat', '-T', '3', '-', `TCP:${host.ip}:${WHOAMI_PORT}`], { input: '', reject: false });
      if (r.exitCode === 0 && String(r.stdout).trim()) return String(r.stdout).trim();
      if (attempt >= 20) throw new Error(`no answer from ${host.name}'s whoami for ${pod.namespace}/${pod.name}: ${String(r.stderr).trim()}`);
      await sleep(100); // the server may still be starting
    }
  }

  const verdicts = async (requests: ProbeRequest[]) => (await probeAll(requests, 1000)).map((o) => o.verdict);
  const to = (host: ExternalHost) => ({ ip: host.ip });

  it('pods reach external hosts and external hosts reach pods, TCP and UDP, across both nodes', async () => {
    const requests: ProbeRequest[] = [];
    for (const pod of [a, b]) {
      for (const host of [web, db]) {
        requests.push({ from: pod, to: to(host), port: 443, protocol: 'TCP' }, { from: pod, to: to(host), port: 81, protocol: 'UDP' });
        requests.push({ from: host, to: pod, port: 80, protocol: 'TCP' }, { from: host, to: pod, port: 80, protocol: 'UDP' });
      }
    }
    assert.deepEqual(await verdicts(requests), requests.map(() => 'ok'));
  });

  it('masquerades by default: the host sees the node\'s address, while flows at the pod\'s veth see the pod\'s', async () => {
    assert.equal(await seenAs(a, web), a.node.address);
    assert.equal(await seenAs(b, db), b.node.address);
    for (const node of cluster.nodes) {
      const chain = await listMasquerade({ kind: 'path', path: netnsPath(node.netns) });
      assert.equal(chain?.jumps, 1, `one jump to the chain on ${node.name}`);
      assert.ok(chain?.chain.includes(`-A PALISADE-MASQUERADE ! -s ${node.podCidr} -j RETURN`), `${node.name}: only its own pods: ${chain?.chain.join('; ')}`);
    }
    // The egress hook judged the connection with the pod's own address and the host's.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await execa(PLUGIN, ['observe', '-A', '--from-pod', 'x/a', '--ip', web.ip, '--port', String(WHOAMI_PORT), '--since', '60s', '-o', 'json'],
        { env: { KUBECONFIG: cluster.controlPlane.adminKubeconfig }, reject: false });
      const flows = String(r.stdout).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Flow);
      const opened = flows.find((f) => f.type === 'new' && f.direction === 'egress');
      if (opened) {
        assert.deepEqual([opened.source.ip, opened.destination.ip, opened.destination.entity, opened.verdict], [a.ip, web.ip, 'world', 'forwarded']);
        break;
      }
      assert.ok(Date.now() < deadline, `no flow of x/a to ${web.ip}:${WHOAMI_PORT} (exit ${r.exitCode}: ${String(r.stderr).trim()})`);
      await sleep(250);
    }
  });

  it('enforces ipBlocks on external hosts: egress to one host and not another, ingress from one host and not another', async () => {
    const policies: V1NetworkPolicy[] = [
      {
        metadata: { name: 'a-to-web-only', namespace: 'x' },
        spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: `${web.ip}/32` } }] }] },
      },
      {
        metadata: { name: 'b-from-db-only', namespace: 'x' },
        spec: { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'], ingress: [{ _from: [{ ipBlock: { cidr: '198.51.100.0/24' } }] }] },
      },
    ];
    const api = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
    for (const body of policies) {
      const written = await api.createNamespacedNetworkPolicy({ namespace: 'x', body });
      enforcement.note('NetworkPolicy', written.metadata?.resourceVersion);
    }
    await enforcement.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
    const cases: Array<[string, ProbeRequest, 'ok' | 'fail']> = [
      ['x/a -> web (allowed by its ipBlock)', { from: a, to: to(web), port: 80, protocol: 'TCP' }, 'ok'],
      ['x/a -> web, UDP (the rule has no ports)', { from: a, to: to(web), port: 443, protocol: 'UDP' }, 'ok'],
      ['x/a -> db (outside its ipBlock)', { from: a, to: to(db), port: 80, protocol: 'TCP' }, 'fail'],
      ['x/b -> db (x/b has no egress policy)', { from: b, to: to(db), port: 80, protocol: 'TCP' }, 'ok'],
      ['db -> x/b (allowed by x/b\'s ingress ipBlock)', { from: db, to: b, port: 81, protocol: 'TCP' }, 'ok'],
      ['web -> x/b (outside it)', { from: web, to: b, port: 81, protocol: 'TCP' }, 'fail'],
      ['x/a -> x/b (a pod outside it too)', { from: a, to: b, port: 81, protocol: 'UDP' }, 'fail'],
      ['web -> x/a (x/a has no ingress policy)', { from: web, to: a, port: 80, protocol: 'TCP' }, 'ok'],
    ];
    const got = await verdicts(cases.map(([, r]) => r));
    assert.deepEqual(cases.map(([what], i) => `${what}: ${got[i]}`), cases.map(([what, , want]) => `${what}: ${want}`));
  });

  it('refuses hosts outside the documentation ranges or sharing an address, and leaves none of a failed start behind', async () => {
    const before = await hostNamespaces();
    assert.equal(before.length, 2);
    await assert.rejects(cluster.world.addHosts([{ name: 'fine', ip: '192.0.2.7' }, { name: 'pod-net', ip: '10.200.1.9' }]), /pod-net: 10\.200\.1\.9 is not in 192\.0\.2\.0\/24/);
    await assert.rejects(cluster.world.addHosts([{ name: 'twin', ip: web.ip }]), /203\.0\.113\.10 is already external host web's/);
    assert.deepEqual(await hostNamespaces(), before);
  });

  it('with --masquerade false the host sees the pod\'s address, replies come back routed, and the chain is gone', async () => {
    for (const node of cluster.nodes) {
      await node.agent.stop();
      await node.startAgent(['--masquerade', 'false']);
      assert.equal(await listMasquerade({ kind: 'path', path: netnsPath(node.netns) }), undefined, `no chain left on ${node.name}`);
    }
    assert.equal(await seenAs(a, web), a.ip);
    assert.equal(await seenAs(b, db), b.ip);
    const got = await verdicts([
      { from: a, to: to(web), port: 80, protocol: 'TCP' },
      { from: b, to: to(web), port: 81, protocol: 'UDP' },
      { from: a, to: to(db), port: 80, protocol: 'TCP' }, // still outside x/a's ipBlock
      { from: db, to: b, port: 80, protocol: 'TCP' },
      { from: web, to: b, port: 80, protocol: 'TCP' }, // still outside x/b's
    ]);
    assert.deepEqual(got, ['ok', 'ok', 'fail', 'ok', 'fail']);
  });

  it('stop() removes the world with the cluster: router, hosts, nothing of the run left', async () => {
    stopped = true;
    await cluster.stop();
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(`${cluster.runId}-`)), []);
  });
});
