// Test helpers: flow records as the API sends them.
import type { Flow } from '../lib/flow.ts';

/** A forwarded new TCP connection shop/web -> db/pg:80 at ingress of pg, allowed by db/allow-shop; `o` overrides. */
export function flow(o: Partial<Flow> = {}): Flow {
  return {
    time: '2026-12-01T03:38:40.123456789Z',
    node: 'node-2',
    type: 'new',
    verdict: 'forwarded',
    reason: 'ALLOW_POLICY',
    direction: 'ingress',
    endpoint: { namespace: 'db', name: 'pg' },
    protocol: 'TCP',
    source: { ip: '10.0.1.1', port: 40312, identity: 256, pod: { namespace: 'shop', name: 'web' }, labels: { app: 'web' } },
    destination: { ip: '10.0.2.1', port: 80, identity: 257, pod: { namespace: 'db', name: 'pg' }, labels: { app: 'pg' } },
    tcpFlags: ['SYN'],
    packets: 1,
    bytes: 60,
    isolated: true,
    policies: [{ kind: 'NetworkPolicy', namespace: 'db', name: 'allow-shop' }],
    rule: { kind: 'NetworkPolicy', namespace: 'db', name: 'allow-shop', direction: 'ingress', index: 0 },
    ...o,
  };
}

/** A default-deny drop of db/other -> db/pg:81 at ingress of pg. */
export function denied(o: Partial<Flow> = {}): Flow {
  const { rule: _, ...allowed } = flow();
  return {
    ...allowed,
    type: 'drop',
    verdict: 'dropped',
    reason: 'DROP_POLICY',
    source: { ip: '10.0.2.9', port: 51000, identity: 258, pod: { namespace: 'db', name: 'other' } },
    destination: { ip: '10.0.2.1', port: 81, identity: 257, pod: { namespace: 'db', name: 'pg' } },
    defaultDeny: true,
    ...o,
  };
}
