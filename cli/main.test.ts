// The HTTP shell end to end against a stub API server: the real command
// line, kubeconfig loading, requests and exit codes. The logic behind them
// is tested in the pure modules' tests.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { denied, flow } from './fixtures.ts';
import { run } from './main.ts';
import type { Io } from './commands.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
let handler: Handler = (_req, res) => res.writeHead(500).end();
const seen: string[] = [];
let server: Server;
let kubeconfig: string;

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://stub');
    seen.push(`${url.pathname}${url.search}`);
    handler(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'palisade-cli-'));
  kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters:
- name: stub
  cluster: {server: "http://127.0.0.1:${(server.address() as AddressInfo).port}", insecure-skip-tls-verify: true}
users:
- name: alice
  user: {token: alice-token}
contexts:
- name: shop
  context: {cluster: stub, user: alice, namespace: shop}
- name: plain
  context: {cluster: stub, user: alice}
current-context: shop
`);
});
after(() => server.close());

const json = (res: ServerResponse, code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const statusBody = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });

async function plugin(args: string[], interruptAfterMs?: number): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  seen.length = 0;
  const io: Io = {
    out: (t) => void (out += t),
    err: (l) => void (err += `${l}\n`),
    now: () => Date.parse('2026-12-01T03:40:00Z'),
    onInterrupt: (stop) => {
      const timer = interruptAfterMs === undefined ? undefined : setTimeout(stop, interruptAfterMs);
      return () => clearTimeout(timer);
    },
  };
  const code = await run(['--kubeconfig', kubeconfig, ...args], io);
  return { code, out, err };
}

test('observe: the context namespace is asked with the user\'s token, the answer printed as a table, loss on stderr', async () => {
  let auth: string | undefined;
  handler = (req, res, url) => {
    auth = req.headers.authorization;
    if (url.pathname === '/apis/flows.palisade.io/v1alpha1/namespaces/shop/flows') {
      return json(res, 200, {
        kind: 'FlowList',
        items: [flow({ time: '2026-12-01T03:38:40.1Z' }), denied({ time: '2026-12-01T03:38:41.2Z', node: 'node-1' })],
        nodes: { 'node-1': { lost: { kernel: { drop: 2 }, decoder: 0, consumer: 0 } }, 'node-2': { lost: { kernel: {}, decoder: 0, consumer: 0 } } },
        unreachable: [],
      });
    }
    json(res, 404, statusBody(404, 'NotFound', 'no'));
  };
  const r = await plugin(['observe', '--verdict', 'dropped', '--since', '5m']);
  assert.equal(r.code, 0, r.err);
  assert.equal(auth, 'Bearer alice-token');
  const url = new URL(seen[0]!, 'http://stub');
  assert.deepEqual(JSON.parse(url.searchParams.get('criteria')!), { verdicts: ['dropped'] });
  assert.equal(url.searchParams.get('since'), String(Date.parse('2026-12-01T03:35:00Z')));
  assert.match(r.out, /^TIME +NODE .*\n03:38:40\.100 +node-2 +forwarded .*\n03:38:41\.200 +node-1 +dropped /);
  assert.equal(r.err, 'lost: node node-1 lost 2 flows since its agent started: 2 in the kernel, ring full (drop 2)\n');
});

test('observe -o json across the cluster: one Flow per line', async () => {
  handler = (_req, res) => json(res, 200, { kind: 'FlowList', items: [flow()], nodes: {}, unreachable: [] });
  const r = await plugin(['observe', '-A', '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  assert.equal(new URL(seen[0]!, 'http://stub').pathname, '/apis/flows.palisade.io/v1alpha1/flows');
  assert.deepEqual(JSON.parse(r.out), flow());
});

test('observe: failures become exit codes with what to do', async () => {
  const rows: Array<{ what: string; args: string[]; answer: Handler; code: number; err: RegExp }> = [
    {
      what: 'RBAC refuses the namespace',
      args: ['observe', '-n', 'db'],
      answer: (_q, res) => json(res, 403, statusBody(403, 'Forbidden', 'flows.flows.palisade.io is forbidden')),
      code: 3, err: /RBAC forbids listing flows in namespace db: ask for get\/list on flows\.flows\.palisade\.io in namespace db/,
    },
    {
      what: 'no agent reachable',
      args: ['observe'],
      answer: (_q, res) => json(res, 503, statusBody(503, 'ServiceUnavailable', 'no Palisade agent reachable: node-1: timed out')),
      code: 4, err: /no agent reachable: check the palisade agents with kubectl -n palisade-system get pods/,
    },
    {
      what: 'an unknown namespace',
      args: ['observe', '-n', 'nosuch'],
      answer: (_q, res) => json(res, 404, statusBody(404, 'NotFound', 'namespaces "nosuch" not found')),
      code: 5, err: /^error: unknown namespace nosuch$/m,
    },
    {
      what: 'an unknown pod, checked before any flow is asked for',
      args: ['observe', '--pod', 'x/zz'],
      answer: (_q, res, url) => (url.pathname === '/api/v1/namespaces/x/pods/zz' ? json(res, 404, statusBody(404, 'NotFound', 'pods "zz" not found')) : json(res, 500, {})),
      code: 5, err: /^error: unknown pod x\/zz$/m,
    },
    {
      what: 'a --node no agent is on',
      args: ['observe', '--node', 'node-9'],
      answer: (_q, res) => json(res, 200, { items: [], nodes: { 'node-1': { lost: {} } }, unreachable: [] }),
      code: 5, err: /unknown node node-9: Palisade's agents are on node-1/,
    },
    {
      what: 'a malformed CIDR, refused before any request',
      args: ['observe', '--ip', '10.1.2.3/40'],
      answer: () => assert.fail('no request expected'),
      code: 2, err: /not an IPv4 address or CIDR: "10\.1\.2\.3\/40"/,
    },
    {
      what: 'an unknown flag',
      args: ['observe', '--colour'],
      answer: () => assert.fail('no request expected'),
      code: 2, err: /unknown option '--colour'/,
    },
    {
      what: 'an unknown context',
      args: ['--context', 'nope', 'status'],
      answer: () => assert.fail('no request expected'),
      code: 2, err: /no context "nope" in the kubeconfig/,
    },
  ];
  for (const row of rows) {
    handler = row.answer;
    const r = await plugin(row.args);
    assert.equal(r.code, row.code, `${row.what}: ${r.err}`);
    assert.match(r.err, row.err, row.what);
  }
});

test('observe --follow prints flows as they come, then what it missed and which agents failed', async () => {
  handler = (_req, res, url) => {
    assert.equal(url.searchParams.get('follow'), 'true');
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${JSON.stringify({ flow: flow({ time: '2026-12-01T03:40:01Z' }) })}\n`);
    // a stored flow older than the window (the follow starts now)
    res.write(`${JSON.stringify({ flow: flow({ time: '2026-12-01T03:00:00Z' }) })}\n{"missed":7,"node":"node-2"}\n`);
    res.write(`${JSON.stringify({ error: 'the agent ended the stream', node: 'node-1' })}\n${JSON.stringify({ flow: denied({ time: '2026-12-01T03:40:02Z' }) })}`);
    res.end('\n');
  };
  const r = await plugin(['observe', '-f', '-o', 'compact']);
  assert.equal(r.code, 4, 'the API ended the stream: agents unavailable');
  assert.deepEqual(r.out.trimEnd().split('\n').map((l) => l.split(' ').slice(0, 4).join(' ')), ['03:40:01.000 node-2 new forwarded', '03:40:02.000 node-2 drop dropped']);
  assert.match(r.err, /^warning: node-1: the agent ended the stream$/m);
  assert.match(r.err, /^lost: this follow missed 7 flows because it or the API fell behind \(node node-2: 7\)$/m);
  assert.match(r.err, /^error: the flow stream ended/m);
});

test('observe --follow interrupted: exit 0', async () => {
  let response: ServerResponse | undefined;
  handler = (_req, res) => {
    response = res;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${JSON.stringify({ flow: flow({ time: '2026-12-01T03:40:01Z' }) })}\n`);
  };
  const r = await plugin(['observe', '-f'], 200);
  response?.destroy();
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^TIME .*\n03:40:01\.000 /);
});

test('status: a table per node; exit 4 when an agent is unreachable', async () => {
  handler = (_req, res, url) => {
    assert.equal(url.pathname, '/apis/flows.palisade.io/v1alpha1/agents');
    json(res, 200, {
      kind: 'AgentList',
      items: [
        { node: 'node-1', reachable: true, status: { revision: 3, ready: true, message: 'ok', endpoints: 2, programs: 4, maps: { pal_policy: { entries: 5, capacity: 10 } }, flows: { stored: 9, capacity: 100, followers: 0, lost: { kernel: {}, decoder: 0, consumer: 0 } } } },
        { node: 'node-2', reachable: false, error: 'timed out' },
      ],
    });
  };
  const r = await plugin(['status']);
  assert.equal(r.code, 4);
  assert.match(r.out, /^node-1 +yes +yes +3 +2 +4 +pal_policy 50% +9\/100 +0 +ok$/m);
  assert.match(r.err, /agent unreachable on node-2/);
});

/** A small cluster as the API server serves it: shop/web, db/pg, db's policies, their identities. */
function clusterApi(o: { identities?: 'forbidden'; verdict?: (q: URLSearchParams) => unknown } = {}): Handler {
  const pod = (namespace: string, name: string, ip: string, labels: Record<string, string>) => ({
    metadata: { namespace, name, labels, uid: `${namespace}-${name}`, creationTimestamp: '2026-12-01T00:00:00Z' },
    spec: { nodeName: namespace === 'shop' ? 'node-1' : 'node-2', containers: [{ name: 'c', ports: [{ name: 'pg', containerPort: 5432 }] }] },
    status: { phase: 'Running', podIP: ip },
  });
  const pods = [pod('shop', 'web', '10.0.1.5', { app: 'web' }), pod('db', 'pg', '10.0.2.7', { app: 'pg' })];
  const namespace = (name: string) => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name, team: name } } });
  const policies = [
    { metadata: { namespace: 'db', name: 'deny-all' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } },
    { metadata: { namespace: 'db', name: 'from-shop' }, spec: { podSelector: { matchLabels: { app: 'pg' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'shop' } } }], ports: [{ port: 'pg' }] }] } },
  ];
  const key = (ns: string, labels: Record<string, string>) =>
    `k8s:${JSON.stringify([[['kubernetes.io/metadata.name', ns], ['team', ns]], Object.entries(labels).sort()])}`;
  const identities = [
    { metadata: { name: '300' }, spec: { key: key('shop', { app: 'web' }) } },
    { metadata: { name: '301' }, spec: { key: key('db', { app: 'pg' }) } },
  ];
  return (_req, res, url) => {
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p))) {
      const found = pods.find((x) => x.metadata.namespace === m![1] && x.metadata.name === m![2]);
      return found ? json(res, 200, found) : json(res, 404, statusBody(404, 'NotFound', `pods "${m[2]}" not found`));
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p))) return json(res, 200, { items: pods.filter((x) => x.metadata.namespace === m![1]) });
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(p))) {
      return ['shop', 'db'].includes(m[1]!) ? json(res, 200, namespace(m[1]!)) : json(res, 404, statusBody(404, 'NotFound', `namespaces "${m[1]}" not found`));
    }
    if ((m = /^\/apis\/networking\.k8s\.io\/v1\/namespaces\/([^/]+)\/networkpolicies$/.exec(p))) return json(res, 200, { items: policies.filter((x) => x.metadata.namespace === m![1]) });
    if (p === '/apis/palisade.io/v1alpha1/securityidentities') {
      return o.identities === 'forbidden' ? json(res, 403, statusBody(403, 'Forbidden', 'no')) : json(res, 200, { items: identities });
    }
    if ((m = /^\/apis\/flows\.palisade\.io\/v1alpha1\/namespaces\/([^/]+)\/verdicts$/.exec(p))) {
      return o.verdict ? json(res, 200, o.verdict(url.searchParams)) : json(res, 503, statusBody(503, 'ServiceUnavailable', 'agent down'));
    }
    json(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
  };
}

test('policy trace: allowed through a named port and a namespaceSelector, the kernel maps agreeing: exit 0', async () => {
  const asked: string[] = [];
  handler = clusterApi({
    verdict: (q) => {
      asked.push(`${q.get('pod')} ${q.get('direction')} ${q.get('peer')} ${q.get('protocol')}/${q.get('port')}`);
      return { kind: 'Verdict', node: 'node-x', reason: q.get('direction') === 'egress' ? 'PASS_UNSELECTED' : 'ALLOW_POLICY', ruleId: 7, peerIdentity: 300 };
    },
  });
  const r = await plugin(['policy', 'trace', '--from', 'shop/web', '--to', 'db/pg', '--port', '5432']);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^ingress of db\/pg: allowed by NetworkPolicy db\/from-shop, ingress rule 0 \(it selects the peer\)$/m);
  assert.match(r.out, /^verdict: allowed$/m);
  assert.deepEqual(asked.sort(), ['pg ingress 10.0.1.5 TCP/5432', 'web egress 10.0.2.7 TCP/5432']);
  assert.equal(r.err, '');
});

test('policy trace: denied is exit 1 and says where and why; a kernel that disagrees is a warning', async () => {
  handler = clusterApi({ verdict: () => ({ kind: 'Verdict', node: 'node-2', reason: 'ALLOW_POLICY', ruleId: 0, peerIdentity: 300 }) });
  const r = await plugin(['policy', 'trace', '--from', 'shop/web', '--to', 'db/pg', '--port', '80']);
  assert.equal(r.code, 1);
  assert.match(r.out, /^ingress of db\/pg: denied: default deny, no rule of NetworkPolicy db\/deny-all, NetworkPolicy db\/from-shop allows it$/m);
  assert.match(r.out, /^verdict: denied at the ingress of db\/pg$/m);
  assert.match(r.err, /^warning: the kernel maps of node-2 disagree: ALLOW_POLICY for the ingress of db\/pg from 10\.0\.1\.5 TCP\/80/m);
});

test('policy trace: identities unreadable and agents unavailable are said, the verdict still given', async () => {
  handler = clusterApi({ identities: 'forbidden' });
  const r = await plugin(['policy', 'trace', '--from', 'shop/web', '--to', 'db/pg', '--port', '5432']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^note: SecurityIdentities could not be read \(RBAC\)/m);
  assert.match(r.err, /^warning: could not compare with the kernel maps of the nodes: Palisade's API is not available/m);
});

test('policy trace: an unknown pod is exit 5', async () => {
  handler = clusterApi();
  const r = await plugin(['policy', 'trace', '--from', 'shop/web', '--to', 'db/nosuch', '--port', '80', '--no-kernel-check']);
  assert.equal(r.code, 5);
  assert.match(r.err, /^error: unknown pod db\/nosuch$/m);
});

test('endpoints: the pods of the context namespace with their identity and policies; an unknown namespace is exit 5', async () => {
  handler = clusterApi();
  const r = await plugin(['--context', 'plain', 'endpoints', '-n', 'db']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, [
    'ENDPOINT  IDENTITY  ADDRESS   NODE    INGRESS POLICIES     EGRESS POLICIES',
    'db/pg     301       10.0.2.7  node-2  deny-all, from-shop  (not isolated)',
    '',
  ].join('\n'));
  const unknown = await plugin(['endpoints', '-n', 'nosuch']);
  assert.equal(unknown.code, 5);
  assert.match(unknown.err, /^error: unknown namespace nosuch$/m);
});
