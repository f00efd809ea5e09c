// A DNS query the node's proxy handled, as a flow (type `dns`): the pod that
// asked, the server it asked, and the query and answer (docs/flows.md).
// Pure.
import type { DnsFacts, Flow, FlowPeer } from '../../lib/flow.ts';
import type { DnsEvent } from './proxy.ts';

export interface DnsFlowContext {
  node: string;
  /** The pod (`ns/name`) that owns an address, and its identity. */
  pod(ip: string): { key: string; identity: number | undefined } | undefined;
  labels(pod: string): Readonly<Record<string, string>> | undefined;
  /** Whether the pod's egress is isolated. */
  isolated(pod: string): boolean;
}

const NO_POLICIES = Object.freeze([]) as readonly never[];

export function dnsFlow(e: DnsEvent, ctx: DnsFlowContext): Flow {
  const peer = (ip: string, port: number): FlowPeer => {
    const owner = ctx.pod(ip);
    if (!owner) return { ip, port, identity: 0 };
    const [namespace, name] = owner.key.split('/') as [string, string];
    const labels = ctx.labels(owner.key);
    return { ip, port, identity: owner.identity ?? 0, pod: { namespace, name }, ...(labels ? { labels: { ...labels } } : {}) };
  };
  const client = ctx.pod(e.client.ip);
  const dns: DnsFacts = { name: e.name, qtype: e.type, rcode: e.rcode, addresses: e.addresses, ttl: e.ttl, latencyMs: Math.round(e.latencyMs * 1000) / 1000 };
  const [namespace, name] = client ? (client.key.split('/') as [string, string]) : [undefined, undefined];
  return {
    time: `${e.time.toISOString().slice(0, -1)}000000Z`,
    node: ctx.node,
    type: 'dns',
    verdict: e.verdict === 'refused' ? 'dropped' : 'forwarded',
    reason: e.verdict === 'refused' ? 'DNS_REFUSED' : e.verdict === 'failed' ? 'DNS_FAILED' : 'DNS_ANSWERED',
    direction: 'egress',
    ...(namespace && name ? { endpoint: { namespace, name } } : {}),
    protocol: e.protocol,
    source: peer(e.client.ip, e.client.port),
    destination: peer(e.upstream, 53),
    packets: 1,
    bytes: 0,
    isolated: client ? ctx.isolated(client.key) : false,
    policies: NO_POLICIES,
    dns,
  };
}
