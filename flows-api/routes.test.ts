import assert from 'node:assert/strict';
import { test } from 'node:test';
import { access, forbiddenMessage, route } from './routes.ts';

test('flows of a namespace need list (watch to follow) in that namespace; of all namespaces, at the cluster scope', () => {
  const ns = route('/apis/flows.palisade.io/v1alpha1/namespaces/shop/flows?criteria=%7B%7D&last=5')!;
  assert.deepEqual(access(ns), { verb: 'list', resource: 'flows', namespace: 'shop' });
  assert.deepEqual(access(route('/apis/flows.palisade.io/v1alpha1/namespaces/shop/flows?follow=true')!), { verb: 'watch', resource: 'flows', namespace: 'shop' });
  assert.deepEqual(access(route('/apis/flows.palisade.io/v1alpha1/flows')!), { verb: 'list', resource: 'flows' });
  assert.deepEqual(access(route('/apis/flows.palisade.io/v1alpha1/agents')!), { verb: 'list', resource: 'agents' });
  assert.deepEqual(access(route('/apis/flows.palisade.io/v1alpha1/namespaces/db/verdicts?pod=pg')!), { verb: 'get', resource: 'verdicts', namespace: 'db' });
  assert.equal(route('/apis/flows.palisade.io/v1alpha1/namespaces/Bad_Name/flows'), undefined);
  assert.equal(route('/apis/flows.palisade.io/v1alpha1/namespaces/shop/secrets'), undefined);
  assert.equal(access(route('/apis/flows.palisade.io/v1alpha1')!), undefined, 'discovery needs no authorization');
});

test('a denial reads like the API server\'s', () => {
  assert.equal(
    forbiddenMessage('alice', { verb: 'list', resource: 'flows', namespace: 'db' }),
    'flows.flows.palisade.io is forbidden: User "alice" cannot list resource "flows" in API group "flows.palisade.io" in the namespace "db"',
  );
});
