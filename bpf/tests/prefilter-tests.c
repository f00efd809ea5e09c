/*
 * palisade-prefilter-tests: unit tests of bpf/prefilter.bpf.c (the XDP
 * prefilter, docs/adr/0013-xdp-prefilter.md), run in the kernel with
 * BPF_PROG_TEST_RUN. Needs root (CAP_BPF + CAP_NET_ADMIN).
 *
 *   build/bin/palisade-prefilter-tests [OBJECT]
 *
 * OBJECT defaults to ../bpf/prefilter.bpf.o beside the binary. It is loaded
 * with pinning switched off, so no map is shared with a running agent and
 * nothing outlives the process.
 *
 * Each fixture empties every map, seeds the common world below (the
 * prefixes the agent would write for `10.0.0.0/8 except 10.1.0.0/16` and
 * `203.0.113.0/24`, two endpoints, the ipcache), then its own state, and
 * runs its steps: a frame through pal_prefilter, checked for the verdict
 * (XDP_DROP or XDP_PASS), for what pal_metrics counted (DROP_PREFILTER's
 * packets and bytes, and nothing else), and for the flow event it wrote.
 * XDP test_run runs the program on the loopback device's first receive
 * queue: ingress_ifindex is 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "conntrack.h"
#include "flows.h"
#include "frag.h"
#include "ipcache.h"
#include "metrics.h"
#include "prefilter.h"
#include "reasons.h"

#define POD          "172.20.1.5"  /* an endpoint of this node, veth ifindex 41 */
#define POD_IFINDEX  41
#define POD2         "172.20.1.6"
#define POD2_IFINDEX 42
#define NODE         "172.30.0.11" /* the node's own address: never a prefilter destination */
#define OTHER_POD    "172.20.2.9"  /* a pod of another node: in pal_ipcache4 */
#define LEARNED      "192.0.2.77"  /* an address in the LPM ipcache (not world) */
#define DENIED       "10.3.4.5"    /* in 10.0.0.0/8, outside its except */
#define EXCEPTED     "10.1.2.3"    /* in the except 10.1.0.0/16 */
#define DOC_DENIED   "203.0.113.9"
#define STRANGER     "198.51.100.1" /* in no prefix, in no ipcache map: world */
#define RULE_8       1001
#define RULE_DOC     1002
#define RULE_WORLD   1003
#define ID_POD       300
#define ID_OTHER     400

/* ---- frames -------------------------------------------------------------- */

struct frame {
	__u8 data[128];
	__u32 len;
};

enum { L4_UDP, L4_TCP, L4_ICMP };

struct spec {
	const char *src, *dst;
	int l4;
	__u16 sport, dport;
	__u8 tcp_flags;          /* TCP */
	__u8 icmp_type;          /* ICMP */
	__u16 frag_off;          /* host order: MF (0x2000) and offset */
	__u16 id;
	__u16 ethertype;         /* 0: IPv4 */
	__u8 ihl;                /* 0: 5 */
	__u32 cut;               /* bytes cut off the end */
};

static __u32 addr(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "bad address %s\n", s);
		exit(2);
	}
	return a.s_addr;
}

static struct frame build(const struct spec *s)
{
	struct frame f = { 0 };
	__u8 *ip = f.data + 14, *l4;
	__u32 l4len = s->l4 == L4_TCP ? 20 : 8, ihl = s->ihl ? s->ihl : 5;
	__u16 ethertype = s->ethertype ? s->ethertype : 0x0800;
	__u32 saddr = addr(s->src), daddr = addr(s->dst);

	f.data[12] = ethertype >> 8;
	f.data[13] = ethertype & 0xff;
	ip[0] = 0x40 | (ihl & 0xf);
	l4 = ip + (ihl < 5 ? 5 : ihl) * 4;
	f.len = (__u32)(l4 - f.data) + l4len;
	ip[2] = (f.len - 14) >> 8;
	ip[3] = (f.len - 14) & 0xff;
	ip[4] = s->id >> 8;
	ip[5] = s->id & 0xff;
	ip[6] = s->frag_off >> 8;
	ip[7] = s->frag_off & 0xff;
	ip[8] = 64;
	ip[9] = s->l4 == L4_TCP ? IPPROTO_TCP : s->l4 == L4_UDP ? IPPROTO_UDP : IPPROTO_ICMP;
	memcpy(ip + 12, &saddr, 4);
	memcpy(ip + 16, &daddr, 4);
	if (s->l4 == L4_ICMP) {
		l4[0] = s->icmp_type;
	} else {
		l4[0] = s->sport >> 8;
		l4[1] = s->sport & 0xff;
		l4[2] = s->dport >> 8;
		l4[3] = s->dport & 0xff;
		if (s->l4 == L4_TCP) {
			l4[12] = 0x50;
			l4[13] = s->tcp_flags;
		}
	}
	f.len -= s->cut;
	return f;
}

/* ---- the object and its maps ------------------------------------------- */

static struct bpf_object *obj;
static int prog, m_prefilter4, m_dst4, m_config, m_frag4, m_budget, m_ct4, m_ipcache4, m_ipcache, m_metrics, m_drop_agg;
static struct ring_buffer *flows;
static int ncpus;

#define MAX_EVENTS 256
static struct flow_event events[MAX_EVENTS];
static int n_events;

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size == sizeof(struct flow_event) && n_events < MAX_EVENTS)
		memcpy(&events[n_events], data, size);
	n_events++;
	return 0;
}

static int map_fd(const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	return m ? bpf_map__fd(m) : -1;
}

static void clear(int fd, __u32 key_size)
{
	__u8 key[64], next[64];

	while (bpf_map_get_next_key(fd, NULL, next) == 0) {
		memcpy(key, next, key_size);
		if (bpf_map_delete_elem(fd, key))
			break;
	}
}

static void zero_percpu(int fd, __u32 entries, __u32 value_size)
{
	size_t len = (size_t)ncpus * ((value_size + 7) & ~7u);
	__u8 *zero = calloc(1, len);

	for (__u32 k = 0; k < entries; k++)
		bpf_map_update_elem(fd, &k, zero, BPF_ANY);
	free(zero);
}

static void put_prefix(const char *cidr, __u32 rule)
{
	char text[32];
	struct prefilter4_key k = { 0 };
	struct prefilter_value v = { .rule_id = rule };
	char *slash;

	snprintf(text, sizeof(text), "%s", cidr);
	slash = strchr(text, '/');
	*slash = '\0';
	k.prefixlen = atoi(slash + 1);
	k.addr = addr(text);
	bpf_map_update_elem(m_prefilter4, &k, &v, BPF_ANY);
}

static void put_dst(const char *ip, __u32 ifindex)
{
	__u32 a = addr(ip);
	struct prefilter_dst v = { .ifindex = ifindex };

	bpf_map_update_elem(m_dst4, &a, &v, BPF_ANY);
}

static void put_config(__u32 flags, __u32 world_rule)
{
	__u32 zero = 0;
	struct prefilter_config c = { .flags = flags, .world_rule = world_rule };

	bpf_map_update_elem(m_config, &zero, &c, BPF_ANY);
}

static void put_identity(const char *ip, __u32 identity)
{
	__u32 a = addr(ip);
	struct ipcache_value v = { .identity = identity };

	bpf_map_update_elem(m_ipcache4, &a, &v, BPF_ANY);
}

/* A pal_ct4 entry of an endpoint's connection: own address and port first. */
static void put_ct(const char *own, __u16 port, const char *peer, __u16 peer_port, __u8 protocol)
{
	struct ct4_key k = { .addr = addr(own), .peer_addr = addr(peer), .port = port, .peer_port = peer_port, .protocol = protocol };
	struct ct_value v = { .revision = 1, .origin = 1, .ifindex = POD_IFINDEX };

	bpf_map_update_elem(m_ct4, &k, &v, BPF_ANY);
}

/* The common world. */
static void reset(void)
{
	struct ipcache_key lk = { .prefixlen = PAL_IPCACHE_V4_FULL, .family = PAL_AF_INET };
	struct ipcache_value lv = { .identity = (1u << 30) | 7 };
	__u32 learned = addr(LEARNED);

	clear(m_prefilter4, sizeof(struct prefilter4_key));
	clear(m_dst4, 4);
	clear(m_frag4, sizeof(struct frag4_key));
	clear(m_ct4, sizeof(struct ct4_key));
	clear(m_ipcache4, 4);
	clear(m_ipcache, sizeof(struct ipcache_key));
	clear(m_drop_agg, sizeof(struct drop_agg_key));
	zero_percpu(m_metrics, PAL_METRICS_MAX, sizeof(struct metrics_value));
	zero_percpu(m_budget, 1, sizeof(struct prefilter_budget));
	/* 10.0.0.0/8 except 10.1.0.0/16, as policy/prefilter.ts cuts it; and 203.0.113.0/24. */
	put_prefix("10.0.0.0/16", RULE_8);
	put_prefix("10.2.0.0/15", RULE_8);
	put_prefix("10.4.0.0/14", RULE_8);
	put_prefix("10.8.0.0/13", RULE_8);
	put_prefix("10.16.0.0/12", RULE_8);
	put_prefix("10.32.0.0/11", RULE_8);
	put_prefix("10.64.0.0/10", RULE_8);
	put_prefix("10.128.0.0/9", RULE_8);
	put_prefix("203.0.113.0/24", RULE_DOC);
	put_dst(POD, POD_IFINDEX);
	put_dst(POD2, POD2_IFINDEX);
	put_config(PAL_PREFILTER_ACTIVE, 0);
	put_identity(POD, ID_POD);
	put_identity(OTHER_POD, ID_OTHER);
	put_identity(NODE, PAL_ID_HOST);
	memcpy(lk.addr, &learned, 4);
	bpf_map_update_elem(m_ipcache, &lk, &lv, BPF_ANY);
	ring_buffer__consume(flows);
	n_events = 0;
}

/* pal_metrics[reason], summed over the CPUs. */
static struct metrics_value counted(__u32 reason)
{
	struct metrics_value total = { 0 }, *per = calloc(ncpus, sizeof(*per));

	if (bpf_map_lookup_elem(m_metrics, &reason, per) == 0)
		for (int i = 0; i < ncpus; i++) {
			total.packets += per[i].packets;
			total.bytes += per[i].bytes;
		}
	free(per);
	return total;
}

/* ---- steps ----------------------------------------------------------------- */

static int failures, checks;
static const char *fixture;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			printf("FAIL %s: ", fixture);                        \
			printf(__VA_ARGS__);                                 \
			printf("\n");                                        \
		}                                                            \
	} while (0)

/* Runs a frame; checks the verdict and that only DROP_PREFILTER counted, once when dropped. */
static void expect(const struct spec *s, int verdict, const char *what)
{
	struct frame f = build(s);
	__u8 out[256];
	struct metrics_value before = counted(PAL_DROP_PREFILTER), after;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.data, .data_size_in = f.len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	int err = bpf_prog_test_run_opts(prog, &o);

	CHECK(err == 0, "%s: test_run: %s", what, strerror(-err));
	CHECK(o.retval == (__u32)verdict, "%s: verdict %s, expected %s", what, o.retval == XDP_DROP ? "DROP" : o.retval == XDP_PASS ? "PASS" : "?",
	      verdict == XDP_DROP ? "DROP" : "PASS");
	after = counted(PAL_DROP_PREFILTER);
	if (verdict == XDP_DROP)
		CHECK(after.packets == before.packets + 1 && after.bytes == before.bytes + f.len, "%s: DROP_PREFILTER counted %llu packets, %llu bytes (frame %u bytes)",
		      what, (unsigned long long)(after.packets - before.packets), (unsigned long long)(after.bytes - before.bytes), f.len);
	else
		CHECK(after.packets == before.packets, "%s: a passed frame was counted", what);
	for (__u32 r = 0; r < PAL_METRICS_MAX; r++)
		if (r != PAL_DROP_PREFILTER)
			CHECK(counted(r).packets == 0, "%s: reason %u counted", what, r);
	n_events = 0;
	ring_buffer__consume(flows);
}

#define DROP(...) expect(&(struct spec){ __VA_ARGS__ }, XDP_DROP, #__VA_ARGS__)
#define PASS(...) expect(&(struct spec){ __VA_ARGS__ }, XDP_PASS, #__VA_ARGS__)

/* ---- fixtures -------------------------------------------------------------- */

static void denied_prefix(void)
{
	const struct flow_event *e = &events[0];

	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	CHECK(n_events == 1, "one flow event, got %d", n_events);
	CHECK(e->type == PAL_FLOW_DROP && e->reason == PAL_DROP_PREFILTER && e->rule_id == RULE_8 && e->direction == 0, "event type %u reason %u rule %u direction %u",
	      e->type, e->reason, e->rule_id, e->direction);
	CHECK(e->ifindex == POD_IFINDEX && e->saddr == addr(DENIED) && e->daddr == addr(POD) && e->sport == 4000 && e->dport == 53 && e->protocol == IPPROTO_UDP,
	      "event names ifindex %u, %x -> %x, ports %u -> %u", e->ifindex, e->saddr, e->daddr, e->sport, e->dport);
	CHECK(e->src_identity == PAL_ID_WORLD && e->dst_identity == ID_POD && e->packets == 1 && (e->flags & PAL_FLOWF_RUNNING_TOTAL),
	      "identities %u -> %u, packets %llu, flags %u", e->src_identity, e->dst_identity, (unsigned long long)e->packets, e->flags);
	/* The same key within the window: counted in pal_drop_agg, no event. */
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4001, .dport = 53);
	CHECK(n_events == 0, "a second drop of the key wrote %d events", n_events);
	DROP(.src = DOC_DENIED, .dst = POD2, .l4 = L4_TCP, .sport = 4000, .dport = 443, .tcp_flags = 0x02);
	CHECK(n_events == 1 && events[0].rule_id == RULE_DOC && events[0].ifindex == POD2_IFINDEX && events[0].tcp_flags == 0x02, "the other prefix's rule and pod");
	DROP(.src = "10.255.255.255", .dst = POD, .l4 = L4_UDP, .sport = 1, .dport = 1);
	DROP(.src = "10.0.0.0", .dst = POD, .l4 = L4_UDP, .sport = 1, .dport = 1);
}

static void not_to_a_pod(void)
{
	PASS(.src = DENIED, .dst = NODE, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = DENIED, .dst = NODE, .l4 = L4_TCP, .sport = 4000, .dport = 10250, .tcp_flags = 0x02);
	PASS(.src = DENIED, .dst = OTHER_POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = DENIED, .dst = "8.8.8.8", .l4 = L4_UDP, .sport = 4000, .dport = 53);
	CHECK(n_events == 0, "no event");
}

static void not_denied(void)
{
	PASS(.src = EXCEPTED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = "10.1.0.0", .dst = POD, .l4 = L4_TCP, .sport = 4000, .dport = 80, .tcp_flags = 0x02);
	PASS(.src = "10.1.255.255", .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = "11.0.0.1", .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = STRANGER, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53); /* world, but no WORLD flag */
}

static void world(void)
{
	put_config(PAL_PREFILTER_ACTIVE | PAL_PREFILTER_WORLD, RULE_WORLD);
	DROP(.src = STRANGER, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	CHECK(n_events == 1 && events[0].rule_id == RULE_WORLD && events[0].src_identity == PAL_ID_WORLD, "world's rule named");
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	CHECK(n_events == 1 && events[0].rule_id == RULE_8, "a prefix's rule before world's");
	PASS(.src = OTHER_POD, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = NODE, .dst = POD, .l4 = L4_TCP, .sport = 4000, .dport = 80, .tcp_flags = 0x02);
	PASS(.src = LEARNED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	PASS(.src = STRANGER, .dst = NODE, .l4 = L4_UDP, .sport = 4000, .dport = 53);
}

static void inactive(void)
{
	put_config(0, 0);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
	put_config(PAL_PREFILTER_WORLD, RULE_WORLD);
	PASS(.src = STRANGER, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
}

static void replies(void)
{
	/* Connections the pod opened to denied peers: their replies are tc's (ALLOW_REPLY). */
	put_ct(POD, 5000, DENIED, 53, IPPROTO_UDP);
	put_ct(POD, 5001, DOC_DENIED, 443, IPPROTO_TCP);
	put_ct(POD, 0, DOC_DENIED, 0, IPPROTO_ICMP);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 53, .dport = 5000);
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 53, .dport = 5002);
	PASS(.src = DOC_DENIED, .dst = POD, .l4 = L4_TCP, .sport = 443, .dport = 5001, .tcp_flags = 0x12); /* SYN-ACK */
	PASS(.src = DOC_DENIED, .dst = POD, .l4 = L4_TCP, .sport = 443, .dport = 5001, .tcp_flags = 0x10);
	DROP(.src = DOC_DENIED, .dst = POD, .l4 = L4_TCP, .sport = 443, .dport = 5002, .tcp_flags = 0x10);
	/* A SYN is a new connection at tc whatever conntrack holds. */
	DROP(.src = DOC_DENIED, .dst = POD, .l4 = L4_TCP, .sport = 443, .dport = 5001, .tcp_flags = 0x02);
	/* Echo: the reply matches the request's entry (ports 0); a request from the peer is new. */
	PASS(.src = DOC_DENIED, .dst = POD, .l4 = L4_ICMP, .icmp_type = 0);
	DROP(.src = DENIED, .dst = POD, .l4 = L4_ICMP, .icmp_type = 8);
	/* ICMP errors are judged by the connection they quote, at tc. */
	PASS(.src = DENIED, .dst = POD, .l4 = L4_ICMP, .icmp_type = 3);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_ICMP, .icmp_type = 11);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_ICMP, .icmp_type = 12);
}

static void fragments(void)
{
	put_ct(POD, 5000, DENIED, 53, IPPROTO_UDP);
	/* A reply's first fragment passes and is recorded; its later fragments follow it. */
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 53, .dport = 5000, .id = 7, .frag_off = 0x2000);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .id = 7, .frag_off = 0x2000 | 185);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .id = 7, .frag_off = 370);
	/* Another datagram's, or the first fragment of a new connection's. */
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .id = 8, .frag_off = 185);
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 53, .dport = 5009, .id = 9, .frag_off = 0x2000);
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .id = 9, .frag_off = 185);
	/* The record is per datagram: same id from another source. */
	DROP(.src = "10.3.4.6", .dst = POD, .l4 = L4_UDP, .id = 7, .frag_off = 185);
	/* An excepted source's fragments are never the prefilter's. */
	PASS(.src = EXCEPTED, .dst = POD, .l4 = L4_UDP, .id = 10, .frag_off = 185);
}

static void unreadable(void)
{
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .ethertype = 0x86dd);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .ethertype = 0x8100);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .ethertype = 0x0806);
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .cut = 3);     /* UDP header cut */
	PASS(.src = DENIED, .dst = POD, .l4 = L4_TCP, .sport = 4000, .dport = 53, .cut = 10);    /* TCP header cut */
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .ihl = 4);     /* ihl below 5 */
	PASS(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .ihl = 15, .cut = 8); /* options cut */
	PASS(.src = DENIED, .dst = POD, .l4 = L4_ICMP, .icmp_type = 8, .cut = 4);               /* ICMP header cut */
	/* Options read past: dropped. */
	DROP(.src = DENIED, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53, .ihl = 7);
}

static void event_budget(void)
{
	int written = 0;
	char src[32];

	/* Drops from many sources: PAL_PREFILTER_EVENTS events per CPU per window, the rest in pal_metrics only. */
	for (int i = 0; i < PAL_PREFILTER_EVENTS + 40; i++) {
		snprintf(src, sizeof(src), "10.3.%d.%d", i / 200, i % 200 + 1);
		DROP(.src = src, .dst = POD, .l4 = L4_UDP, .sport = 4000, .dport = 53);
		written += n_events;
	}
	/* The test runs on one CPU unless it migrates meanwhile: at most two CPUs' budgets. */
	CHECK(written >= PAL_PREFILTER_EVENTS && written <= 2 * PAL_PREFILTER_EVENTS, "%d events for %d drops from distinct sources", written, PAL_PREFILTER_EVENTS + 40);
	CHECK(counted(PAL_DROP_PREFILTER).packets == PAL_PREFILTER_EVENTS + 40, "every drop counted");
}

static const struct {
	const char *name;
	void (*run)(void);
} fixtures[] = {
	{ "a denied prefix to a pod: dropped, counted, one event per key and window naming the pod's veth and the rule", denied_prefix },
	{ "to the node itself, a pod of another node, or elsewhere: passed", not_to_a_pod },
	{ "from an excepted address, or an address in no prefix without WORLD: passed", not_denied },
	{ "WORLD: a source in neither ipcache map dropped under world's rule; pods, nodes, learned addresses passed", world },
	{ "not ACTIVE: everything passed", inactive },
	{ "replies of the pod's connections passed (conntrack), new connections and SYNs dropped, ICMP errors passed", replies },
	{ "fragments: a reply's later fragments follow its first, others dropped", fragments },
	{ "frames the prefilter cannot read are tc's: passed", unreadable },
	{ "flow events within the per-CPU budget", event_budget },
};

int main(int argc, char **argv)
{
	char path[PATH_MAX], self[PATH_MAX];
	struct bpf_map *m;
	ssize_t n;

	if (argc > 1) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return 2;
		self[n] = '\0';
		snprintf(path, sizeof(path), "%s/../bpf/prefilter.bpf.o", dirname(self));
	}
	ncpus = libbpf_num_possible_cpus();
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 2;
	}
	bpf_object__for_each_map(m, obj)
		bpf_map__set_pin_path(m, NULL);
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "pal_flows"), 1 << 20);
	if (bpf_object__load(obj)) {
		fprintf(stderr, "load %s: %s\n", path, strerror(errno));
		return 2;
	}
	prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "pal_prefilter"));
	m_prefilter4 = map_fd("pal_prefilter4");
	m_dst4 = map_fd("pal_prefilter_dst4");
	m_config = map_fd("pal_prefilter_config");
	m_frag4 = map_fd("pal_prefilter_frag4");
	m_budget = map_fd("pal_prefilter_budget");
	m_ct4 = map_fd("pal_ct4");
	m_ipcache4 = map_fd("pal_ipcache4");
	m_ipcache = map_fd("pal_ipcache");
	m_metrics = map_fd("pal_metrics");
	m_drop_agg = map_fd("pal_drop_agg");
	flows = ring_buffer__new(map_fd("pal_flows"), on_event, NULL, NULL);
	if (prog < 0 || !flows) {
		fprintf(stderr, "%s: no pal_prefilter or pal_flows\n", path);
		return 2;
	}
	int passed = 0;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		int before = failures;

		fixture = fixtures[i].name;
		reset();
		fixtures[i].run();
		printf("%s %s\n", failures == before ? "ok  " : "FAIL", fixture);
		passed += failures == before;
	}
	printf("%d passed, %zu failed (%d checks)\n", passed, sizeof(fixtures) / sizeof(fixtures[0]) - passed, checks);
	ring_buffer__free(flows);
	bpf_object__close(obj);
	return failures ? 1 : 0;
}
