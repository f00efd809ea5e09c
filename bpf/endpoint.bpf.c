/* Palisade's policy programs, attached with tc clsact direct-action to each
 * pod's HOST-SIDE veth (one object for all endpoints of the node):
 *
 *   pal_from_pod  tc ingress of the host veth: packets FROM the pod,
 *                 enforcing the pod's EGRESS policy (direction 1);
 *   pal_to_pod    tc egress of the host veth: packets TO the pod,
 *                 enforcing the pod's INGRESS policy (direction 0).
 *
 * Both run handle(), which implements the per-packet algorithm of
 * docs/adr/0001-datapath-maps.md with one deviation, explained at
 * handle(): a pod enforced in only one direction has its connections in the
 * other direction tracked too, so that their replies are recognised.
 * Nothing here loops: a verdict costs a bounded number of hash lookups
 * whatever the number of rules, and a packet of a known connection, reply
 * or not, costs one conntrack lookup and the pal_config read.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "conntrack.h"
#include "endpoints.h"
#include "ipcache.h"
#include "metrics.h"
#include "parse.h"
#include "policy.h"
#include "reasons.h"

/* Counts the packet under its reason and turns the reason into tc's verdict. */
static __always_inline int verdict(struct __sk_buff *skb, __u32 reason)
{
	struct metrics_value *m = bpf_map_lookup_elem(&pal_metrics, &reason);

	if (m) {
		m->packets++;
		m->bytes += skb->len;
	}
	return PAL_REASON_IS_DROP(reason) ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline __u32 policy_revision(void)
{
	__u32 zero = 0;
	struct datapath_config *cfg = bpf_map_lookup_elem(&pal_config, &zero);

	return cfg ? cfg->policy_revision : 0;
}

/* Exact entries first: pods and nodes are the common peers, and a hash
 * lookup costs the same at any map size; the LPM trie only for the rest. */
static __always_inline __u32 peer_identity(__u32 addr)
{
	struct ipcache_value *v = bpf_map_lookup_elem(&pal_ipcache4, &addr);
	struct ipcache_key k = { .prefixlen = PAL_IPCACHE_V4_FULL, .family = PAL_AF_INET };

	if (v)
		return v->identity;
	__builtin_memcpy(k.addr, &addr, sizeof(addr));
	v = bpf_map_lookup_elem(&pal_ipcache, &k);
	return v ? v->identity : PAL_ID_WORLD;
}

/* What a policy decision looks at: the direction whose policy applies, the
 * peer, and the protocol and destination port of the connection's opening
 * packet (the endpoint's own port for ingress, the peer's for egress). */
struct conn {
	__u32 peer;
	__u16 dport;
	__u8 protocol;
	__u8 direction;
};

/* The conntrack key of a packet at the hook of direction `dir`: the
 * endpoint is the destination of packets to the pod, the source of packets
 * from it. `dir` is a constant in each program, so the choices fold away. */
static __always_inline void ct_key_of(const struct pal_pkt *p, const __u8 dir, struct ct4_key *k)
{
	bool to_pod = dir == PAL_DIR_INGRESS;

	k->addr = to_pod ? p->daddr : p->saddr;
	k->peer_addr = to_pod ? p->saddr : p->daddr;
	k->port = to_pod ? p->dport : p->sport;
	k->peer_port = to_pod ? p->sport : p->dport;
	k->protocol = p->protocol;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* The connection of key k as opened in direction `dir`. */
static __always_inline struct conn conn_of(const struct ct4_key *k, __u8 dir)
{
	struct conn c = {
		.peer = k->peer_addr,
		.dport = dir == PAL_DIR_INGRESS ? k->port : k->peer_port,
		.protocol = k->protocol,
		.direction = dir,
	};
	return c;
}

/* Whether peer class `class` may open connection c (see policy.h): the
 * summary entry, then at most the exact-port and the any-port entries it
 * announces. A port of 0 (no ports: ICMP, a non-first fragment) can only be
 * allowed by ALL or ANY_PORT, which is the ADR's fragment rule. */
static __always_inline bool class_allows(__u32 endpoint_id, __u32 class,
					 const struct conn *c, __u32 *rule)
{
	struct policy_key k = {
		.endpoint_id = endpoint_id,
		.identity = class,
		.direction = c->direction,
	};
	struct policy_value *v = bpf_map_lookup_elem(&pal_policy, &k);
	__u32 flags, any_port, ports;

	if (!v)
		return false;
	flags = v->flags;
	if (flags & PAL_POL_ALL) {
		*rule = v->rule_id;
		return true;
	}
	switch (c->protocol) {
	case IPPROTO_TCP:
		any_port = PAL_POL_TCP_ANY_PORT;
		ports = PAL_POL_TCP_PORTS;
		break;
	case IPPROTO_UDP:
		any_port = PAL_POL_UDP_ANY_PORT;
		ports = PAL_POL_UDP_PORTS;
		break;
	case IPPROTO_SCTP:
		any_port = PAL_POL_SCTP_ANY_PORT;
		ports = PAL_POL_SCTP_PORTS;
		break;
	default:
		return false;
	}
	k.protocol = c->protocol;
	if ((flags & ports) && c->dport) {
		k.dport = c->dport;
		v = bpf_map_lookup_elem(&pal_policy, &k);
		if (v) {
			*rule = v->rule_id;
			return true;
		}
	}
	if (flags & any_port) {
		k.dport = 0;
		v = bpf_map_lookup_elem(&pal_policy, &k);
		if (v) {
			*rule = v->rule_id;
			return true;
		}
	}
	return false;
}

/* Decides connection c for endpoint ep as a NEW connection. Returns
 * PASS_UNSELECTED (that direction is not enforced), ALLOW_POLICY with *rule
 * set (0 for the host rule) or DROP_POLICY. The ANY class and the CIDR
 * regions are probed only when the endpoint's flags say it has such
 * entries in that direction. */
static __always_inline __u32 evaluate(const struct endpoint_info *ep,
				      const struct conn *c, __u32 *rule)
{
	__u8 dir = c->direction;
	__u32 id, endpoint_id = ep->endpoint_id;

	*rule = 0;
	if (!(ep->flags & PAL_EP_ENFORCED(dir)))
		return PAL_PASS_UNSELECTED;
	id = peer_identity(c->peer);
	if (dir == PAL_DIR_INGRESS && id == PAL_ID_HOST && pal_host_reaches_pods)
		return PAL_ALLOW_POLICY;
	if (class_allows(endpoint_id, id, c, rule))
		return PAL_ALLOW_POLICY;
	if ((ep->flags & PAL_EP_ANY(dir)) && class_allows(endpoint_id, PAL_ID_ANY, c, rule))
		return PAL_ALLOW_POLICY;
	if (ep->flags & PAL_EP_CIDR(dir)) {
		struct policy_cidr_key ck = {
			.prefixlen = PAL_POLICY_CIDR_V4_FULL,
			.endpoint_id = endpoint_id,
			.direction = dir,
			.family = PAL_AF_INET,
		};
		struct policy_cidr_value *region;

		__builtin_memcpy(ck.addr, &c->peer, sizeof(c->peer));
		region = bpf_map_lookup_elem(&pal_policy_cidr, &ck);
		if (region && class_allows(endpoint_id, region->identity, c, rule))
			return PAL_ALLOW_POLICY;
	}
	return PAL_DROP_POLICY;
}

static __always_inline struct endpoint_info *endpoint_of(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	return bpf_map_lookup_elem(&pal_endpoints, &ifindex);
}

/* A packet of a tracked connection, at the hook of direction `dir`. An
 * entry recorded under an older policy revision is decided again by the
 * policy of its origin direction, so that revoking access cuts the
 * connection at its next packet, replies included; a revoked entry stays,
 * marked (see conntrack.h), and drops the connection's packets both ways
 * until a later revision allows it again. The revision is read before the
 * policy maps, so that a batch the agent writes meanwhile leaves the entry
 * stale rather than wrongly current. The endpoint is looked up only for a
 * stale entry: a current one needs nothing else. */
static __always_inline int tracked(struct __sk_buff *skb, const __u8 dir, const struct pal_pkt *pkt,
				   const struct ct4_key *key, struct ct_value *ct)
{
	__u32 revision = policy_revision();
	__u32 now;

	if (ct->revision != revision) {
		struct endpoint_info *ep = endpoint_of(skb);
		struct conn c;
		__u32 rule;

		if (!ep)
			return verdict(skb, PAL_PASS_UNSELECTED);
		c = conn_of(key, ct->origin);
		ct->revoked = evaluate(ep, &c, &rule) == PAL_DROP_POLICY;
		if (ct->revoked) /* denied by no rule: the default deny decided */
			rule = ct->origin == PAL_DIR_INGRESS ? ep->ingress_default_rule : ep->egress_default_rule;
		ct->rule_id = rule;
		ct->revision = revision;
	}
	if (ct->revoked)
		return verdict(skb, PAL_DROP_REVOKED);
	if (pkt->fin_rst && !ct->closing)
		ct->closing = 1;
	now = (__u32)bpf_jiffies64();
	if (now - ct->last_seen > PAL_CT_REFRESH_JIFFIES)
		ct->last_seen = now;
	return verdict(skb, ct->origin == dir ? PAL_ALLOW_ESTABLISHED : PAL_ALLOW_REPLY);
}

/* The per-packet algorithm for the hook of direction `dir` (a constant in
 * each program, so the verifier and the compiler see one path per hook).
 *
 * A packet of a known connection costs the parse, ONE conntrack lookup
 * (both directions share the entry) and the revision read: the endpoint is
 * not even looked up. Everything else is a new connection, decided by
 * policy and recorded when it passes.
 *
 * Deviation from the ADR's step 1: the ADR passes a packet at once when its
 * direction is not enforced. But a pod selected for Ingress only (the common
 * default-deny-ingress case) then never records its outgoing connections,
 * and their replies, arriving at the enforced to-pod hook, would be judged as
 * new incoming connections and dropped. So every connection of an endpoint
 * is tracked, in both directions and whether or not a policy selects the pod:
 * a new connection in an unenforced direction passes as PASS_UNSELECTED and
 * is recorded (rule 0), so its replies are ALLOW_REPLY; and a connection
 * that starts while no policy selects the pod stays known by the direction
 * it really started in, or a later policy could see the pod's replies as new
 * outgoing connections and let the peer's packets through as their
 * "replies" forever. */
static __always_inline int handle(struct __sk_buff *skb, const __u8 dir)
{
	struct endpoint_info *ep;
	struct pal_pkt pkt;
	struct ct4_key key;
	struct ct_value *ct;
	struct conn c;
	__u32 revision, rule, reason;

	switch (pal_parse(skb, &pkt)) {
	case PAL_PARSE_OK:
		break;
	case PAL_PARSE_NON_IP:
		return verdict(skb, endpoint_of(skb) ? PAL_PASS_NON_IP : PAL_PASS_UNSELECTED);
	default:
		return verdict(skb, endpoint_of(skb) ? PAL_DROP_MALFORMED : PAL_PASS_UNSELECTED);
	}
	ct_key_of(&pkt, dir, &key);

	/* A SYN opens a connection: it is decided as new even when an entry
	 * with the same key exists (the new entry replaces it). A non-first
	 * fragment has no ports, so no conntrack: it is decided alone, by the
	 * all-ports entries. */
	if (!pkt.syn && !pkt.fragment) {
		ct = bpf_map_lookup_elem(&pal_ct4, &key);
		if (ct && ct->ifindex == skb->ifindex)
			return tracked(skb, dir, &pkt, &key, ct);
	}

	ep = endpoint_of(skb);
	if (!ep)
		return verdict(skb, PAL_PASS_UNSELECTED);
	/* Anti-spoofing: a pod speaks only from its own address, or it could
	 * borrow another pod's identity at the peer's ingress and open that
	 * pod's conntrack entries. Checked for new connections only: a tracked
	 * one is bound to this device, and this device's pod has one address. */
	if (dir == PAL_DIR_EGRESS && pkt.saddr != ep->ipv4)
		return verdict(skb, PAL_DROP_SPOOFED);
	revision = policy_revision(); /* before the policy maps: see tracked() */
	c = conn_of(&key, dir);
	reason = evaluate(ep, &c, &rule);
	if (pkt.fragment)
		return verdict(skb, reason == PAL_DROP_POLICY ? PAL_DROP_FRAGMENT : reason);
	if (!PAL_REASON_IS_DROP(reason)) {
		struct ct_value v = {
			.revision = revision,
			.rule_id = rule,
			.last_seen = (__u32)bpf_jiffies64(),
			.ifindex = skb->ifindex,
			.origin = dir,
			.closing = pkt.fin_rst,
		};

		bpf_map_update_elem(&pal_ct4, &key, &v, BPF_ANY);
	}
	return verdict(skb, reason);
}

SEC("tc")
int pal_from_pod(struct __sk_buff *skb)
{
	return handle(skb, PAL_DIR_EGRESS);
}

SEC("tc")
int pal_to_pod(struct __sk_buff *skb)
{
	return handle(skb, PAL_DIR_INGRESS);
}

/* The kernel's jiffies (low 32 bits), the clock of ct_value.last_seen, for
 * user space, which has no call for it: run with BPF_PROG_TEST_RUN by the
 * agent's conntrack garbage collector and the tests; never attached. */
SEC("tc")
int pal_clock(struct __sk_buff *skb)
{
	return (__u32)bpf_jiffies64();
}

char LICENSE[] SEC("license") = "Apache-2.0";
