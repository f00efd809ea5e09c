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
 * other direction tracked too, so that their replies are recognised. Since
 * issue 7, an endpoint passes nothing but IPv4 and ARP about its own
 * address, never a tagged frame; fragments and ICMP errors are judged as
 * the connection they belong to; and conntrack never evicts, each endpoint
 * holding entries within its budget (docs/adr/0003-conntrack-budget.md).
 * The packet programs do not loop: a verdict costs a bounded number of
 * hash lookups whatever the number of rules, and a packet of a known
 * connection, reply or not, costs one conntrack lookup and the pal_config
 * read. pal_clock and pal_ct_forget serve the agent through test_run.
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "conntrack.h"
#include "dns.h"
#include "endpoints.h"
#include "flows.h"
#include "frag.h"
#include "ipcache.h"
#include "lb.h"
#include "metrics.h"
#include "nat.h"
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

/* What deciding a packet leaves for its flow event (report()): the rule
 * that decided, whether the packet opened a connection or ended one or
 * is due to report a live one's counts, the connection as it was opened
 * (origin, tuple) and, for a Service connection, the frontend. */
struct outcome {
	__u64 packets;
	__u64 bytes;
	__u32 rule;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 nat_addr;
	__u16 nat_port;
	__u8 event;  /* PAL_FLOW_NEW, END, UPDATE; 0: none */
	__u8 origin;
	__u8 service;
	__u8 default_deny; /* a drop for lack of an allowing rule (PAL_FLOWF_DEFAULT_DENY) */
	__u8 dns;          /* the packet was sent to the DNS proxy (PAL_PASS_DNS_REDIRECT, PAL_FLOWF_DNS_PROXY) */
};

/* The connection of entry key, opened in direction `origin`, as its
 * opening packet went: from the peer to the pod for ingress. */
static __always_inline void outcome_tuple(struct outcome *o, const struct ct4_key *k, __u8 origin)
{
	bool in = origin == PAL_DIR_INGRESS;

	o->origin = origin;
	o->saddr = in ? k->peer_addr : k->addr;
	o->daddr = in ? k->addr : k->peer_addr;
	o->sport = in ? k->peer_port : k->port;
	o->dport = in ? k->port : k->peer_port;
}

/* Whether peer class `class` has an entry of lane `lane` (a direction, or
 * PAL_DENY_LANE of it) that matches connection c (see policy.h): the
 * summary entry, then at most the exact-port entry, the port-range prefix
 * (one LPM lookup) and the any-port entry it announces. A port of 0 (no ports: ICMP, a non-first fragment) can only be
 * matched by ALL or ANY_PORT, which is the ADR's fragment rule. */
static __always_inline bool class_allows(__u32 endpoint_id, __u32 class, __u8 lane,
					 const struct conn *c, __u32 *rule)
{
	struct policy_key k = {
		.endpoint_id = endpoint_id,
		.identity = class,
		.direction = lane,
	};
	struct policy_value *v = bpf_map_lookup_elem(&pal_policy, &k);
	__u32 flags, any_port, ports, ranges;

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
		ranges = PAL_POL_TCP_RANGES;
		break;
	case IPPROTO_UDP:
		any_port = PAL_POL_UDP_ANY_PORT;
		ports = PAL_POL_UDP_PORTS;
		ranges = PAL_POL_UDP_RANGES;
		break;
	case IPPROTO_SCTP:
		any_port = PAL_POL_SCTP_ANY_PORT;
		ports = PAL_POL_SCTP_PORTS;
		ranges = PAL_POL_SCTP_RANGES;
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
	if ((flags & ranges) && c->dport) {
		struct policy_port_key pk = {
			.prefixlen = PAL_POLICY_PORTS_FULL,
			.endpoint_id = endpoint_id,
			.identity = class,
			.direction = lane,
			.protocol = c->protocol,
			.dport = bpf_htons(c->dport),
		};

		v = bpf_map_lookup_elem(&pal_policy_ports, &pk);
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

/* Whether lane `lane` of endpoint `endpoint_id` has an entry matching
 * connection c with a peer of identity `id`: the class of the identity,
 * then ANY, CLUSTER (for a peer in the cluster) and the CIDR region of the
 * peer's address, each only when the lane's flags (`flags`, the allow
 * lane's layout: the deny lane's are shifted down to it) say it has such
 * entries. *rule: the matching entry's rule. */
static __always_inline bool lane_matches(__u32 endpoint_id, __u32 flags, __u8 lane, __u32 id,
					 const struct conn *c, __u32 *rule)
{
	__u8 dir = c->direction;

	if (class_allows(endpoint_id, id, lane, c, rule))
		return true;
	if ((flags & PAL_EP_ANY(dir)) && class_allows(endpoint_id, PAL_ID_ANY, lane, c, rule))
		return true;
	if ((flags & PAL_EP_CLUSTER(dir)) && pal_cluster_identity(id) &&
	    class_allows(endpoint_id, PAL_ID_CLUSTER, lane, c, rule))
		return true;
	if (flags & PAL_EP_CIDR(dir)) {
		struct policy_cidr_key ck = {
			.prefixlen = PAL_POLICY_CIDR_V4_FULL,
			.endpoint_id = endpoint_id,
			.direction = lane,
			.family = PAL_AF_INET,
		};
		struct policy_cidr_value *region;

		__builtin_memcpy(ck.addr, &c->peer, sizeof(c->peer));
		region = bpf_map_lookup_elem(&pal_policy_cidr, &ck);
		if (region && class_allows(endpoint_id, region->identity, lane, c, rule))
			return true;
	}
	return false;
}

/* The deny lane of connection c's direction (lane_matches() with the deny
 * lane's flags, `flags` being the endpoint's whole flags). A global
 * function: the verifier checks it once, rather than once for every path
 * through the allow lane that follows it in each copy of evaluate(), which
 * put pal_from_pod beyond the verifier's million instructions. Only an
 * endpoint with deny entries in the direction calls it. */
__noinline int deny_matches(__u32 endpoint_id, __u32 flags, __u32 id, const struct conn *c, __u32 *rule)
{
	if (!c || !rule)
		return 0;
	return lane_matches(endpoint_id, flags >> PAL_DENY_FLAGS_SHIFT, PAL_DENY_LANE(c->direction), id, c, rule);
}

/* Decides connection c for endpoint ep as a NEW connection. Returns
 * DROP_POLICY_DENY with *rule set (a deny rule matches, ADR 0010: looked at
 * first, whether or not the direction is enforced, before the host rule),
 * PASS_UNSELECTED (that direction is not enforced), ALLOW_POLICY with *rule
 * set (0 for the host rule) or DROP_POLICY (the default deny). Each lane's
 * ANY, CLUSTER and CIDR classes are probed only when the endpoint's flags
 * say it has such entries in that direction; an endpoint without deny
 * entries in the direction pays one flag test for the deny lane. */
static __always_inline __u32 evaluate(const struct endpoint_info *ep,
				      const struct conn *c, __u32 *rule)
{
	__u8 dir = c->direction;
	__u32 id, endpoint_id = ep->endpoint_id, flags = ep->flags;

	*rule = 0;
	if (!(flags & (PAL_EP_ENFORCED(dir) | PAL_EP_DENY(dir))))
		return PAL_PASS_UNSELECTED;
	id = pal_peer_identity(c->peer);
	if ((flags & PAL_EP_DENY(dir)) && deny_matches(endpoint_id, flags, id, c, rule))
		return PAL_DROP_POLICY_DENY;
	if (!(flags & PAL_EP_ENFORCED(dir)))
		return PAL_PASS_UNSELECTED;
	/* The host rule: this node, also when its address is the API server's. */
	if (dir == PAL_DIR_INGRESS && (id == PAL_ID_HOST || id == PAL_ID_HOST_KUBE_APISERVER) && pal_host_reaches_pods)
		return PAL_ALLOW_POLICY;
	if (lane_matches(endpoint_id, flags, dir, id, c, rule))
		return PAL_ALLOW_POLICY;
	return PAL_DROP_POLICY;
}

static __always_inline struct endpoint_info *endpoint_of(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	return bpf_map_lookup_elem(&pal_endpoints, &ifindex);
}

/* Brings a stale entry (recorded under an older revision) up to date: its
 * connection is decided again by the policy of its origin direction and
 * its original tuple; denied, the entry is marked revoked (see
 * conntrack.h) and attributed to the deny rule that matched it, or, when
 * no rule allows it any more, to that direction's default rule. */
static __always_inline void reevaluate(const struct endpoint_info *ep, const struct ct4_key *key,
				       struct ct_value *ct, __u32 revision)
{
	struct conn c = conn_of(key, ct->origin);
	__u32 rule, reason = evaluate(ep, &c, &rule);

	ct->revoked = reason == PAL_DROP_POLICY ? PAL_CT_REVOKED_DEFAULT :
		      reason == PAL_DROP_POLICY_DENY ? PAL_CT_REVOKED_DENY : 0;
	if (reason == PAL_DROP_POLICY) /* denied by no rule: the default deny decided */
		rule = ct->origin == PAL_DIR_INGRESS ? ep->ingress_default_rule : ep->egress_default_rule;
	ct->rule_id = rule;
	ct->revision = revision;
}

/* A packet of the connection of entry ct was seen: its idle clock restarts
 * (written at most every PAL_CT_REFRESH_JIFFIES), and a TCP FIN or RST
 * marks it closing. */
static __always_inline void touch(struct ct_value *ct, const struct pal_pkt *pkt)
{
	__u32 now = (__u32)bpf_jiffies64();

	if (now - ct->last_seen > PAL_CT_REFRESH_JIFFIES)
		ct->last_seen = now;
	if (pkt->fin_rst && !ct->closing)
		ct->closing = 1;
}

/* Flow accounting of a packet of a tracked connection: its counts, and
 * whether it ends the connection (its first FIN or RST) or is the first
 * packet since the connection last reported, pal_flow_update_units ago. */
static __always_inline void count(struct __sk_buff *skb, const struct pal_pkt *pkt, const struct ct4_key *key,
				  struct ct_value *ct, struct outcome *out)
{
	__u32 now = (__u32)(bpf_ktime_get_coarse_ns() >> 20); /* only compared with itself: the coarse clock is enough, and 25 ns cheaper */

	__sync_fetch_and_add(&ct->packets, 1);
	__sync_fetch_and_add(&ct->bytes, skb->len);
	if (pkt->fin_rst && !ct->closing) {
		out->event = PAL_FLOW_END;
	} else if (now - ct->last_report >= pal_flow_update_units) {
		ct->last_report = now;
		out->event = PAL_FLOW_UPDATE;
	} else {
		return;
	}
	out->rule = ct->rule_id;
	out->packets = ct->packets;
	out->bytes = ct->bytes;
	outcome_tuple(out, key, ct->origin);
}

/* A packet of a tracked connection, at the hook of direction `dir`. A
 * stale entry is re-evaluated (reevaluate()), so that revoking access cuts
 * the connection at its next packet, replies included; a revoked entry
 * stays, marked, and drops the connection's packets both ways until a
 * later revision allows it again. Those dropped packets refresh last_seen
 * like any other: the garbage collector may remove a revoked entry only
 * once both sides have been silent for the whole timeout, or the pod's
 * next packet would open the flow again in the other direction. The
 * revision is read before the policy maps, so that a batch the agent
 * writes meanwhile leaves the entry stale rather than wrongly current. The
 * endpoint is looked up only for a stale entry: a current one needs
 * nothing else. */
static __always_inline __u32 tracked(struct __sk_buff *skb, const __u8 dir, const struct pal_pkt *pkt,
				     const struct ct4_key *key, struct ct_value *ct, struct outcome *out)
{
	__u32 revision = policy_revision();

	if (ct->revision != revision) {
		struct endpoint_info *ep = endpoint_of(skb);

		if (!ep)
			return PAL_DROP_NO_ENDPOINT;
		reevaluate(ep, key, ct, revision);
	}
	if (pal_flow_events)
		count(skb, pkt, key, ct, out);
	touch(ct, pkt);
	out->rule = ct->rule_id;
	if (ct->revoked) {
		out->default_deny = ct->revoked == PAL_CT_REVOKED_DEFAULT;
		return PAL_DROP_REVOKED;
	}
	return ct->origin == dir ? PAL_ALLOW_ESTABLISHED : PAL_ALLOW_REPLY;
}

/* The counters one charge added to (ct_charge), to take it back. */
struct ct_charged {
	struct ct_budget *mine;
	struct ct_budget *node;
};

/* Counts one more pal_ct4 entry for device `ifindex` (see conntrack.h),
 * or refuses: the endpoint would hold more than pal_ct_endpoint_max, or
 * more than its reserve while the node's shared part is used up. The
 * counters are added to first and read after, so two CPUs racing for the
 * last entry may both be refused (fail closed), never both admitted. */
static __always_inline bool ct_charge(__u32 ifindex, struct ct_charged *charged)
{
	struct ct_budget zero_budget = { 0 }, *mine, *node;
	__u32 node_key = 0, n, total;

	mine = bpf_map_lookup_elem(&pal_ct_budget, &ifindex);
	if (!mine) {
		bpf_map_update_elem(&pal_ct_budget, &ifindex, &zero_budget, BPF_NOEXIST);
		mine = bpf_map_lookup_elem(&pal_ct_budget, &ifindex);
	}
	node = bpf_map_lookup_elem(&pal_ct_budget, &node_key);
	if (!node) {
		bpf_map_update_elem(&pal_ct_budget, &node_key, &zero_budget, BPF_NOEXIST);
		node = bpf_map_lookup_elem(&pal_ct_budget, &node_key);
	}
	if (!mine || !node)
		return false;
	__sync_fetch_and_add(&mine->entries, 1);
	__sync_fetch_and_add(&node->entries, 1);
	n = mine->entries;
	total = node->entries;
	if (n <= pal_ct_endpoint_max && (n <= PAL_CT_RESERVED || total <= PAL_CT_SHARED)) {
		charged->mine = mine;
		charged->node = node;
		return true;
	}
	__sync_fetch_and_add(&mine->entries, -1);
	__sync_fetch_and_add(&node->entries, -1);
	return false;
}

/* Takes back a charge that made no entry. */
static __always_inline void ct_uncharge(const struct ct_charged *charged)
{
	__sync_fetch_and_add(&charged->mine->entries, -1);
	__sync_fetch_and_add(&charged->node->entries, -1);
}

/* Counts one pal_ct4 entry of device `ifindex` less (never below 0). */
static __always_inline void ct_release(__u32 ifindex)
{
	__u32 node_key = 0;
	struct ct_budget *b = bpf_map_lookup_elem(&pal_ct_budget, &ifindex);

	if (b && b->entries)
		__sync_fetch_and_add(&b->entries, -1);
	b = bpf_map_lookup_elem(&pal_ct_budget, &node_key);
	if (b && b->entries)
		__sync_fetch_and_add(&b->entries, -1);
}

/* Records a new connection of the device v->ifindex, within its budget.
 * An entry that exists already (a SYN reopening its connection, or an
 * entry of another device under the same tuple) is replaced: its own
 * device's count is unchanged, another device's entry changes hands.
 * Returns false when the connection cannot be recorded (DROP_CT_FULL). */
static __always_inline bool ct_open(const struct ct4_key *key, const struct ct_value *v)
{
	struct ct_charged charged;
	struct ct_value *old;
	long err;

	if (ct_charge(v->ifindex, &charged)) {
		err = bpf_map_update_elem(&pal_ct4, key, v, BPF_NOEXIST);
		if (!err)
			return true;
		ct_uncharge(&charged);
		if (err != -EEXIST)
			return false;
	}
	old = bpf_map_lookup_elem(&pal_ct4, key);
	if (!old)
		return false; /* over budget, or deleted meanwhile: decided again at the next packet */
	if (old->ifindex != v->ifindex) {
		if (!ct_charge(v->ifindex, &charged))
			return false;
		ct_release(old->ifindex);
	}
	return bpf_map_update_elem(&pal_ct4, key, v, BPF_EXIST) == 0;
}

/* ARP at an endpoint: only about the pod's own address. From the pod, the
 * sender must be the pod (anti-spoofing: a pod announcing another address
 * would draw its traffic); to the pod, the target must be the pod. */
static __always_inline __u32 arp(struct __sk_buff *skb, const __u8 dir, const struct pal_pkt *pkt)
{
	struct endpoint_info *ep = endpoint_of(skb);

	if (!ep)
		return PAL_DROP_NO_ENDPOINT;
	if (dir == PAL_DIR_EGRESS)
		return pkt->saddr == ep->ipv4 ? PAL_PASS_NON_IP : PAL_DROP_SPOOFED;
	return pkt->daddr == ep->ipv4 ? PAL_PASS_NON_IP : PAL_DROP_NOT_IPV4;
}

/* An ICMP error (destination unreachable, fragmentation needed, time
 * exceeded, parameter problem) has no ports of its own: it belongs to the
 * connection of the header it quotes, and passes only if that connection
 * is live on this device (its entry current or brought up to date, not
 * revoked). The quoted packet went the other way (an error to the pod
 * quotes what the pod sent), so its key is built for the other hook, and
 * the pod's side of it must be the error's own (to the pod: the quoted
 * source is the error's destination; from the pod: the quoted destination
 * is the error's source, which must be the pod's address). An error never
 * creates an entry and never refreshes one: a stream of errors cannot keep
 * a connection, or its revocation, alive. Where the direction is not
 * enforced an unrelated error passes, as anything would, still without an
 * entry; where it is, it is dropped (DROP_ICMP_ERROR). */
static __always_inline __u32 icmp_error(struct __sk_buff *skb, const __u8 dir, const struct pal_pkt *pkt)
{
	const struct pal_quoted *q = &pkt->quoted;
	struct endpoint_info *ep = endpoint_of(skb);
	struct pal_pkt quoted = {
		.saddr = q->saddr, .daddr = q->daddr, .sport = q->sport, .dport = q->dport, .protocol = q->protocol,
	};
	__u32 own = dir == PAL_DIR_INGRESS ? pkt->daddr : pkt->saddr;
	struct ct4_key key;
	struct ct_value *ct;

	if (!ep)
		return PAL_DROP_NO_ENDPOINT;
	if (dir == PAL_DIR_EGRESS && pkt->saddr != ep->ipv4)
		return PAL_DROP_SPOOFED;
	if (dir == PAL_DIR_INGRESS)
		ct_key_of(&quoted, PAL_DIR_EGRESS, &key);
	else
		ct_key_of(&quoted, PAL_DIR_INGRESS, &key);
	ct = q->ok && key.addr == own ? bpf_map_lookup_elem(&pal_ct4, &key) : NULL;
	if (ct && ct->ifindex == skb->ifindex && ct->nat != PAL_NAT_SERVICE && ct->nat != PAL_NAT_DNS) {
		__u32 revision = policy_revision();

		if (ct->revision != revision)
			reevaluate(ep, &key, ct, revision);
		if (!ct->revoked)
			return PAL_ALLOW_RELATED;
	}
	if (!(ep->flags & PAL_EP_ENFORCED(dir)))
		return PAL_PASS_UNSELECTED;
	return PAL_DROP_ICMP_ERROR;
}

/* A later fragment takes the ports its first fragment recorded at this
 * device (frag.h); false when there is no record. */
static __always_inline bool fragment_ports(struct __sk_buff *skb, struct pal_pkt *pkt)
{
	struct frag4_key k = {
		.saddr = pkt->saddr, .daddr = pkt->daddr, .ifindex = skb->ifindex,
		.id = pkt->ipid, .protocol = pkt->protocol,
	};
	struct frag4_value *v = bpf_map_lookup_elem(&pal_frag4, &k);

	if (!v)
		return false;
	pkt->sport = v->sport;
	pkt->dport = v->dport;
	return true;
}

/* A first fragment passed: its later fragments will be judged as it was. */
static __always_inline int remember_fragment(struct __sk_buff *skb, const struct pal_pkt *pkt, int action)
{
	struct frag4_key k = {
		.saddr = pkt->saddr, .daddr = pkt->daddr, .ifindex = skb->ifindex,
		.id = pkt->ipid, .protocol = pkt->protocol,
	};
	struct frag4_value v = { .sport = pkt->sport, .dport = pkt->dport };

	if (action == TC_ACT_OK)
		bpf_map_update_elem(&pal_frag4, &k, &v, BPF_ANY);
	return action;
}

/* What a new entry is to say about translation, or what the entry that
 * decided a packet says (ct_value.nat and its address and port). */
struct nat4 {
	__u32 addr;
	__u16 port;
	__u8 kind;
};

/* Whether entry ct may decide a packet at the hook of direction `dir` that
 * wants translation `want`. From the pod, the entry must be of the same
 * kind and, for a Service's backend connection, the same frontend: a
 * direct packet never rides a Service connection's entry, nor the reverse,
 * and an entry that does not match is replaced. To the pod, any entry but
 * a SERVICE or DNS one: those are keyed by the tuple as translated and
 * admit nothing; a packet from the frontend's or the DNS proxy's address
 * that was not translated is a new one. */
static __always_inline bool entry_fits(const struct ct_value *ct, const __u8 dir, const struct nat4 *want)
{
	if (dir == PAL_DIR_INGRESS)
		return ct->nat != PAL_NAT_SERVICE && ct->nat != PAL_NAT_DNS;
	return ct->nat == want->kind &&
	       (want->kind == PAL_NAT_NONE || (ct->nat_addr == want->addr && ct->nat_port == want->port));
}

/* The verdict of an IPv4 packet with its ports (not an ICMP error) at the
 * hook of direction `dir`: one conntrack lookup for a known connection,
 * policy for a new one, which is recorded with translation `want` when it
 * passes. *got is what the deciding entry says about translation.
 *
 * A packet of a known connection costs the parse, ONE conntrack lookup
 * (both directions share the entry) and the revision read: the endpoint is
 * not even looked up. Everything else is a new connection, decided by
 * policy and recorded when it passes.
 *
 * Deviation from ADR 0001's step 1: the ADR passes a packet at once when
 * its direction is not enforced. But a pod selected for Ingress only (the
 * common default-deny-ingress case) then never records its outgoing
 * connections, and their replies, arriving at the enforced to-pod hook,
 * would be judged as new incoming connections and dropped. So every
 * connection of an endpoint is tracked, in both directions and whether or
 * not a policy selects the pod: a new connection in an unenforced direction
 * passes as PASS_UNSELECTED and is recorded (rule 0), so its replies are
 * ALLOW_REPLY; and a connection that starts while no policy selects the pod
 * stays known by the direction it really started in, or a later policy
 * could see the pod's replies as new outgoing connections and let the
 * peer's packets through as their "replies" forever. */
static __always_inline __u32 decide(struct __sk_buff *skb, const __u8 dir, const struct pal_pkt *pkt,
				    const struct nat4 *want, struct nat4 *got, struct outcome *out)
{
	struct endpoint_info *ep;
	struct ct4_key key;
	struct ct_value *ct;
	struct conn c;
	__u32 revision, rule, reason;

	ct_key_of(pkt, dir, &key);
	/* A SYN opens a connection: it is decided as new even when an entry
	 * with the same key exists (the new entry replaces it). */
	if (!pkt->syn) {
		ct = bpf_map_lookup_elem(&pal_ct4, &key);
		if (ct && ct->ifindex == skb->ifindex && entry_fits(ct, dir, want)) {
			got->kind = ct->nat;
			got->addr = ct->nat_addr;
			got->port = ct->nat_port;
			return tracked(skb, dir, pkt, &key, ct, out);
		}
	}

	ep = endpoint_of(skb);
	if (!ep)
		return PAL_DROP_NO_ENDPOINT;
	/* Anti-spoofing: a pod speaks only from its own address, or it could
	 * borrow another pod's identity at the peer's ingress and open that
	 * pod's conntrack entries. Checked for new connections only: a tracked
	 * one is bound to this device, and this device's pod has one address. */
	if (dir == PAL_DIR_EGRESS && pkt->saddr != ep->ipv4)
		return PAL_DROP_SPOOFED;
	revision = policy_revision(); /* before the policy maps: see tracked() */
	c = conn_of(&key, dir);
	reason = evaluate(ep, &c, &rule);
	/* A denial for lack of an allowing rule is the default rule's (the first
	 * isolating policy's); a deny rule's is that rule's. */
	out->default_deny = reason == PAL_DROP_POLICY;
	out->rule = reason == PAL_DROP_POLICY ? (dir == PAL_DIR_INGRESS ? ep->ingress_default_rule : ep->egress_default_rule) : rule;
	if (!PAL_REASON_IS_DROP(reason)) {
		struct ct_value v = {
			.revision = revision,
			.rule_id = rule,
			.last_seen = (__u32)bpf_jiffies64(),
			.ifindex = skb->ifindex,
			.origin = dir,
			.closing = pkt->fin_rst,
			.nat = want->kind,
			.nat_addr = want->addr,
			.nat_port = want->port,
			/* Its NEW event reports it now: the next report is one interval away. */
			.last_report = pal_flow_events ? (__u32)(bpf_ktime_get_coarse_ns() >> 20) : 0,
			.packets = 1,
			.bytes = skb->len,
		};

		/* Fail closed: a connection that cannot be tracked would have
		 * its replies judged as new connections, and the endpoint is
		 * over its budget (conntrack.h). */
		if (!ct_open(&key, &v))
			return PAL_DROP_CT_FULL;
		*got = *want;
		out->event = PAL_FLOW_NEW;
		outcome_tuple(out, &key, dir);
	}
	return reason;
}

/* No backend was chosen because the only one is the client itself: the
 * packet goes on untranslated (see pick_backend). Not a reason code. */
#define PAL_LB_HAIRPIN 0

/* Chooses the backend of a new connection to a frontend (lb.h) into
 * be->daddr and be->dport; returns PAL_ALLOW_POLICY (meaning "chosen"),
 * PAL_DROP_NO_BACKEND, or PAL_LB_HAIRPIN when the client is the frontend's
 * only backend. A client is not sent to itself while another backend
 * exists: a pod cannot receive its own address as a source from its
 * interface. Alone, it is left to kube-proxy, which masquerades such
 * hairpin connections, and its packets are judged as before translation
 * existed (docs/adr/0005-service-egress.md). */
static __always_inline __u32 pick_backend(const struct pal_pkt *pkt, const struct lb4_key *frontend,
					  const struct lb4_service *svc, struct pal_pkt *be)
{
	__u32 count = svc->count, h;
	struct lb4_backend_key k = { .frontend = *frontend };
	struct lb4_backend *b;

	if (count == 0)
		return PAL_DROP_NO_BACKEND;
	if (svc->flags & PAL_LB_CLIENT_AFFINITY)
		h = pal_lb_hash(pkt->saddr, 0, 0, 0, 0);
	else
		h = pal_lb_hash(pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->protocol);
	k.slot = h % count;
	b = bpf_map_lookup_elem(&pal_lb4_backends, &k);
	if (b && b->addr == pkt->saddr) {
		if (count == 1)
			return PAL_LB_HAIRPIN;
		k.slot = k.slot + 1 < count ? k.slot + 1 : 0;
		b = bpf_map_lookup_elem(&pal_lb4_backends, &k);
	}
	if (!b)
		return PAL_DROP_NO_BACKEND;
	be->daddr = b->addr;
	be->dport = b->port;
	return PAL_ALLOW_POLICY;
}

/* A packet from the pod to a Service frontend (lb.h): translated to a
 * backend, and judged, like everything after, as the connection to that
 * backend (docs/adr/0005-service-egress.md). The SERVICE entry, keyed by
 * the tuple the pod sent, keeps the backend of the connection; the
 * REVERSE entry, keyed by the translated tuple, is the connection's
 * ordinary entry (policy, revision, revocation, replies). Returns the
 * reason, or PAL_LB_HAIRPIN when the packet is to go on untranslated;
 * *to is the backend the packet now goes to when it passed. */
static __always_inline __u32 to_service(struct __sk_buff *skb, const struct pal_pkt *pkt,
					const struct lb4_key *frontend, const struct lb4_service *svc,
					struct outcome *out, struct nat4 *to)
{
	struct nat4 want = { .kind = PAL_NAT_REVERSE, .addr = pkt->daddr, .port = pkt->dport }, got = { 0 };
	struct pal_pkt be = *pkt;
	struct ct_value *fwd = NULL;
	struct ct4_key key;
	__u32 reason;

	ct_key_of(pkt, PAL_DIR_EGRESS, &key);
	if (!pkt->syn) {
		fwd = bpf_map_lookup_elem(&pal_ct4, &key);
		if (fwd && (fwd->ifindex != skb->ifindex || fwd->nat != PAL_NAT_SERVICE))
			fwd = NULL;
	}
	if (fwd) {
		be.daddr = fwd->nat_addr;
		be.dport = fwd->nat_port;
	} else {
		reason = pick_backend(pkt, frontend, svc, &be);
		if (reason != PAL_ALLOW_POLICY)
			return reason;
	}
	out->service = 1;
	out->nat_addr = pkt->daddr;
	out->nat_port = pkt->dport;
	reason = decide(skb, PAL_DIR_EGRESS, &be, &want, &got, out);
	if (PAL_REASON_IS_DROP(reason))
		return reason;
	if (fwd) {
		touch(fwd, pkt);
	} else {
		struct ct_value v = {
			.last_seen = (__u32)bpf_jiffies64(),
			.ifindex = skb->ifindex,
			.origin = PAL_DIR_EGRESS,
			.closing = pkt->fin_rst,
			.nat = PAL_NAT_SERVICE,
			.nat_addr = be.daddr,
			.nat_port = be.dport,
		};

		if (!ct_open(&key, &v))
			return PAL_DROP_CT_FULL;
	}
	if (!pal_nat4(skb, pkt, true, be.daddr, be.dport))
		return PAL_DROP_NAT;
	to->addr = be.daddr;
	to->port = be.dport;
	return reason;
}

/* The frontend a packet from the pod is addressed to, if any. */
static __always_inline struct lb4_service *frontend_of(const struct pal_pkt *pkt, struct lb4_key *k)
{
	k->addr = pkt->daddr;
	k->port = pkt->dport;
	k->protocol = pkt->protocol;
	k->pad = 0;
	return bpf_map_lookup_elem(&pal_lb4, k);
}

/* ---- the DNS proxy's redirect (dns.h, docs/adr/0012-dns-redirect.md) ---- */

/* The DNS entry of a query's flow as redirected: from the pod's address
 * and port to the proxy's, keyed from the pod's side like any entry. */
static __always_inline void dns_key_of(__u32 pod, __u16 pod_port, __u32 proxy, __u16 proxy_port, __u8 protocol,
				       struct ct4_key *k)
{
	k->addr = pod;
	k->peer_addr = proxy;
	k->port = pod_port;
	k->peer_port = proxy_port;
	k->protocol = protocol;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* Deletes an entry this device made, and uncounts it (as pal_ct_forget does). */
static __always_inline void ct_forget_entry(const struct ct4_key *key, __u32 ifindex)
{
	if (bpf_map_delete_elem(&pal_ct4, key) == 0)
		ct_release(ifindex);
}

/* From the pod, after its packet `pkt` passed the policy as a packet to
 * `daddr`:`dport` (the backend a Service's frontend was translated to, or
 * the destination the pod wrote), where it now goes: a DNS query of an endpoint with PAL_EP_DNS_REDIRECT to a
 * listed upstream goes to the node's DNS proxy instead, the proxy port
 * telling it which upstream it stands in for, while the proxy's lease
 * runs. Its flow's DNS entry (PAL_NAT_DNS) names the upstream, for the
 * replies. UDP: every datagram follows the lease (a datagram is a query).
 * TCP: the SYN follows the lease and the rest of the connection its SYN
 * (redirected while it has its DNS entry, never switched mid-stream).
 * Returns PASS_DNS_REDIRECT (sent to the proxy), 0 (sent on to `to`), or
 * a drop: DROP_DNS_NO_PROXY (no proxy for an endpoint that must not bypass
 * it), DROP_CT_FULL (the DNS entry does not fit the endpoint's budget: a
 * redirect whose replies could not be translated back, or a bypass of the
 * proxy, would both be wrong), DROP_NAT. The caller calls it only for a
 * packet to port 53 (two compares for every other packet); one hash
 * lookup for a packet to an address that is no upstream. A global
 * function, verified once on its own: inlined, it took pal_from_pod's
 * stack past 512 bytes and tripled its processed instructions; its own
 * frame is kept small (the new entry's value is built in pal_ct_scratch),
 * as it adds to pal_from_pod's. */
__noinline int dns_redirect(struct __sk_buff *skb, const struct pal_pkt *pkt, __u32 daddr, __u16 dport)
{
	struct dns_upstream *up;
	struct endpoint_info *ep;
	struct dns_proxy *proxy;
	struct ct_value *dns;
	struct ct4_key key;
	__u32 zero = 0, proxy_addr, upstream;
	__u16 proxy_port;
	bool alive, tcp;

	if (!skb || !pkt)
		return 0;
	upstream = daddr;
	tcp = pkt->protocol == IPPROTO_TCP;
	if (dport != PAL_DNS_PORT || (!tcp && pkt->protocol != IPPROTO_UDP))
		return 0;
	up = bpf_map_lookup_elem(&pal_dns_upstreams, &upstream);
	if (!up)
		return 0;
	ep = endpoint_of(skb);
	if (!ep || !(ep->flags & PAL_EP_DNS_REDIRECT))
		return 0;
	proxy = bpf_map_lookup_elem(&pal_dns_proxy, &zero);
	if (!proxy)
		return 0;
	proxy_addr = proxy->addr;
	proxy_port = bpf_ntohs(up->proxy_port);
	alive = proxy_addr && proxy_port && bpf_jiffies64() < proxy->alive_until;
	dns_key_of(pkt->saddr, pkt->sport, proxy_addr, proxy_port, pkt->protocol, &key);
	dns = bpf_map_lookup_elem(&pal_ct4, &key);
	/* Only this device's DNS entry for this very upstream: anything else
	 * under the key (the pod's own direct flow to the proxy's port) is
	 * replaced when a query takes the key, and never redirects. */
	if (dns && (dns->ifindex != skb->ifindex || dns->nat != PAL_NAT_DNS || dns->nat_addr != upstream ||
		    dns->nat_port != dport))
		dns = NULL;
	if (tcp && !pkt->syn) {
		if (!dns)
			return 0;
		touch(dns, pkt);
	} else if (!alive) {
		/* A SYN going to the upstream: the rest of its connection must
		 * not follow an older connection's DNS entry to the proxy. */
		if (dns && tcp)
			ct_forget_entry(&key, skb->ifindex);
		return ep->flags & PAL_EP_DNS_NO_FALLBACK ? PAL_DROP_DNS_NO_PROXY : 0;
	} else if (!dns || tcp) {
		/* Built in the per-CPU scratch value, not on the stack (conntrack.h). */
		struct ct_value *v = bpf_map_lookup_elem(&pal_ct_scratch, &zero);

		if (!v)
			return PAL_DROP_CT_FULL;
		__builtin_memset(v, 0, sizeof(*v));
		v->last_seen = (__u32)bpf_jiffies64();
		v->ifindex = skb->ifindex;
		v->origin = PAL_DIR_EGRESS;
		v->closing = pkt->fin_rst;
		v->nat = PAL_NAT_DNS;
		v->nat_addr = upstream;
		v->nat_port = dport;
		if (!ct_open(&key, v))
			return PAL_DROP_CT_FULL;
	} else {
		touch(dns, pkt);
	}
	if (!pal_nat4_from(skb, pkt, true, daddr, dport, proxy_addr, proxy_port))
		return PAL_DROP_NAT;
	return PAL_PASS_DNS_REDIRECT;
}

/* To the pod, before conntrack: a reply of the DNS proxy (from its address
 * and the proxy port of the upstream) on a query flow this device
 * redirected (its DNS entry) gets the upstream's address and port back as
 * its source, so the pod sees the answer come from where it asked; then it
 * is judged, and a Service's reply translated, as a reply of the
 * upstream. The proxy's address and the upstream's port are read as they
 * are now: a packet from another address, or a port no longer the
 * upstream's, is not translated (and is judged as it is, from the host).
 * *cur is updated; returns 0, or DROP_NAT. A global function, as
 * dns_redirect(); the caller calls it only for a packet from the proxy's
 * address. */
__noinline int dns_reverse(struct __sk_buff *skb, struct pal_pkt *cur)
{
	struct dns_upstream *up;
	struct dns_proxy *proxy;
	struct ct_value *dns;
	struct ct4_key key;
	__u32 zero = 0, upstream;
	__u16 upstream_port;

	if (!skb || !cur || (cur->protocol != IPPROTO_UDP && cur->protocol != IPPROTO_TCP))
		return 0;
	proxy = bpf_map_lookup_elem(&pal_dns_proxy, &zero);
	if (!proxy || !proxy->addr || cur->saddr != proxy->addr)
		return 0;
	dns_key_of(cur->daddr, cur->dport, cur->saddr, cur->sport, cur->protocol, &key);
	dns = bpf_map_lookup_elem(&pal_ct4, &key);
	if (!dns || dns->ifindex != skb->ifindex || dns->nat != PAL_NAT_DNS)
		return 0;
	upstream = dns->nat_addr;
	upstream_port = dns->nat_port;
	up = bpf_map_lookup_elem(&pal_dns_upstreams, &upstream);
	if (!up || bpf_ntohs(up->proxy_port) != cur->sport)
		return 0;
	touch(dns, cur);
	if (!pal_nat4(skb, cur, false, upstream, upstream_port))
		return PAL_DROP_NAT;
	cur->saddr = upstream;
	cur->sport = upstream_port;
	return 0;
}

/* Whether a packet to the pod comes from the DNS proxy's address: the
 * inlined array read that spares every other packet dns_reverse()'s call.
 * The key is a constant in .rodata, not on the stack: pal_to_pod's frame
 * and its global functions' share 512 bytes. */
static const __u32 pal_key_zero = 0;

static __always_inline bool from_dns_proxy(const struct pal_pkt *pkt)
{
	struct dns_proxy *proxy = bpf_map_lookup_elem(&pal_dns_proxy, &pal_key_zero);

	return proxy && proxy->addr && pkt->saddr == proxy->addr;
}

/* Writes the flow event a packet's verdict calls for (flows.h): for a drop,
 * and for a packet that opened or ended a connection or reports a live
 * one. Nothing for other packets: established traffic only adds to its
 * entry's counts. The identities are looked up here, only when an event
 * is written. */
static __always_inline void report(struct __sk_buff *skb, const __u8 dir, const struct pal_pkt *pkt,
				   __u32 reason, const struct outcome *o)
{
	bool drop = PAL_REASON_IS_DROP(reason);
	struct endpoint_info *ep;
	struct flow_event e;
	__u32 own, peer, peer_id;
	bool in;

	if (!pal_flow_events || (!drop && !o->event))
		return;
	/* A drop of a kind that wrote its event within the window is only counted:
	 * no names looked up, no event built (a flood costs a lookup and an add). */
	if (drop && flow_drop_counted(skb->ifindex, dir == PAL_DIR_INGRESS ? pkt->saddr : pkt->daddr, pkt->dport,
				      pkt->protocol, reason, dir))
		return;
	__builtin_memset(&e, 0, sizeof(e));
	e.time_ns = bpf_ktime_get_boot_ns();
	e.ifindex = skb->ifindex;
	e.reason = reason;
	e.rule_id = o->rule;
	e.protocol = pkt->protocol;
	e.tcp_flags = pkt->tcp_flags;
	if (o->service) {
		e.flags |= PAL_FLOWF_SERVICE;
		e.nat_addr = o->nat_addr;
		e.nat_port = o->nat_port;
	}
	if (o->dns && !drop)
		e.flags |= PAL_FLOWF_DNS_PROXY;
	if (drop) {
		e.type = PAL_FLOW_DROP;
		e.direction = dir;
		e.saddr = pkt->saddr;
		e.daddr = pkt->daddr;
		e.sport = pkt->sport;
		e.dport = pkt->dport;
		e.packets = 1;
		e.bytes = skb->len;
		if ((reason == PAL_DROP_POLICY || reason == PAL_DROP_REVOKED) && o->default_deny)
			e.flags |= PAL_FLOWF_DEFAULT_DENY;
	} else {
		e.type = o->event;
		e.direction = o->origin;
		e.saddr = o->saddr;
		e.daddr = o->daddr;
		e.sport = o->sport;
		e.dport = o->dport;
		e.packets = o->event == PAL_FLOW_NEW ? 1 : o->packets;
		e.bytes = o->event == PAL_FLOW_NEW ? skb->len : o->bytes;
	}
	in = e.direction == PAL_DIR_INGRESS;
	peer = in ? e.saddr : e.daddr;
	ep = endpoint_of(skb);
	own = ep ? ep->identity : 0;
	peer_id = pal_peer_identity(peer);
	e.src_identity = in ? peer_id : own;
	e.dst_identity = in ? own : peer_id;
	if (drop)
		flow_drop(&e, peer);
	else
		flow_emit(&e);
}

/* The per-packet algorithm for the hook of direction `dir` (a constant in
 * each program, so the verifier and the compiler see one path per hook):
 * the frame's checks, ICMP errors and fragments, Service translation from
 * the pod and the DNS proxy's replies to it, then decide(), then the DNS
 * redirect of what passed from the pod; then the packet's flow event and
 * its count. Fragment records and drop events see the packet as it
 * arrived. A packet sent to the DNS proxy is counted as PASS_DNS_REDIRECT;
 * its flow event keeps the decision's reason. */
static __always_inline int handle(struct __sk_buff *skb, const __u8 dir)
{
	struct nat4 none = { 0 }, got = { 0 };
	struct pal_pkt pkt = { 0 };
	struct outcome out = { 0 };
	__u32 reason;

	/* At an endpoint, only IPv4 and ARP about the pod's own address pass
	 * (IPv6 is not enforced yet), and never a tagged frame: the kernel
	 * strips tags on both sides of tc, so a tag would carry a packet past
	 * everything below. A device with these programs but no endpoint entry
	 * is a pod being torn down (CNI ADD writes the entry, closed, before it
	 * attaches them), or a fault: its packets are dropped, whatever they are. */
	switch (pal_parse(skb, &pkt)) {
	case PAL_PARSE_OK:
		break;
	case PAL_PARSE_ARP:
		reason = arp(skb, dir, &pkt);
		pkt.saddr = pkt.daddr = 0; /* not IPv4 addresses of a flow */
		goto done;
	case PAL_PARSE_VLAN:
		reason = endpoint_of(skb) ? PAL_DROP_VLAN : PAL_DROP_NO_ENDPOINT;
		goto done;
	case PAL_PARSE_OTHER:
		reason = endpoint_of(skb) ? PAL_DROP_NOT_IPV4 : PAL_DROP_NO_ENDPOINT;
		goto done;
	default:
		reason = endpoint_of(skb) ? PAL_DROP_MALFORMED : PAL_DROP_NO_ENDPOINT;
		goto done;
	}
	if (pkt.icmp_error) {
		reason = icmp_error(skb, dir, &pkt);
		goto done;
	}
	/* A later fragment has no ports: it is judged as its first fragment's
	 * connection, or dropped when no first fragment passed here. */
	if (pkt.fragment && !fragment_ports(skb, &pkt)) {
		reason = endpoint_of(skb) ? PAL_DROP_FRAGMENT : PAL_DROP_NO_ENDPOINT;
		goto done;
	}

	if (dir == PAL_DIR_EGRESS) {
		struct lb4_key frontend;
		struct lb4_service *svc = frontend_of(&pkt, &frontend);
		struct nat4 to = { .addr = pkt.daddr, .port = pkt.dport }; /* where the packet now goes */

		reason = svc ? to_service(skb, &pkt, &frontend, svc, &out, &to) : PAL_LB_HAIRPIN;
		if (reason == PAL_LB_HAIRPIN) {
			out.service = 0;
			reason = decide(skb, dir, &pkt, &none, &got, &out);
		}
		/* What the policy let out of the pod, as it now goes, may be a DNS
		 * query for the node's proxy. */
		if (!PAL_REASON_IS_DROP(reason) && to.port == PAL_DNS_PORT) {
			__u32 redirect = dns_redirect(skb, &pkt, to.addr, to.port);

			if (redirect == PAL_PASS_DNS_REDIRECT) {
				out.dns = 1;
			} else if (redirect) {
				reason = redirect;
				out.rule = 0; /* no rule dropped it */
			}
		}
	} else {
		/* The DNS proxy's answer comes back from the upstream the pod
		 * asked, before conntrack sees it; then a reply of a Service
		 * connection, from the backend, back from the frontend the pod
		 * addressed. `pkt` is the packet as translated until the source
		 * it arrived with is put back below (a copy of it took pal_to_pod's
		 * stack, with its global functions', past 512 bytes). */
		__u32 arrived_saddr = pkt.saddr;
		__u16 arrived_sport = pkt.sport;

		reason = from_dns_proxy(&pkt) ? dns_reverse(skb, &pkt) : 0;
		if (!reason) {
			reason = decide(skb, dir, &pkt, &none, &got, &out);
			if (got.kind == PAL_NAT_REVERSE && !PAL_REASON_IS_DROP(reason)) {
				out.service = 1;
				out.nat_addr = got.addr;
				out.nat_port = got.port;
				if (!pal_nat4(skb, &pkt, false, got.addr, got.port))
					reason = PAL_DROP_NAT;
			}
		}
		pkt.saddr = arrived_saddr;
		pkt.sport = arrived_sport;
	}
	/* Later fragments find the first one's ports under the addresses they
	 * carry themselves: recorded as the packet arrived, untranslated. */
	if (pkt.first_fragment)
		remember_fragment(skb, &pkt, PAL_REASON_IS_DROP(reason) ? TC_ACT_SHOT : TC_ACT_OK);
done:
	report(skb, dir, &pkt, reason, &out);
	return verdict(skb, out.dns ? PAL_PASS_DNS_REDIRECT : reason);
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

/* The END event of a connection collected idle (one that closed reported
 * its end at its FIN or RST; a SERVICE entry is reported by its REVERSE
 * twin, a DNS entry by the entry of the connection to its upstream). Written just before the delete, which may still fail: the entry
 * is idle, so at worst its end is reported twice. A global function, so
 * that the verifier checks it once rather than in each of pal_ct_forget's
 * iterations. */
__noinline int report_idle(const struct ct4_key *key, const struct ct_value *v)
{
	if (!key || !v)
		return 0;
	struct endpoint_info *ep = bpf_map_lookup_elem(&pal_endpoints, &v->ifindex);
	struct outcome o = { .rule = v->rule_id };
	struct flow_event e = {
		.time_ns = bpf_ktime_get_boot_ns(),
		.packets = v->packets,
		.bytes = v->bytes,
		.ifindex = v->ifindex,
		.rule_id = v->rule_id,
		.protocol = key->protocol,
		.type = PAL_FLOW_END,
		.flags = PAL_FLOWF_IDLE,
	};
	__u32 own = ep ? ep->identity : 0, peer_id = pal_peer_identity(key->peer_addr);
	bool in = v->origin == PAL_DIR_INGRESS;

	outcome_tuple(&o, key, v->origin);
	e.direction = v->origin;
	e.saddr = o.saddr;
	e.daddr = o.daddr;
	e.sport = o.sport;
	e.dport = o.dport;
	e.src_identity = in ? peer_id : own;
	e.dst_identity = in ? own : peer_id;
	if (v->nat == PAL_NAT_REVERSE) {
		e.flags |= PAL_FLOWF_SERVICE;
		e.nat_addr = v->nat_addr;
		e.nat_port = v->nat_port;
	}
	flow_emit(&e);
	return 0;
}

/* The agent's garbage collector deletes idle pal_ct4 entries through this
 * program (BPF_PROG_TEST_RUN; never attached), so that pal_ct_budget counts
 * exactly what the table holds. Input: an Ethernet header's 14 bytes
 * (ignored), then up to PAL_CT_FORGET_BATCH struct ct_forget records. An
 * entry is deleted only if its last_seen is still the one the agent judged
 * idle: one refreshed meanwhile stays. Returns how many were deleted. */
SEC("tc")
int pal_ct_forget(struct __sk_buff *skb)
{
	struct pal_cursor c = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};
	int deleted = 0;

	if (!pal_pull(&c, sizeof(struct ethhdr)))
		return 0;
	for (int i = 0; i < PAL_CT_FORGET_BATCH; i++) {
		struct ct_forget *r = pal_pull(&c, sizeof(*r));
		struct ct4_key key;
		struct ct_value *v;
		__u32 ifindex;

		if (!r)
			break;
		__builtin_memcpy(&key, &r->key, sizeof(key));
		v = bpf_map_lookup_elem(&pal_ct4, &key);
		if (!v || v->last_seen != r->last_seen)
			continue;
		ifindex = v->ifindex;
		if (pal_flow_events && !v->closing && v->nat != PAL_NAT_SERVICE && v->nat != PAL_NAT_DNS)
			report_idle(&key, v);
		if (bpf_map_delete_elem(&pal_ct4, &key))
			continue;
		ct_release(ifindex);
		deleted++;
	}
	return deleted;
}

/* The kernel's jiffies (low 32 bits), the clock of ct_value.last_seen, for
 * user space, which has no call for it: run with BPF_PROG_TEST_RUN by the
 * agent's conntrack garbage collector and the tests; never attached. The
 * whole 64-bit jiffies, the clock of the DNS proxy's lease (dns.h), are
 * written into the first 8 bytes of the packet (host byte order), which
 * test_run hands back. */
SEC("tc")
int pal_clock(struct __sk_buff *skb)
{
	__u64 now = bpf_jiffies64();

	bpf_skb_store_bytes(skb, 0, &now, sizeof(now), 0);
	return (__u32)now;
}

char LICENSE[] SEC("license") = "Apache-2.0";
