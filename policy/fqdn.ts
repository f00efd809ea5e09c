// FQDN selectors of Palisade's policies (`toFQDNs`, `rules.dns`): their
// canonical key and the names they match (../shared/POLICY-API.md):
// - matchName: the exact name, case-insensitive, trailing dot optional;
// - matchPattern: `*` matches any run of characters within one label,
//   a leading `**.` one or more whole labels, `*` alone every name.
// Pure. Names are compared lowercase without their trailing dot.

import type { FqdnSelector } from './palisade-policy.ts';

/** A DNS name as selectors see it: lowercase, no trailing dot. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length > 1 && lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** `name:api.example.com` or `pattern:*.example.com` (equal for selectors that match the same names). */
export function fqdnKey(sel: FqdnSelector): string {
  return 'matchName' in sel ? `name:${normalizeName(sel.matchName)}` : `pattern:${normalizeName(sel.matchPattern)}`;
}

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\-]/g, '\\$&');

/** A function telling whether a (normalized) name matches the selector. */
export function fqdnMatcher(sel: FqdnSelector): (name: string) => boolean {
  if ('matchName' in sel) {
    const want = normalizeName(sel.matchName);
    return (name) => name === want;
  }
  const pattern = normalizeName(sel.matchPattern);
  if (pattern === '*') return (name) => name.length > 0;
  const deep = pattern.startsWith('**.');
  const rest = deep ? pattern.slice(3) : pattern;
  // Within a label, `*` is any run of characters but the dot.
  const body = rest.split('*').map(escape).join('[^.]*');
  const re = new RegExp(`^${deep ? '(?:[^.]+\\.)+' : ''}${body}$`);
  return (name) => re.test(name);
}
