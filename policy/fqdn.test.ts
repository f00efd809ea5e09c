// The names each FQDN selector matches, case by case (../shared/POLICY-API.md).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fqdnKey, fqdnMatcher, normalizeName } from './fqdn.ts';

const CASES: Array<[string, { matchName: string } | { matchPattern: string }, string[], string[]]> = [
  ['matchName: exact, any case, trailing dot optional', { matchName: 'API.example.com.' }, ['api.example.com', 'API.Example.COM.'], ['x.api.example.com', 'api.example.co', 'example.com']],
  ['*.example.com: one label', { matchPattern: '*.example.com' }, ['a.example.com', 'A-1_b.EXAMPLE.com'], ['example.com', 'a.b.example.com', 'a.example.com.evil.net', 'aexample.com']],
  ['**.example.com: one or more labels', { matchPattern: '**.example.com' }, ['a.example.com', 'a.b.c.example.com'], ['example.com', 'a.example.org']],
  ['* alone: every name', { matchPattern: '*' }, ['example.com', 'a', 'a.b.c'], []],
  ['a*.example.com: within the label', { matchPattern: 'a*.example.com' }, ['a.example.com', 'abc.example.com'], ['ba.example.com', 'a.b.example.com']],
  ['www.example.*', { matchPattern: 'www.example.*' }, ['www.example.org', 'www.example.com'], ['www.example.co.uk', 'www.examples.org']],
  ['dots are literal', { matchPattern: 'a.b.example.com' }, ['a.b.example.com'], ['axb.example.com', 'a.bxexample.com']],
];

for (const [what, sel, yes, no] of CASES) {
  test(`fqdn: ${what}`, () => {
    const m = fqdnMatcher(sel);
    for (const n of yes) assert.equal(m(normalizeName(n)), true, `${n} should match`);
    for (const n of no) assert.equal(m(normalizeName(n)), false, `${n} should not match`);
  });
}

test('fqdn: selectors that mean the same share a key', () => {
  assert.equal(fqdnKey({ matchName: 'API.example.com.' }), fqdnKey({ matchName: 'api.example.com' }));
  assert.notEqual(fqdnKey({ matchName: 'api.example.com' }), fqdnKey({ matchPattern: 'api.example.com' }));
});
