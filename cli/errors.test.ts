// The exit code and the message a user gets for each kind of failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiError, connectionError, describe, EXIT, type Asked } from './errors.ts';

const flows = (namespace?: string): Asked => ({ verb: 'list', resource: 'flows', group: 'flows.palisade.io', ...(namespace ? { namespace } : {}) });
const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });

const rows: Array<{ what: string; asked: Asked; code: number; body: unknown; exit: number; says: RegExp }> = [
  {
    what: 'RBAC refuses flows in a namespace: names the namespace and the resource to ask for',
    asked: flows('shop'), code: 403, body: status(403, 'Forbidden', 'flows.flows.palisade.io is forbidden: User "alice" cannot list ...'),
    exit: EXIT.FORBIDDEN, says: /^RBAC forbids listing flows in namespace shop: ask for get\/list on flows\.flows\.palisade\.io in namespace shop\n.*User "alice"/,
  },
  {
    what: 'RBAC refuses following across the cluster: asks for watch',
    asked: { ...flows(), verb: 'watch' }, code: 403, body: status(403, 'Forbidden', 'no'),
    exit: EXIT.FORBIDDEN, says: /^RBAC forbids watching flows across the cluster: ask for watch on flows\.flows\.palisade\.io across the cluster/,
  },
  {
    what: 'RBAC refuses reading one pod: singular, with its namespace',
    asked: { verb: 'get', resource: 'pods', group: '', namespace: 'db', name: 'pg' }, code: 403, body: status(403, 'Forbidden', 'no'),
    exit: EXIT.FORBIDDEN, says: /^RBAC forbids getting pod pg in namespace db: ask for get on pods in namespace db/,
  },
  {
    what: 'a namespace that does not exist (the flows API checks it): not found, named',
    asked: flows('nosuch'), code: 404, body: status(404, 'NotFound', 'namespaces "nosuch" not found'),
    exit: EXIT.NOT_FOUND, says: /^unknown namespace nosuch$/,
  },
  {
    what: 'a pod that does not exist',
    asked: { verb: 'get', resource: 'pods', group: '', namespace: 'x', name: 'zz' }, code: 404, body: status(404, 'NotFound', 'pods "zz" not found'),
    exit: EXIT.NOT_FOUND, says: /^unknown pod x\/zz$/,
  },
  {
    what: 'the group is not registered (no APIService): Palisade unavailable, says what to check',
    asked: flows(), code: 404, body: status(404, 'NotFound', 'the server could not find the requested resource'),
    exit: EXIT.UNAVAILABLE, says: /not served by this cluster.*kubectl get apiservice v1alpha1\.flows\.palisade\.io/,
  },
  {
    what: 'the flows API answers that no agent is reachable',
    asked: flows(), code: 503, body: status(503, 'ServiceUnavailable', 'no Palisade agent reachable: n1: timed out'),
    exit: EXIT.UNAVAILABLE, says: /^no agent reachable: check the palisade agents with kubectl -n palisade-system get pods\n.*n1: timed out/,
  },
  {
    what: 'the aggregator cannot reach the flows API (plain-text 503)',
    asked: flows(), code: 503, body: 'service unavailable\n',
    exit: EXIT.UNAVAILABLE, says: /^Palisade's API is not available: check kubectl get apiservice/,
  },
  {
    what: 'a malformed filter the server refused: a usage error',
    asked: flows(), code: 400, body: status(400, 'BadRequest', 'not a port: 0'),
    exit: EXIT.USAGE, says: /^bad request: not a port: 0$/,
  },
  {
    what: 'bad credentials: other error, points at the kubeconfig',
    asked: flows(), code: 401, body: status(401, 'Unauthorized', 'Unauthorized'),
    exit: EXIT.OTHER, says: /credentials.*kubeconfig/,
  },
  {
    what: 'a core API server failure is not Palisade being unavailable',
    asked: { verb: 'list', resource: 'pods', group: '' }, code: 500, body: status(500, 'InternalError', 'etcd'),
    exit: EXIT.OTHER, says: /answered 500 listing pods/,
  },
];

for (const row of rows) {
  test(`api error: ${row.what}`, () => {
    const e = apiError(row.asked, row.code, row.body);
    assert.equal(e.exitCode, row.exit);
    assert.match(e.message, row.says);
  });
}

test('an unreachable API server is another error, and names the server', () => {
  const e = connectionError('https://10.0.0.1:6443', new Error('connect ECONNREFUSED'));
  assert.equal(e.exitCode, EXIT.OTHER);
  assert.match(e.message, /https:\/\/10\.0\.0\.1:6443: connect ECONNREFUSED/);
});

test('an unexpected exception is exit 6 with its stack', () => {
  const d = describe(new TypeError('boom'));
  assert.equal(d.exitCode, EXIT.OTHER);
  assert.match(d.message, /TypeError: boom/);
});
