/* pal_prefilter: Palisade's XDP prefilter (docs/adr/0013-xdp-prefilter.md),
 * attached to each uplink of the node. It drops, before the kernel builds a
 * socket buffer, IPv4 frames that the tc programs would drop anyway because
 * a cluster-wide deny rule covering every pod denies their source on every
 * port and protocol (pal_prefilter4, or `world` with PAL_PREFILTER_WORLD),
 * and lets everything else through: the tc programs at the pods' veths
 * still judge every frame it passes, and enforce everything without it.
 *
 * A frame is dropped only when all of these hold:
 *   - it is IPv4 in an untagged Ethernet frame whose headers are whole;
 *   - its destination is one of this node's endpoints (pal_prefilter_dst4);
 *   - its source is in pal_prefilter4, or (WORLD) in neither ipcache map;
 *   - it would open a new connection at the pod's to-pod hook: a TCP SYN
 *     (always judged as new there), or a packet whose connection has no
 *     pal_ct4 entry (a reply of a connection the pod opened passes, as it
 *     would at tc: ALLOW_REPLY); a later fragment takes its first
 *     fragment's ports from pal_prefilter_frag4, recorded when that one
 *     passed; without a record it is dropped (tc: DROP_FRAGMENT);
 *   - it is not an ICMP error (tc judges those by the connection they
 *     quote).
 * Everything unreadable (short, tagged, not IPv4, options cut) passes: tc
 * decides. Drops count in pal_metrics under DROP_PREFILTER and are reported
 * as flow events like the tc programs' drops (pal_drop_agg), naming the
 * endpoint's veth and the deny rule, within a per-CPU event budget.
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "conntrack.h"
#include "flows.h"
#include "frag.h"
#include "ipcache.h"
#include "metrics.h"
#include "parse.h"
#include "prefilter.h"
#include "reasons.h"

/* policy.h PAL_DIR_INGRESS: the direction of the pods' to-pod hook (not
 * included: its maps are none of the prefilter's). */
#define PF_DIR_INGRESS 0

/* What the prefilter reads of a frame. */
struct pf_pkt {
	__u32 saddr;    /* network byte order */
	__u32 daddr;
	__u16 sport;    /* host byte order; 0 without ports */
	__u16 dport;
	__u16 ipid;     /* network byte order */
	__u8 protocol;
	__u8 tcp_flags;
	__u8 fragment;  /* a non-first fragment */
	__u8 first_fragment;
};

/* Whether every pod of the node denies the source; *rule: the deny rule. */
static __always_inline bool denied_source(const struct prefilter_config *cfg, __u32 saddr, __u32 *rule)
{
	struct prefilter4_key k = { .prefixlen = 32, .addr = saddr };
	struct prefilter_value *v = bpf_map_lookup_elem(&pal_prefilter4, &k);

	if (v) {
		*rule = v->rule_id;
		return true;
	}
	if (!(cfg->flags & PAL_PREFILTER_WORLD) || pal_peer_identity(saddr) != PAL_ID_WORLD)
		return false;
	*rule = cfg->world_rule;
	return true;
}

/* The drop's flow event (flows.h), as the tc programs report theirs: a key
 * that wrote its event within the window only counts; a new event takes
 * one of the CPU's PAL_PREFILTER_EVENTS per window, and without one the
 * drop is in pal_metrics only. */
static __always_inline void report(const struct pf_pkt *p, __u32 ifindex, __u32 rule, __u64 len)
{
	struct prefilter_budget *b;
	struct ipcache_value *dst;
	struct flow_event e;
	__u32 zero = 0, daddr = p->daddr;
	__u64 now;

	if (!pal_flow_events)
		return;
	if (flow_drop_counted(ifindex, p->saddr, p->dport, p->protocol, PAL_DROP_PREFILTER, PF_DIR_INGRESS))
		return;
	b = bpf_map_lookup_elem(&pal_prefilter_budget, &zero);
	if (!b)
		return;
	now = bpf_ktime_get_coarse_ns();
	if (now - b->window_start >= PAL_FLOW_DROP_WINDOW_NS) {
		b->window_start = now;
		b->events = 0;
	}
	if (b->events >= PAL_PREFILTER_EVENTS)
		return;
	b->events++;
	__builtin_memset(&e, 0, sizeof(e));
	e.time_ns = bpf_ktime_get_boot_ns();
	e.packets = 1;
	e.bytes = len;
	e.ifindex = ifindex;
	e.saddr = p->saddr;
	e.daddr = p->daddr;
	e.sport = p->sport;
	e.dport = p->dport;
	e.src_identity = pal_peer_identity(p->saddr);
	dst = bpf_map_lookup_elem(&pal_ipcache4, &daddr);
	e.dst_identity = dst ? dst->identity : 0;
	e.rule_id = rule;
	e.protocol = p->protocol;
	e.direction = PF_DIR_INGRESS;
	e.type = PAL_FLOW_DROP;
	e.reason = PAL_DROP_PREFILTER;
	e.tcp_flags = p->tcp_flags;
	flow_drop(&e, p->saddr);
}

static __always_inline int drop(const struct pf_pkt *p, __u32 ifindex, __u32 rule, __u64 len)
{
	__u32 reason = PAL_DROP_PREFILTER;
	struct metrics_value *m = bpf_map_lookup_elem(&pal_metrics, &reason);

	if (m) {
		m->packets++;
		m->bytes += len;
	}
	report(p, ifindex, rule, len);
	return XDP_DROP;
}

SEC("xdp")
int pal_prefilter(struct xdp_md *ctx)
{
	struct pal_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	__u64 len = ctx->data_end - ctx->data;
	struct prefilter_config *cfg;
	struct prefilter_dst *dst;
	struct pf_pkt p = { 0 };
	struct ethhdr *eth;
	struct iphdr *ip;
	struct ct4_key key;
	__u32 zero = 0, rule = 0, ifindex, daddr;

	cfg = bpf_map_lookup_elem(&pal_prefilter_config, &zero);
	if (!cfg || !(cfg->flags & PAL_PREFILTER_ACTIVE))
		return XDP_PASS;
	eth = pal_pull(&c, sizeof(*eth));
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = pal_pull(&c, sizeof(*ip));
	if (!ip || ip->version != 4 || ip->ihl < 5 || !pal_pull(&c, (ip->ihl - 5) * 4))
		return XDP_PASS;
	daddr = ip->daddr;
	dst = bpf_map_lookup_elem(&pal_prefilter_dst4, &daddr);
	if (!dst)
		return XDP_PASS;
	ifindex = dst->ifindex;
	if (!denied_source(cfg, ip->saddr, &rule))
		return XDP_PASS;

	p.saddr = ip->saddr;
	p.daddr = ip->daddr;
	p.protocol = ip->protocol;
	p.ipid = ip->id;
	p.fragment = (ip->frag_off & bpf_htons(PAL_IP_OFFSET)) != 0;
	p.first_fragment = (ip->frag_off & bpf_htons(PAL_IP_OFFSET | PAL_IP_MF)) == bpf_htons(PAL_IP_MF);
	if (p.fragment) {
		/* No ports: its first fragment's, when that one passed here. */
		struct frag4_key fk = {
			.saddr = p.saddr, .daddr = p.daddr, .ifindex = ctx->ingress_ifindex,
			.id = p.ipid, .protocol = p.protocol,
		};
		struct frag4_value *rec = bpf_map_lookup_elem(&pal_prefilter_frag4, &fk);

		if (!rec)
			return drop(&p, ifindex, rule, len);
		p.sport = rec->sport;
		p.dport = rec->dport;
	} else {
		switch (p.protocol) {
		case IPPROTO_TCP: {
			struct tcphdr *tcp = pal_pull(&c, sizeof(*tcp));

			if (!tcp)
				return XDP_PASS;
			p.sport = bpf_ntohs(tcp->source);
			p.dport = bpf_ntohs(tcp->dest);
			p.tcp_flags = ((__u8 *)tcp)[13];
			/* A SYN is judged as a new connection whatever conntrack holds. */
			if (tcp->syn && !tcp->ack)
				return drop(&p, ifindex, rule, len);
			break;
		}
		case IPPROTO_UDP:
		case IPPROTO_SCTP: {
			struct pal_ports *ports = pal_pull(&c, p.protocol == IPPROTO_UDP ? sizeof(struct udphdr)
										  : sizeof(struct pal_sctphdr));

			if (!ports)
				return XDP_PASS;
			p.sport = bpf_ntohs(ports->source);
			p.dport = bpf_ntohs(ports->dest);
			break;
		}
		case IPPROTO_ICMP: {
			struct pal_icmphdr *icmp = pal_pull(&c, sizeof(*icmp));

			/* An ICMP error is judged by the connection it quotes: tc's. */
			if (!icmp || icmp->type == 3 || icmp->type == 11 || icmp->type == 12)
				return XDP_PASS;
			break;
		}
		}
	}

	/* The connection as the pod's to-pod hook keys it (endpoint.bpf.c
	 * ct_key_of): a reply of one the pod opened, or one tc still has to
	 * judge again (a stale or revoked entry), is tc's to decide. */
	key.addr = p.daddr;
	key.peer_addr = p.saddr;
	key.port = p.dport;
	key.peer_port = p.sport;
	key.protocol = p.protocol;
	key.pad[0] = key.pad[1] = key.pad[2] = 0;
	if (bpf_map_lookup_elem(&pal_ct4, &key)) {
		if (p.first_fragment) {
			struct frag4_key fk = {
				.saddr = p.saddr, .daddr = p.daddr, .ifindex = ctx->ingress_ifindex,
				.id = p.ipid, .protocol = p.protocol,
			};
			struct frag4_value v = { .sport = p.sport, .dport = p.dport };

			bpf_map_update_elem(&pal_prefilter_frag4, &fk, &v, BPF_ANY);
		}
		return XDP_PASS;
	}
	return drop(&p, ifindex, rule, len);
}

char LICENSE[] SEC("license") = "Apache-2.0";
