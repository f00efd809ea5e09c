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
 * whatever the number of rules, and an established connection costs the
 * endpoint lookup, one conntrack lookup (two for a reply) and the
 * pal_config read.
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

#define NSEC_PER_SEC 1000000000ull

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

/* Whether peer class `class` may open connection t (see policy.h): the
 * summary entry, then at most the exact-port and the any-port entries it
 * announces. A port of 0 (no ports: ICMP, a non-first fragment) can only be
 * allowed by ALL or ANY_PORT, which is the ADR's fragment rule. */
static __always_inline bool class_allows(__u32 endpoint_id, __u32 class,
					 const struct ct4_key *t, __u32 *rule)
{
	struct policy_key k = {
		.endpoint_id = endpoint_id,
		.identity = class,
		.direction = t->direction,
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
	switch (t->protocol) {
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
	k.protocol = t->protocol;
	if ((flags & ports) && t->dport) {
		k.dport = t->dport;
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

/* Decides connection t for endpoint ep as a NEW connection: t is the
 * connection's original tuple with the direction whose policy applies (for
 * a reply's re-evaluation, the other hook's direction). Returns
 * PASS_UNSELECTED (that direction is not enforced), ALLOW_POLICY with *rule
 * set (0 for the host rule) or DROP_POLICY. */
static __always_inline __u32 evaluate(const struct endpoint_info *ep,
				      const struct ct4_key *t, __u32 *rule)
{
	__u8 dir = t->direction;
	__u32 peer = dir == PAL_DIR_INGRESS ? t->saddr : t->daddr;
	__u32 id, endpoint_id = ep->endpoint_id;

	*rule = 0;
	if (!(ep->flags & PAL_EP_ENFORCED(dir)))
		return PAL_PASS_UNSELECTED;
	id = peer_identity(peer);
	if (dir == PAL_DIR_INGRESS && id == PAL_ID_HOST && pal_host_reaches_pods)
		return PAL_ALLOW_POLICY;
	if (class_allows(endpoint_id, id, t, rule) ||
	    class_allows(endpoint_id, PAL_ID_ANY, t, rule))
		return PAL_ALLOW_POLICY;
	if (ep->flags & PAL_EP_CIDR(dir)) {
		struct policy_cidr_key ck = {
			.prefixlen = PAL_POLICY_CIDR_V4_FULL,
			.endpoint_id = endpoint_id,
			.direction = dir,
			.family = PAL_AF_INET,
		};
		struct policy_cidr_value *region;

		__builtin_memcpy(ck.addr, &peer, sizeof(peer));
		region = bpf_map_lookup_elem(&pal_policy_cidr, &ck);
		if (region && class_allows(endpoint_id, region->identity, t, rule))
			return PAL_ALLOW_POLICY;
	}
	return PAL_DROP_POLICY;
}

/* A packet of a tracked connection; `key` is the entry's own key (original
 * tuple, direction of the hook that admitted it). An entry recorded under an
 * older policy revision is decided again by the policy of that original
 * direction, so that revoking access cuts the connection at its next packet.
 * The revision is read before the policy maps, so that a batch the agent
 * writes meanwhile leaves the entry stale rather than wrongly current. */
static __always_inline int tracked(struct __sk_buff *skb, const struct endpoint_info *ep,
				   const struct ct4_key *key, struct ct_value *ct, __u32 reason)
{
	__u32 revision = policy_revision();
	__u64 now;

	if (ct->revision != revision) {
		__u32 rule;

		if (evaluate(ep, key, &rule) == PAL_DROP_POLICY) {
			bpf_map_delete_elem(&pal_ct4, key);
			return verdict(skb, PAL_DROP_REVOKED);
		}
		ct->revision = revision;
		ct->rule_id = rule;
	}
	/* The coarse clock (last tick) is cheaper than bpf_ktime_get_ns and
	 * ample for a once-a-second refresh; comparing with an addition keeps
	 * a coarse `now` slightly behind a precise creation stamp harmless. */
	now = bpf_ktime_get_coarse_ns();
	if (now > ct->last_seen_ns + NSEC_PER_SEC)
		ct->last_seen_ns = now;
	return verdict(skb, reason);
}

/* The per-packet algorithm for the hook of direction `dir` (a constant in
 * each program, so the verifier and the compiler see one path per hook).
 *
 * Deviation from the ADR's step 1: the ADR passes a packet at once when its
 * direction is not enforced. But a pod selected for Ingress only (the common
 * default-deny-ingress case) then never records its outgoing connections,
 * and their replies, arriving at the enforced to-pod hook, would be judged as
 * new incoming connections and dropped. So only an endpoint enforced in
 * NEITHER direction passes at once; otherwise the unenforced direction still
 * runs conntrack, and a new connection there passes as PASS_UNSELECTED and
 * is recorded (rule 0), so its replies are ALLOW_REPLY.
 *
 * An endpoint enforced in neither direction is tracked too: a connection
 * that starts while no policy selects the pod must be known by the
 * direction it really started in, or a later policy could see the pod's
 * replies as new outgoing connections and let the peer's packets through
 * as their "replies" forever. */
static __always_inline int handle(struct __sk_buff *skb, const __u8 dir)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&pal_endpoints, &ifindex);
	struct pal_pkt pkt;
	struct ct_value *ct;
	__u32 revision, rule, reason;

	if (!ep)
		return verdict(skb, PAL_PASS_UNSELECTED);
	switch (pal_parse(skb, &pkt)) {
	case PAL_PARSE_NON_IP:
		return verdict(skb, PAL_PASS_NON_IP);
	case PAL_PARSE_MALFORMED:
		return verdict(skb, PAL_DROP_MALFORMED);
	case PAL_PARSE_OK:
		break;
	}

	struct ct4_key key = {
		.saddr = pkt.saddr,
		.daddr = pkt.daddr,
		.sport = pkt.sport,
		.dport = pkt.dport,
		.protocol = pkt.protocol,
		.direction = dir,
	};

	/* No ports, so no conntrack: decided alone, by the all-ports entries. */
	if (pkt.fragment) {
		reason = evaluate(ep, &key, &rule);
		return verdict(skb, reason == PAL_DROP_POLICY ? PAL_DROP_FRAGMENT : reason);
	}

	/* A SYN opens a connection: decide it as new even if a stale entry
	 * with the same tuple exists (the new entry replaces it). */
	if (!pkt.syn) {
		struct ct4_key reply = {
			.saddr = pkt.daddr,
			.daddr = pkt.saddr,
			.sport = pkt.dport,
			.dport = pkt.sport,
			.protocol = pkt.protocol,
			.direction = !dir,
		};

		ct = bpf_map_lookup_elem(&pal_ct4, &key);
		if (ct)
			return tracked(skb, ep, &key, ct, PAL_ALLOW_ESTABLISHED);
		ct = bpf_map_lookup_elem(&pal_ct4, &reply);
		if (ct)
			return tracked(skb, ep, &reply, ct, PAL_ALLOW_REPLY);
	}

	revision = policy_revision(); /* before the policy maps: see tracked() */
	reason = evaluate(ep, &key, &rule);
	if (!PAL_REASON_IS_DROP(reason)) {
		struct ct_value v = {
			.last_seen_ns = bpf_ktime_get_ns(),
			.revision = revision,
			.rule_id = rule,
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

char LICENSE[] SEC("license") = "Apache-2.0";
