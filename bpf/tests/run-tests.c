/*
 * palisade-bpf-tests: unit tests of bpf/endpoint.bpf.c, run in the kernel
 * with BPF_PROG_TEST_RUN. Needs root (CAP_BPF + CAP_NET_ADMIN).
 *
 *   build/bin/palisade-bpf-tests [OBJECT]
 *
 * OBJECT defaults to ../bpf/endpoint.bpf.o beside the binary, i.e.
 * build/bpf/endpoint.bpf.o. The object is loaded twice (the default, and
 * with pal_host_reaches_pods = 0) with pinning switched off, so no map is
 * shared with a running agent and nothing outlives the process.
 *
 * Each fixture resets every map, seeds the common world below plus its own
 * endpoint flags and policy entries, then runs its steps: a step either runs
 * a packet through one hook and checks the verdict, the reason counted in
 * pal_metrics (packets and bytes) and the effect on pal_ct4, or changes
 * state between packets the way the agent would (bump the revision, remove
 * the policy). A failing step prints the packet as hex.
 *
 * How test_run meets the endpoint lookup: the kernel runs the program on an
 * skb whose device is the one named by __sk_buff.ifindex in ctx_in when it
 * is > 1 and exists in the caller's network namespace (else -ENODEV), and
 * the loopback device (ifindex 1) when it is 0 or 1. The fixtures pass
 * ifindex 1 and key the endpoint by it, so they need no devices of their own.
 *
 * Fixtures of the DNS proxy's redirect (docs/adr/0012-dns-redirect.md) and
 * of Service translation also seed pal_dns_upstreams, pal_dns_proxy (its
 * lease from the kernel's 64-bit jiffies, which pal_clock writes into its
 * packet) and pal_lb4, and check the packet the program lets out: its
 * addresses and ports, and valid IPv4 and transport checksums.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "config.h"
#include "conntrack.h"
#include "dns.h"
#include "endpoints.h"
#include "flows.h"
#include "ipcache.h"
#include "lb.h"
#include "metrics.h"
#include "policy.h"
#include "reasons.h"

/* ---- the common world, seeded before every fixture ---------------------- */

#define IP4(a, b, c, d) (((__u32)(a) << 24) | ((b) << 16) | ((c) << 8) | (d)) /* host order */

#define EP_IFINDEX  1                 /* loopback: what test_run's skb carries */
#define EP_ID       7
#define POD         IP4(10, 0, 1, 5)  /* the endpoint, identity 300 */
#define PEER        IP4(10, 0, 2, 9)  /* a pod, identity 400, exact in pal_ipcache4 */
#define PEER_ID     400
#define HOST        IP4(10, 0, 0, 1)  /* this node, identity 1 */
#define LPM_PEER    IP4(192, 168, 3, 4) /* only under 192.168.0.0/16 -> 500 */
#define LPM_ID      500
#define NET10_ID    600               /* 10.0.0.0/8 in pal_ipcache: loses to exact entries */
#define WORLD_PEER  IP4(8, 8, 8, 8)   /* in neither ipcache map */
#define CIDR_PEER   IP4(203, 0, 113, 7)
#define REMOTE      IP4(172, 18, 0, 3) /* another node, identity 6 */
#define APISERVER   IP4(172, 18, 0, 10) /* the API server, no node's address: identity 7 */
#define HOST_API    IP4(10, 0, 0, 2)  /* this node's other address, the API server's too: identity 8 */
#define INIT_POD    IP4(10, 0, 2, 10) /* a pod whose identity is not allocated yet: identity 5 */
#define REGION      (PAL_ID_CIDR_BIT | 5)
#define UPSTREAM    PEER              /* the DNS upstream (a kube-dns pod), in pal_dns_upstreams */
#define PROXY       HOST              /* the node's DNS proxy listens on this node's address */
#define PROXY_PORT  5300              /* the proxy port standing in for UPSTREAM */
#define CLUSTER_IP  IP4(10, 96, 0, 10) /* the DNS Service's frontend, UDP 53 -> UPSTREAM:53 */
#define REVISION    1                 /* pal_config.policy_revision at the start */

/* ---- fixture table types ------------------------------------------------- */

#define IN  PAL_DIR_INGRESS
#define OUT PAL_DIR_EGRESS
#define IN_DENY  PAL_DIR_INGRESS_DENY  /* the deny lanes of policy keys (ADR 0010) */
#define OUT_DENY PAL_DIR_EGRESS_DENY
#define ENF_IN  PAL_EP_INGRESS_ENFORCED
#define ENF_OUT PAL_EP_EGRESS_ENFORCED
#define ENF_BOTH (ENF_IN | ENF_OUT)
#define DNS_EP   PAL_EP_DNS_REDIRECT

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* The IPv4 header and first 8 bytes that an ICMP error quotes. */
struct quoted {
	__u8 proto;
	__u32 saddr, daddr; /* host order */
	__u16 sport, dport;
	__u16 frag_off;
};

struct pkt {
	__u16 ethertype;  /* 0: IPv4; ETH_ARP: built from arp_op, saddr (sender) and daddr (target); others: zeros */
	__u16 tags[2];    /* TPIDs of VLAN tags (VID 0) between the MACs and the ethertype, outermost first */
	__u8 proto;
	__u32 saddr, daddr; /* host order */
	__u16 sport, dport;
	__u8 tcp_flags;
	__u8 icmp_type;   /* 8 echo request, 0 echo reply; 3, 11, 12: an error quoting `quoted` */
	__u8 icmp_code;
	__u8 ihl;         /* 0: 5; options (NOPs) fill (ihl - 5) * 4 bytes */
	__u16 frag_off;   /* iphdr.frag_off, host order: MF 0x2000 | offset */
	__u16 ipid;       /* iphdr.id; 0: 0x1234 */
	__u8 arp_op;      /* 1 request, 2 reply */
	__u8 arp_plen;    /* 0: 4 */
	bool csum;        /* a valid TCP/UDP checksum (else 0) */
	struct quoted quoted;
	__u16 len;        /* cut the frame to this many bytes; 0: whole */
};

#define ETH_ARP  0x0806
#define ETH_IPV6 0x86dd
#define TPID_Q   0x8100 /* 802.1Q */
#define TPID_AD  0x88a8 /* 802.1ad (QinQ outer tag) */
#define MF       0x2000

#define TCP(s, sp, d, dp, fl) .proto = IPPROTO_TCP, .saddr = (s), .sport = (sp), \
	.daddr = (d), .dport = (dp), .tcp_flags = (fl)
#define UDP(s, sp, d, dp) .proto = IPPROTO_UDP, .saddr = (s), .sport = (sp), .daddr = (d), .dport = (dp)
#define SCTP(s, sp, d, dp) .proto = IPPROTO_SCTP, .saddr = (s), .sport = (sp), .daddr = (d), .dport = (dp)
#define ICMP(s, d, type) .proto = IPPROTO_ICMP, .saddr = (s), .daddr = (d), .icmp_type = (type)
#define ARP(op, sender, target) .ethertype = ETH_ARP, .arp_op = (op), .saddr = (sender), .daddr = (target)
/* An ICMP error from s to d (type 3 code 4: fragmentation needed) quoting a packet. */
#define ICMP_ERR(s, d, type, code) .proto = IPPROTO_ICMP, .saddr = (s), .daddr = (d), .icmp_type = (type), \
	.icmp_code = (code)
#define QUOTE_UDP(s, sp, d, dp) .quoted = { IPPROTO_UDP, (s), (d), (sp), (dp) }
#define QUOTE_TCP(s, sp, d, dp) .quoted = { IPPROTO_TCP, (s), (d), (sp), (dp) }

/* What a packet step must do to pal_ct4, for the entry of its flow (keyed
 * from the endpoint's side: the same for both directions). Every entry that
 * remains must have the current revision and rule `rule`. */
enum ct_effect {
	CT_NONE,    /* none before, none after, the map's size unchanged */
	CT_CREATED, /* none before; after: origin = the packet's direction, live */
	CT_KEPT,    /* there before and after, same origin, live; last_seen
	             * rewritten only once PAL_CT_REFRESH_JIFFIES old */
	CT_REPLACED,/* there before, written anew: origin = the packet's direction, live */
	CT_REVOKED, /* there before and after, same origin, marked revoked */
};

enum step_kind {
	END,       /* ends the step list */
	FROM_POD,  /* run pal_from_pod */
	TO_POD,    /* run pal_to_pod */
	BUMP,      /* bump policy_revision, as after any agent batch */
	REVOKE,    /* delete every pal_policy entry, then bump the revision */
	CLEAR,     /* delete every pal_policy entry, no bump */
	RESTORE,   /* write the fixture's pal_policy entries again, then bump */
	REHOME,    /* move every pal_ct4 entry to another device's ifindex */
	AGE,       /* move every pal_ct4 entry's last_seen 2 refresh periods into the past */
	FROM_POD_TAGGED, /* pal_from_pod on an skb whose VLAN tag (802.1Q VID 0) is in its metadata */
	TO_POD_TAGGED,   /* pal_to_pod on such an skb */
	OTHER_EP,  /* write OTHER_ENTRIES pal_ct4 entries of another endpoint (ifindex EP_IFINDEX + 1) */
	OTHER_EP_CHECK, /* every entry OTHER_EP wrote is still there, unchanged */
	BUDGET,    /* set pal_ct_budget: `pkt.sport` entries for EP_IFINDEX, `pkt.dport` thousand + `pkt.saddr` node-wide */
	LATER,     /* write the fixture's `later` pal_policy entries, set the endpoint's flags to `later_flags`, bump */
	LEASE_ON,  /* the DNS proxy's lease runs (alive_until a minute of jiffies ahead) */
	LEASE_OFF, /* the DNS proxy's lease has passed (alive_until a jiffy behind) */
	REMAP,     /* UPSTREAM's proxy port becomes PROXY_PORT + 1 */
	MOVE_PROXY,/* the DNS proxy moves to HOST_API (lease running) */
};

/* The flow event a packet step must write (type 0: not checked): exactly
 * one, of this type, with the step's reason, this rule and these of the
 * flags PAL_FLOWF_DEFAULT_DENY, SERVICE and IDLE (flows.h). */
struct expect_event {
	__u8 type;
	__u8 flags;
	__u32 rule;
	__u32 reason;       /* 0: the step's reason (a packet sent to the DNS proxy keeps its decision's) */
};

/* A packet's addresses and ports (host order); all zero: not given. */
struct tuple {
	__u32 saddr, daddr;
	__u16 sport, dport;
};
#define TUPLE(s, sp, d, dp) { (s), (d), (sp), (dp) }

#define OTHER_ENTRIES 40

struct step {
	enum step_kind kind;
	struct pkt pkt;
	__u32 reason;       /* expected; the verdict follows (>= 128: TC_ACT_SHOT) */
	enum ct_effect ct;
	__u32 rule;         /* expected rule_id of the entry that remains */
	bool closing;       /* expected ct_value.closing of the entry that remains */
	__u32 ep_entries, node_entries; /* BUDGET: pal_ct_budget[EP_IFINDEX] and [0] */
	bool quoted_untouched; /* an ICMP error: the entry of the connection it quotes (if any) is left
	                        * exactly as it was (no refresh, no revival, nothing created) */
	struct expect_event ev;
	struct tuple out;   /* the packet the program lets out has these addresses and ports, and valid checksums */
	struct tuple flow;  /* the connection whose entry `ct` is about, when not the packet's own (a translated one) */
	int dns_entries;    /* DNS entries (PAL_NAT_DNS) in pal_ct4 after the step, as DNS_ENTRIES(n) (0: not checked) */
	bool converts;      /* another entry of the pod changes kind (plain -> DNS): the plain entries' count is not checked */
};
#define DNS_ENTRIES(n) ((n) + 1)

struct pol {             /* one pal_policy entry; rule 0 ends the list */
	__u32 class;
	__u8 dir, proto;
	__u16 port;
	__u32 flags;
	__u32 rule;
	__u32 endpoint_id;   /* 0: EP_ID */
};
#define SUMMARY(cls, dir, fl, r) { (cls), (dir), 0, 0, (fl), (r) }
#define PORT(cls, dir, proto, port, r) { (cls), (dir), (proto), (port), 0, (r) }

struct cidr {            /* one pal_policy_cidr entry; region 0 ends the list */
	__u32 addr;
	__u8 plen, dir;
	__u32 region;
};

struct prange {          /* one pal_policy_ports entry (an aligned port block); rule 0 ends the list */
	__u32 class;
	__u8 dir, proto;
	__u16 port;
	__u8 bits;           /* high bits of the port fixed by the prefix */
	__u32 rule;
};

struct fixture {
	const char *desc;
	bool no_endpoint;    /* no pal_endpoints entry for EP_IFINDEX */
	__u32 ep_ifindex;    /* 0: EP_IFINDEX */
	__u32 ep_flags;
	bool host_blocked;   /* use the object loaded with pal_host_reaches_pods = 0 */
	bool small_budget;   /* use the object loaded with pal_ct_endpoint_max = SMALL_BUDGET */
	struct pol pol[6];
	struct cidr cidr[2];
	struct prange ranges[3];
	struct pol later[4];  /* written by a LATER step */
	__u32 later_flags;
	struct { __u32 addr; __u16 proxy_port; } upstreams[2]; /* pal_dns_upstreams; addr 0 ends the list */
	__u32 proxy;         /* pal_dns_proxy.addr */
	bool lease;          /* the proxy's lease runs from the start (else alive_until is 0) */
	struct { __u32 addr; __u16 port; __u8 proto; __u32 backend; __u16 backend_port; } svc; /* one pal_lb4 frontend */
	struct step steps[12];
};

/* ---- the fixtures -------------------------------------------------------- */

static const struct fixture fixtures[] = {
	{
		/* A port range is an aligned prefix in pal_policy_ports: 8192-16383 is 8192/3. */
		.desc = "ingress TCP port inside a range (LPM port prefix): ALLOW_POLICY, rule of the range",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_RANGES, 60) },
		.ranges = { { PEER_ID, IN, IPPROTO_TCP, 8192, 3, 61 } },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 9000, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 61 },
			   { TO_POD, { TCP(PEER, 40001, POD, 16383, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 61 } },
	},
	{
		.desc = "ingress TCP port just outside a range, or of another protocol: DROP_POLICY",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_RANGES, 60) },
		.ranges = { { PEER_ID, IN, IPPROTO_TCP, 8192, 3, 61 } },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 16384, TH_SYN) }, PAL_DROP_POLICY, CT_NONE },
			   { TO_POD, { TCP(PEER, 40000, POD, 8191, TH_SYN) }, PAL_DROP_POLICY, CT_NONE },
			   { TO_POD, { UDP(PEER, 40000, POD, 9000) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* The summary gates the lookup: a range entry its summary does not announce allows nothing. */
		.desc = "a range entry the summary does not announce is not consulted",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.ranges = { { PEER_ID, IN, IPPROTO_TCP, 8192, 3, 61 } },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 9000, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		.desc = "exact port before range before any-port: each decides its own ports",
		.ep_flags = ENF_OUT,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS | PAL_POL_UDP_RANGES | PAL_POL_UDP_ANY_PORT, 70),
			 PORT(PEER_ID, OUT, IPPROTO_UDP, 5353, 71), PORT(PEER_ID, OUT, IPPROTO_UDP, 0, 73) },
		.ranges = { { PEER_ID, OUT, IPPROTO_UDP, 5120, 6, 72 } },
		.steps = { { FROM_POD, { UDP(POD, 40000, PEER, 5353) }, PAL_ALLOW_POLICY, CT_CREATED, 71 },
			   { FROM_POD, { UDP(POD, 40001, PEER, 5300) }, PAL_ALLOW_POLICY, CT_CREATED, 72 },
			   { FROM_POD, { UDP(POD, 40002, PEER, 9) }, PAL_ALLOW_POLICY, CT_CREATED, 73 } },
	},
	{
		/* Step 1 of the algorithm: a device with the programs but no entry
		 * (a pod being torn down) passes nothing. */
		.desc = "no endpoint entry: DROP_NO_ENDPOINT, no conntrack",
		.no_endpoint = true,
		.steps = { { FROM_POD, { TCP(POD, 40000, PEER, 80, TH_SYN) }, PAL_DROP_NO_ENDPOINT, CT_NONE } },
	},
	{
		/* The endpoint is looked up by skb->ifindex, nothing else. */
		.desc = "endpoint on another ifindex: DROP_NO_ENDPOINT",
		.ep_ifindex = 2, .ep_flags = ENF_BOTH,
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_NO_ENDPOINT, CT_NONE } },
	},
	{
		/* The parse comes before the endpoint lookup; without an entry nothing
		 * passes, whatever the frame. */
		.desc = "no endpoint entry, truncated header, ARP, IPv6 or tagged: DROP_NO_ENDPOINT",
		.no_endpoint = true,
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN), .len = 14 + 20 + 19 }, PAL_DROP_NO_ENDPOINT, CT_NONE },
			{ TO_POD, { .ethertype = ETH_ARP, .len = 42 }, PAL_DROP_NO_ENDPOINT, CT_NONE },
			{ FROM_POD, { ARP(1, PEER, HOST) }, PAL_DROP_NO_ENDPOINT, CT_NONE },
			{ FROM_POD, { .ethertype = ETH_IPV6, .len = 54 }, PAL_DROP_NO_ENDPOINT, CT_NONE },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53), .tags = { TPID_Q } }, PAL_DROP_NO_ENDPOINT, CT_NONE },
			{ FROM_POD_TAGGED, { UDP(POD, 5000, PEER, 53) }, PAL_DROP_NO_ENDPOINT, CT_NONE },
		},
	},
	{
		/* A pod that no policy selects is still tracked (rule 0), so that a
		 * policy arriving later knows who opened the connection. */
		.desc = "endpoint enforced in neither direction: PASS_UNSELECTED, tracked",
		.ep_flags = 0,
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 } },
	},
	{
		/* ARP about the pod's own address is all a pod needs besides IPv4:
		 * its requests and replies say it is the sender, and what reaches
		 * it asks for, or answers, its own address. */
		.desc = "ARP for the pod's own address passes both ways: PASS_NON_IP",
		.ep_flags = ENF_BOTH,
		.steps = {
			{ FROM_POD, { ARP(1, POD, HOST) }, PAL_PASS_NON_IP, CT_NONE },
			{ TO_POD, { ARP(2, HOST, POD) }, PAL_PASS_NON_IP, CT_NONE },
			{ TO_POD, { ARP(1, HOST, POD) }, PAL_PASS_NON_IP, CT_NONE },
			{ FROM_POD, { ARP(2, POD, HOST) }, PAL_PASS_NON_IP, CT_NONE },
		},
	},
	{
		/* Anti-spoofing holds for ARP: a pod claiming another address (to
		 * draw that address's traffic) is dropped, even unenforced. */
		.desc = "ARP from the pod with a foreign sender address: DROP_SPOOFED",
		.ep_flags = 0,
		.steps = {
			{ FROM_POD, { ARP(2, PEER, HOST) }, PAL_DROP_SPOOFED, CT_NONE },
			{ FROM_POD, { ARP(1, IP4(10, 0, 1, 6), HOST) }, PAL_DROP_SPOOFED, CT_NONE },
			{ FROM_POD, { ARP(1, 0, POD) }, PAL_DROP_SPOOFED, CT_NONE },
		},
	},
	{
		/* ARP for someone else is not the pod's business. */
		.desc = "ARP to the pod about another address: DROP_NOT_IPV4",
		.ep_flags = 0,
		.steps = {
			{ TO_POD, { ARP(1, HOST, PEER) }, PAL_DROP_NOT_IPV4, CT_NONE },
			{ TO_POD, { ARP(2, HOST, HOST) }, PAL_DROP_NOT_IPV4, CT_NONE },
		},
	},
	{
		/* Only Ethernet/IPv4 ARP (lengths 6 and 4) is understood; a
		 * frame cut inside it is no better. */
		.desc = "ARP with a 16-byte protocol address or cut short: DROP_MALFORMED",
		.ep_flags = 0,
		.steps = {
			{ FROM_POD, { ARP(1, POD, HOST), .arp_plen = 16 }, PAL_DROP_MALFORMED, CT_NONE },
			{ FROM_POD, { ARP(1, POD, HOST), .len = 14 + 20 }, PAL_DROP_MALFORMED, CT_NONE },
			{ TO_POD, { ARP(1, HOST, POD), .len = 14 + 27 }, PAL_DROP_MALFORMED, CT_NONE },
		},
	},
	{
		/* IPv6 is not enforced yet: dropped at an endpoint, both ways, even
		 * unenforced (a pod under deny-all reached its node over IPv6). */
		.desc = "IPv6 at an endpoint, both ways: DROP_NOT_IPV4",
		.ep_flags = 0,
		.steps = {
			{ FROM_POD, { .ethertype = ETH_IPV6, .len = 54 }, PAL_DROP_NOT_IPV4, CT_NONE },
			{ TO_POD, { .ethertype = ETH_IPV6, .len = 54 }, PAL_DROP_NOT_IPV4, CT_NONE },
			{ FROM_POD, { .ethertype = 0x88cc, .len = 60 }, PAL_DROP_NOT_IPV4, CT_NONE },
		},
	},
	{
		/* The attack of issue 7: the kernel strips one tag before tc (into
		 * the skb's metadata, see the next fixtures) and, after it, the
		 * VID-0 tag and the inner one, so the inner IPv4 with a forged
		 * source reached the peer. Dropped whatever it carries. */
		.desc = "802.1Q VID 0 + 802.1Q VID 0 + IPv4 from the pod: DROP_VLAN",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 20) },
		.steps = {
			{ FROM_POD, { UDP(PEER, 5000, IP4(10, 0, 1, 6), 53), .tags = { TPID_Q, TPID_Q } }, PAL_DROP_VLAN, CT_NONE },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53), .tags = { TPID_Q, TPID_Q } }, PAL_DROP_VLAN, CT_NONE },
			{ FROM_POD_TAGGED, { UDP(PEER, 5000, IP4(10, 0, 1, 6), 53), .tags = { TPID_Q } }, PAL_DROP_VLAN, CT_NONE },
		},
	},
	{
		.desc = "single 802.1Q tag or 802.1ad tag in the frame, both ways: DROP_VLAN",
		.ep_flags = 0,
		.steps = {
			{ FROM_POD, { UDP(POD, 5000, PEER, 53), .tags = { TPID_Q } }, PAL_DROP_VLAN, CT_NONE },
			{ TO_POD, { UDP(PEER, 53, POD, 5000), .tags = { TPID_Q } }, PAL_DROP_VLAN, CT_NONE },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53), .tags = { TPID_AD, TPID_Q } }, PAL_DROP_VLAN, CT_NONE },
			{ TO_POD, { UDP(PEER, 53, POD, 5000), .tags = { TPID_AD } }, PAL_DROP_VLAN, CT_NONE },
		},
	},
	{
		/* A single tag never reaches tc in the frame: the receive path moves
		 * it into skb->vlan_* first, and the frame looks like plain IPv4.
		 * test_run cannot set that metadata (ctx_in's vlan fields must be
		 * zero), so test-tagged.bpf.o pushes the tag there and tail-calls
		 * the program. A tracked connection's packet is no exception. */
		.desc = "VLAN tag in the skb's metadata, plain IPv4 frame: DROP_VLAN",
		.ep_flags = 0,
		.steps = {
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ FROM_POD_TAGGED, { UDP(POD, 5000, PEER, 53) }, PAL_DROP_VLAN, CT_KEPT, 0 },
			{ TO_POD_TAGGED, { UDP(PEER, 53, POD, 5000) }, PAL_DROP_VLAN, CT_KEPT, 0 },
			{ FROM_POD_TAGGED, { ARP(1, POD, HOST) }, PAL_DROP_VLAN, CT_NONE },
		},
	},
	{
		/* The basic allow: identity class, TCP, exact port; rule of the port entry. */
		.desc = "ingress TCP from pod identity on exact port: ALLOW_POLICY",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 } },
	},
	{
		/* ALL in the summary allows any protocol; the summary's rule decides. */
		.desc = "egress UDP allowed by ALL: rule of the summary",
		.ep_flags = ENF_OUT,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 20) },
		.steps = { { FROM_POD, { UDP(POD, 5000, PEER, 9999) }, PAL_ALLOW_POLICY, CT_CREATED, 20 } },
	},
	{
		/* TCP_ANY_PORT: the (proto, 0) entry allows any port. */
		.desc = "TCP any-port entry allows an arbitrary port",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_ANY_PORT, 30), PORT(PEER_ID, IN, IPPROTO_TCP, 0, 31) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 12345, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 31 } },
	},
	{
		/* Summary announces exact ports AND any-port: exact is looked up first. */
		.desc = "ports and any-port both set: exact port entry wins",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_ANY_PORT | PAL_POL_TCP_PORTS, 30),
			 PORT(PEER_ID, IN, IPPROTO_TCP, 0, 31), PORT(PEER_ID, IN, IPPROTO_TCP, 443, 32) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 443, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 32 } },
	},
	{
		/* The ANY class (identity 0) matches every peer. */
		.desc = "ANY identity class allows a pod peer",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_ANY,
		.pol = { SUMMARY(PAL_ID_ANY, IN, PAL_POL_TCP_PORTS, 40), PORT(PAL_ID_ANY, IN, IPPROTO_TCP, 80, 41) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 41 } },
	},
	{
		/* The endpoint's ANY flag gates the lookup: without it, ANY entries
		 * are never probed (the agent sets the flag with the entries). */
		.desc = "ANY entries without the endpoint's ANY flag: DROP_POLICY",
		.ep_flags = ENF_IN | PAL_EP_EGRESS_ANY,
		.pol = { SUMMARY(PAL_ID_ANY, IN, PAL_POL_TCP_PORTS, 40), PORT(PAL_ID_ANY, IN, IPPROTO_TCP, 80, 41) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* CIDR region: flag set, pal_policy_cidr maps the address to a region class. */
		.desc = "CIDR region allows a world address (egress)",
		.ep_flags = ENF_OUT | PAL_EP_EGRESS_CIDR,
		.pol = { SUMMARY(REGION, OUT, PAL_POL_TCP_PORTS, 50), PORT(REGION, OUT, IPPROTO_TCP, 443, 51) },
		.cidr = { { IP4(203, 0, 113, 0), 24, OUT, REGION } },
		.steps = { { FROM_POD, { TCP(POD, 40000, CIDR_PEER, 443, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 51 } },
	},
	{
		/* The endpoint's CIDR flag gates the LPM lookup. */
		.desc = "CIDR entry without the endpoint's CIDR flag: DROP_POLICY",
		.ep_flags = ENF_OUT,
		.pol = { SUMMARY(REGION, OUT, PAL_POL_TCP_PORTS, 50), PORT(REGION, OUT, IPPROTO_TCP, 443, 51) },
		.cidr = { { IP4(203, 0, 113, 0), 24, OUT, REGION } },
		.steps = { { FROM_POD, { TCP(POD, 40000, CIDR_PEER, 443, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* ipBlock matches pod IPs: the CIDR class is found by address, whatever the identity. */
		.desc = "CIDR region matches a pod address (identity 400)",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_CIDR,
		.pol = { SUMMARY(REGION, IN, PAL_POL_TCP_PORTS, 52), PORT(REGION, IN, IPPROTO_TCP, 80, 53) },
		.cidr = { { IP4(10, 0, 2, 0), 24, IN, REGION } },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 53 } },
	},
	{
		/* CIDR entries are per direction: an egress region does not open ingress. */
		.desc = "CIDR entry of the other direction: DROP_POLICY",
		.ep_flags = ENF_BOTH | PAL_EP_INGRESS_CIDR | PAL_EP_EGRESS_CIDR,
		.pol = { SUMMARY(REGION, IN, PAL_POL_ALL, 54) },
		.cidr = { { IP4(203, 0, 113, 0), 24, OUT, REGION } },
		.steps = { { TO_POD, { TCP(CIDR_PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Default deny: enforced, no entry for the peer; the event names the default rule. */
		.desc = "no policy entry: DROP_POLICY",
		.ep_flags = ENF_IN,
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE,
			     .ev = { PAL_FLOW_DROP, PAL_FLOWF_DEFAULT_DENY, 901 } } },
	},
	{
		.desc = "wrong port: DROP_POLICY",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 81, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* TCP 53 allowed does not allow UDP 53. */
		.desc = "wrong protocol (UDP to a TCP-only port): DROP_POLICY",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS | PAL_POL_TCP_ANY_PORT, 10),
			 PORT(PEER_ID, IN, IPPROTO_TCP, 53, 11), PORT(PEER_ID, IN, IPPROTO_TCP, 0, 12) },
		.steps = { { TO_POD, { UDP(PEER, 40000, POD, 53) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Direction is part of the key: an egress entry does not allow ingress. */
		.desc = "entry of the other direction: DROP_POLICY",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 10) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Endpoint id is part of the key: another endpoint's entry does not apply. */
		.desc = "entry of another endpoint: DROP_POLICY",
		.ep_flags = ENF_IN,
		.pol = { { PEER_ID, IN, 0, 0, PAL_POL_ALL, 10, EP_ID + 1 } },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		.desc = "UDP exact port allowed",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = { { TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 61 } },
	},
	{
		/* SCTP ports sit where UDP's do. */
		.desc = "SCTP exact port allowed",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_SCTP_PORTS, 70), PORT(PEER_ID, IN, IPPROTO_SCTP, 3868, 71) },
		.steps = { { TO_POD, { SCTP(PEER, 3868, POD, 3868) }, PAL_ALLOW_POLICY, CT_CREATED, 71 } },
	},
	{
		.desc = "SCTP wrong port: DROP_POLICY",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_SCTP_PORTS, 70), PORT(PEER_ID, IN, IPPROTO_SCTP, 3868, 71) },
		.steps = { { TO_POD, { SCTP(PEER, 3868, POD, 3869) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* SCTP any-port flag is its own bit: TCP any-port does not open SCTP. */
		.desc = "SCTP any-port allowed, TCP any-port alone is not",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_SCTP_ANY_PORT, 72), PORT(PEER_ID, IN, IPPROTO_SCTP, 0, 73) },
		.steps = {
			{ TO_POD, { SCTP(PEER, 1000, POD, 2000) }, PAL_ALLOW_POLICY, CT_CREATED, 73 },
			{ TO_POD, { TCP(PEER, 1000, POD, 2000, TH_SYN) }, PAL_DROP_POLICY, CT_NONE },
		},
	},
	{
		/* ICMP has no ports: only ALL allows it; its reply matches the entry. */
		.desc = "ICMP allowed by ALL, echo reply passes as ALLOW_REPLY",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 80) },
		.steps = {
			{ FROM_POD, { ICMP(POD, PEER, 8) }, PAL_ALLOW_POLICY, CT_CREATED, 80 },
			{ TO_POD, { ICMP(PEER, POD, 0) }, PAL_ALLOW_REPLY, CT_KEPT, 80 },
		},
	},
	{
		.desc = "ICMP with only TCP ports allowed: DROP_POLICY",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS | PAL_POL_TCP_ANY_PORT, 81),
			 PORT(PEER_ID, IN, IPPROTO_TCP, 0, 82) },
		.steps = { { TO_POD, { ICMP(PEER, POD, 8) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Replies need no policy of their own: ingress is enforced and empty. */
		.desc = "egress TCP connection: SYN-ACK and data come back as ALLOW_REPLY",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 90), PORT(PEER_ID, OUT, IPPROTO_TCP, 8080, 91) },
		.steps = {
			{ FROM_POD, { TCP(POD, 41000, PEER, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 91 },
			{ TO_POD, { TCP(PEER, 8080, POD, 41000, TH_SYN | TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 91 },
			{ FROM_POD, { TCP(POD, 41000, PEER, 8080, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 91 },
			{ TO_POD, { TCP(PEER, 8080, POD, 41000, TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 91 },
		},
	},
	{
		/* The mirror case: ingress admitted, the pod's answers pass its empty egress. */
		.desc = "ingress UDP flow: the pod's answer passes as ALLOW_REPLY",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 92), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 93) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 93 },
			{ FROM_POD, { UDP(POD, 53, PEER, 33333) }, PAL_ALLOW_REPLY, CT_KEPT, 93 },
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 93 },
		},
	},
	{
		/* A packet that merely looks like a reply, with no entry, is new. */
		.desc = "unsolicited 'reply' without a conntrack entry: DROP_POLICY",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 90) },
		.steps = { { TO_POD, { TCP(PEER, 8080, POD, 41000, TH_SYN | TH_ACK) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Deviation from the ADR (see handle()): ingress-only enforcement still
		 * tracks outgoing connections, or their replies would be dropped. */
		.desc = "ingress-only endpoint: outgoing connection tracked, reply passes",
		.ep_flags = ENF_IN,
		.steps = {
			{ FROM_POD, { TCP(POD, 42000, PEER, 443, TH_SYN) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ TO_POD, { TCP(PEER, 443, POD, 42000, TH_SYN | TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 0 },
			{ FROM_POD, { TCP(POD, 42000, PEER, 443, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 0 },
		},
	},
	{
		/* The revision fast path: a current entry passes without policy;
		 * last_seen is rewritten only once PAL_CT_REFRESH_JIFFIES old. */
		.desc = "established TCP: ALLOW_ESTABLISHED, last_seen refreshed when old",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 11 },
			{ AGE },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK | TH_FIN) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 11, true },
		},
	},
	{
		/* FIN or RST, either way, marks the entry closing (a short idle
		 * timeout for the agent's garbage collector); a SYN reopens it. */
		.desc = "RST from the pod marks the connection closing, a new SYN reopens it",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ FROM_POD, { TCP(POD, 80, PEER, 40000, TH_RST | TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 11, true },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 11, true },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_REPLACED, 11 },
		},
	},
	{
		/* A stale entry whose connection is still allowed is refreshed, not dropped. */
		.desc = "stale entry still allowed: re-evaluated, kept at the new revision",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ BUMP },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 11 },
		},
	},
	{
		/* Revocation cuts the connection at its next packet, and the entry,
		 * marked, keeps cutting it (rule: the default deny of its origin). */
		.desc = "revoked: established packet DROP_REVOKED, entry kept marked",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11,
			  .ev = { PAL_FLOW_NEW, 0, 11 } },
			{ REVOKE },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 901,
			  .ev = { PAL_FLOW_DROP, PAL_FLOWF_DEFAULT_DENY, 901 } },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
			{ FROM_POD, { TCP(POD, 80, PEER, 40000, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
		},
	},
	{
		/* A policy allowing the connection again revives its entry. */
		.desc = "revoked, then allowed again: the connection resumes",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ REVOKE },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
			{ RESTORE },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 11 },
			{ FROM_POD, { TCP(POD, 80, PEER, 40000, TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 11 },
		},
	},
	{
		/* The race the apply-latency benchmark found: the pod's reply leaves
		 * after the peer's next packet revoked the flow. Egress is not
		 * enforced, so were the entry gone, the reply would be recorded as
		 * a flow the pod opened and the peer's packets would pass as its
		 * replies for good. The marked entry drops both. */
		.desc = "revoked ingress UDP flow: the pod's late reply cannot reopen it",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 92), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 93) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 93 },
			{ REVOKE },
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
			{ FROM_POD, { UDP(POD, 53, PEER, 33333) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
		},
	},
	{
		/* The same with the reply first to see the new revision. */
		.desc = "revoked ingress UDP flow seen first by the reply: both ways dropped",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 92), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 93) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 93 },
			{ REVOKE },
			{ FROM_POD, { UDP(POD, 53, PEER, 33333) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
		},
	},
	{
		/* A reply re-checks the ORIGINAL direction: the pod's egress toward
		 * PEER:8080. Ingress allows the reply's own tuple (from PEER port
		 * 8080 to the pod's 41000), which must not matter. */
		.desc = "revoked egress: the reply at to-pod is DROP_REVOKED",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 90), PORT(PEER_ID, OUT, IPPROTO_TCP, 8080, 91) },
		.steps = {
			{ FROM_POD, { TCP(POD, 41000, PEER, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 91 },
			{ REVOKE },
			{ TO_POD, { TCP(PEER, 8080, POD, 41000, TH_SYN | TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 902 },
		},
	},
	{
		/* The same reply while egress still allows PEER:8080 but ingress allows
		 * nothing: re-evaluation must use egress and the original tuple. */
		.desc = "stale reply re-evaluated against the original egress: ALLOW_REPLY",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 90), PORT(PEER_ID, OUT, IPPROTO_TCP, 8080, 91) },
		.steps = {
			{ FROM_POD, { TCP(POD, 41000, PEER, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 91 },
			{ BUMP },
			{ TO_POD, { TCP(PEER, 8080, POD, 41000, TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 91 },
		},
	},
	{
		/* Ingress would allow the reply's tuple as new, but the reply is judged
		 * as part of its connection, whose egress was revoked. */
		.desc = "revoked egress, ingress allowing the reply's tuple: still DROP_REVOKED",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 90), PORT(PEER_ID, OUT, IPPROTO_TCP, 8080, 91) },
		.steps = {
			{ FROM_POD, { TCP(POD, 41000, PEER, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 91 },
			{ REVOKE },
			{ TO_POD, { TCP(PEER, 8080, POD, 41000, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 902 },
		},
	},
	{
		/* A SYN skips conntrack: with the policy gone (even without a revision
		 * bump) the SYN is DROP_POLICY while the entry's ACKs still pass. */
		.desc = "SYN evaluated as new despite a current entry",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ CLEAR },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_KEPT, 11 },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 11 },
		},
	},
	{
		/* A SYN allowed again replaces the entry (new rule, current revision). */
		.desc = "SYN re-allowed replaces the entry with the deciding rule",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_ALL, 12) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 12 },
			{ BUMP },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_REPLACED, 12 },
		},
	},
	{
		/* Anti-spoofing: a pod's packet with another source is dropped before
		 * policy, so it can neither borrow that address's identity at the
		 * peer nor create a conntrack entry keyed by it. */
		.desc = "from-pod packet with a source that is not the pod's: DROP_SPOOFED",
		.ep_flags = 0,
		.steps = {
			{ FROM_POD, { TCP(IP4(10, 0, 1, 6), 40000, PEER, 80, TH_SYN) }, PAL_DROP_SPOOFED, CT_NONE },
			{ FROM_POD, { UDP(PEER, 53, IP4(10, 0, 1, 6), 33333) }, PAL_DROP_SPOOFED, CT_NONE },
		},
	},
	{
		/* An entry is bound to the device it was made on: on another one
		 * (a spoofer, or a new pod given a deleted pod's address) the packet
		 * is decided as new, here by a policy that no longer allows it. */
		.desc = "conntrack entry of another device: decided as new, not trusted",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ CLEAR },
			{ REHOME },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_DROP_POLICY, CT_KEPT, 11 },
			{ RESTORE },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_POLICY, CT_REPLACED, 11 },
		},
	},
	{
		/* One entry per connection and endpoint: a SYN the other way with the
		 * same addresses and ports opens a connection of the other direction,
		 * which takes the entry over (origin egress, egress rule). */
		.desc = "SYN in the other direction of a tracked connection replaces it",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11),
			 SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 14), PORT(PEER_ID, OUT, IPPROTO_TCP, 40000, 15) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ FROM_POD, { TCP(POD, 80, PEER, 40000, TH_SYN) }, PAL_ALLOW_POLICY, CT_REPLACED, 15 },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 15 },
		},
	},
	{
		/* test_run itself refuses an IPv4 frame shorter than 14 + 20 bytes
		 * (EINVAL), so the header is cut inside the options that ihl 6 promises. */
		.desc = "truncated IPv4 header: DROP_MALFORMED",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_ANY,
		.pol = { SUMMARY(PAL_ID_ANY, IN, PAL_POL_ALL, 1) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN), .ihl = 6, .len = 14 + 22 }, PAL_DROP_MALFORMED, CT_NONE } },
	},
	{
		.desc = "truncated TCP header: DROP_MALFORMED",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_ANY,
		.pol = { SUMMARY(PAL_ID_ANY, IN, PAL_POL_ALL, 1) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN), .len = 14 + 20 + 19 }, PAL_DROP_MALFORMED, CT_NONE } },
	},
	{
		.desc = "truncated UDP header: DROP_MALFORMED",
		.ep_flags = ENF_OUT,
		.steps = { { FROM_POD, { UDP(POD, 40000, PEER, 53), .len = 14 + 20 + 7 }, PAL_DROP_MALFORMED, CT_NONE } },
	},
	{
		/* ihl below 5 cannot be a valid header. */
		.desc = "IPv4 ihl 4: DROP_MALFORMED",
		.ep_flags = ENF_IN,
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN), .ihl = 4 }, PAL_DROP_MALFORMED, CT_NONE } },
	},
	{
		/* ihl promises options the frame does not have. */
		.desc = "IPv4 header cut inside 40 bytes of options (ihl 15): DROP_MALFORMED",
		.ep_flags = ENF_IN,
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN), .ihl = 15, .len = 14 + 40 }, PAL_DROP_MALFORMED, CT_NONE } },
	},
	{
		/* Options are NOPs (0x01): reading ports at offset 20 would see 257 and drop. */
		.desc = "IPv4 with 4 bytes of options: ports after the options",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN), .ihl = 6 }, PAL_ALLOW_POLICY, CT_CREATED, 11 } },
	},
	{
		/* The longest header: ihl 15, 40 bytes of options. */
		.desc = "IPv4 with 40 bytes of options (ihl 15), UDP",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = { { TO_POD, { UDP(PEER, 33333, POD, 53), .ihl = 15 }, PAL_ALLOW_POLICY, CT_CREATED, 61 } },
	},
	{
		/* A non-first fragment has no ports: without its first fragment it
		 * belongs to no known connection, even where any port is allowed. */
		.desc = "non-first UDP fragment with no first fragment seen: DROP_FRAGMENT",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_ANY_PORT, 62), PORT(PEER_ID, IN, IPPROTO_UDP, 0, 63) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = 185 }, PAL_DROP_FRAGMENT, CT_NONE },
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = MF | 185 }, PAL_DROP_FRAGMENT, CT_NONE },
		},
	},
	{
		/* Issue 7: a fragmented datagram of an allowed flow (a large DNS
		 * answer) passes whole, each fragment as its connection; the
		 * pod's fragmented reply too. Fragments are matched to their first
		 * by source, destination, protocol and IP id. */
		.desc = "fragments of an allowed UDP flow, both ways: judged as the connection",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = MF, .ipid = 7 }, PAL_ALLOW_POLICY, CT_CREATED, 61 },
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = MF | 185, .ipid = 7 }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 61 },
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = 370, .ipid = 7 }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 61 },
			{ FROM_POD, { UDP(POD, 53, PEER, 33333), .frag_off = MF, .ipid = 9 }, PAL_ALLOW_REPLY, CT_KEPT, 61 },
			{ FROM_POD, { UDP(POD, 53, PEER, 33333), .frag_off = 185, .ipid = 9 }, PAL_ALLOW_REPLY, CT_KEPT, 61 },
			/* another datagram's id: no first fragment seen */
			{ FROM_POD, { UDP(POD, 53, PEER, 33333), .frag_off = 185, .ipid = 10 }, PAL_DROP_FRAGMENT, CT_KEPT, 61 },
			/* the same id from another source: not that datagram */
			{ TO_POD, { UDP(HOST, 33333, POD, 53), .frag_off = 185, .ipid = 7 }, PAL_DROP_FRAGMENT, CT_NONE },
		},
	},
	{
		/* The first fragment is denied, so are the rest. */
		.desc = "fragments of a denied UDP flow: DROP_POLICY, then DROP_FRAGMENT",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 54), .frag_off = MF, .ipid = 7 }, PAL_DROP_POLICY, CT_NONE },
			{ TO_POD, { UDP(PEER, 33333, POD, 54), .frag_off = 185, .ipid = 7 }, PAL_DROP_FRAGMENT, CT_NONE },
		},
	},
	{
		/* A fragment gets its connection's verdict, revocation included. */
		.desc = "fragments of a revoked connection: DROP_REVOKED",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = MF, .ipid = 7 }, PAL_ALLOW_POLICY, CT_CREATED, 61 },
			{ REVOKE },
			{ TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = 185, .ipid = 7 }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
		},
	},
	{
		/* A first fragment (MF, offset 0) carries the ports and is parsed normally. */
		.desc = "first UDP fragment (MF set): decided by its port",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = { { TO_POD, { UDP(PEER, 33333, POD, 53), .frag_off = 0x2000 }, PAL_ALLOW_POLICY, CT_CREATED, 61 } },
	},
	{
		/* Peer only under a prefix in pal_ipcache: its identity comes from the LPM trie. */
		.desc = "peer resolved by the LPM ipcache (192.168.0.0/16 -> 500)",
		.ep_flags = ENF_OUT,
		.pol = { SUMMARY(LPM_ID, OUT, PAL_POL_TCP_PORTS, 100), PORT(LPM_ID, OUT, IPPROTO_TCP, 5432, 101) },
		.steps = { { FROM_POD, { TCP(POD, 43000, LPM_PEER, 5432, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 101 } },
	},
	{
		/* pal_ipcache4's exact entry wins over a covering prefix (10/8 -> 600). */
		.desc = "exact ipcache4 entry takes precedence over the LPM prefix",
		.ep_flags = ENF_OUT,
		.pol = { SUMMARY(NET10_ID, OUT, PAL_POL_ALL, 102) },
		.steps = { { FROM_POD, { TCP(POD, 43000, PEER, 5432, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Not in either ipcache: world (2). */
		.desc = "unknown peer is world (identity 2)",
		.ep_flags = ENF_OUT,
		.pol = { SUMMARY(PAL_ID_WORLD, OUT, PAL_POL_UDP_PORTS, 110), PORT(PAL_ID_WORLD, OUT, IPPROTO_UDP, 53, 111) },
		.steps = { { FROM_POD, { UDP(POD, 44000, WORLD_PEER, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 111 } },
	},
	{
		/* Kubelet probes: the host reaches its pods whatever their ingress policy. */
		.desc = "host identity reaches the pod by default (rule 0)",
		.ep_flags = ENF_BOTH,
		.steps = {
			{ TO_POD, { TCP(HOST, 50000, POD, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 0 },
			{ FROM_POD, { TCP(POD, 8080, HOST, 50000, TH_SYN | TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 0 },
		},
	},
	{
		/* The host rule is for reaching pods, not for pods reaching the host. */
		.desc = "pod to host is not allowed by the host rule",
		.ep_flags = ENF_BOTH,
		.steps = { { FROM_POD, { TCP(POD, 50000, HOST, 10250, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* A node that runs the API server: its address has the combined
		 * identity 8 (ADR 0010), and is still this node for the host rule. */
		.desc = "this node's address that is the API server's too (8) reaches the pod by the host rule",
		.ep_flags = ENF_BOTH,
		.steps = {
			{ TO_POD, { TCP(HOST_API, 50000, POD, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 0 },
			{ FROM_POD, { TCP(POD, 50000, HOST_API, 6443, TH_SYN) }, PAL_DROP_POLICY, CT_NONE },
		},
	},
	{
		/* pal_host_reaches_pods = 0 at load: the host is an ordinary peer. */
		.desc = "host rule off at load time: host needs a policy entry",
		.host_blocked = true,
		.ep_flags = ENF_IN,
		.steps = { { TO_POD, { TCP(HOST, 50000, POD, 8080, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* Path-MTU discovery: a router's "fragmentation needed" about the
		 * pod's allowed connection reaches it through an ingress that
		 * allows nothing; it neither opens nor refreshes an entry. */
		.desc = "ICMP frag-needed about an allowed connection, enforced ingress: ALLOW_RELATED",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 20) },
		.steps = {
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 20 },
			{ FROM_POD, { TCP(POD, 41000, PEER, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 20 },
			{ AGE },
			{ TO_POD, { ICMP_ERR(WORLD_PEER, POD, 3, 4), QUOTE_UDP(POD, 5000, PEER, 53) }, PAL_ALLOW_RELATED, CT_NONE,
			  .quoted_untouched = true },
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_TCP(POD, 41000, PEER, 8080) }, PAL_ALLOW_RELATED, CT_NONE,
			  .quoted_untouched = true },
			{ TO_POD, { ICMP_ERR(HOST, POD, 11, 0), QUOTE_UDP(POD, 5000, PEER, 53) }, PAL_ALLOW_RELATED, CT_NONE,
			  .quoted_untouched = true },
		},
	},
	{
		/* Spoofed errors: about a connection that does not exist, one of
		 * another device, or one the pod did not send (the error goes to
		 * another address than the quoted source). */
		.desc = "ICMP error about no connection of this endpoint: DROP_ICMP_ERROR",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 20), SUMMARY(PEER_ID, IN, PAL_POL_ALL, 21) },
		.steps = {
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(POD, 5000, PEER, 53) }, PAL_DROP_ICMP_ERROR, CT_NONE,
			  .quoted_untouched = true },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 20 },
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(POD, 5001, PEER, 53) }, PAL_DROP_ICMP_ERROR, CT_NONE,
			  .quoted_untouched = true },
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(PEER, 53, POD, 5000) }, PAL_DROP_ICMP_ERROR, CT_NONE,
			  .quoted_untouched = true },
			{ REHOME },
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(POD, 5000, PEER, 53) }, PAL_DROP_ICMP_ERROR, CT_NONE,
			  .quoted_untouched = true },
		},
	},
	{
		/* An error about a revoked connection neither passes nor keeps the
		 * entry alive. */
		.desc = "ICMP error about a revoked connection: DROP_ICMP_ERROR, entry untouched",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_ALL, 20) },
		.steps = {
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 20 },
			{ REVOKE },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_DROP_REVOKED, CT_REVOKED, 902 },
			{ AGE },
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(POD, 5000, PEER, 53) }, PAL_DROP_ICMP_ERROR, CT_NONE,
			  .quoted_untouched = true },
		},
	},
	{
		/* The pod's own errors (port unreachable) about a connection it
		 * accepted pass its enforced egress; their outer source must still
		 * be the pod's. */
		.desc = "ICMP error from the pod: ALLOW_RELATED, or DROP_SPOOFED from another source",
		.ep_flags = ENF_BOTH,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 60), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 61) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 61 },
			{ FROM_POD, { ICMP_ERR(POD, PEER, 3, 3), QUOTE_UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_RELATED, CT_NONE,
			  .quoted_untouched = true },
			{ FROM_POD, { ICMP_ERR(IP4(10, 0, 1, 6), PEER, 3, 3), QUOTE_UDP(PEER, 33333, POD, 53) }, PAL_DROP_SPOOFED,
			  CT_NONE, .quoted_untouched = true },
			{ FROM_POD, { ICMP_ERR(POD, PEER, 3, 3), QUOTE_UDP(PEER, 33334, POD, 53) }, PAL_DROP_ICMP_ERROR, CT_NONE,
			  .quoted_untouched = true },
		},
	},
	{
		/* Where the direction is not enforced an unrelated error passes
		 * like anything else, but it still opens no entry. */
		.desc = "ICMP error about no connection, unenforced: PASS_UNSELECTED, no entry",
		.ep_flags = 0,
		.steps = {
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(POD, 5000, PEER, 53) }, PAL_PASS_UNSELECTED, CT_NONE,
			  .quoted_untouched = true },
			{ FROM_POD, { ICMP_ERR(POD, PEER, 3, 3), QUOTE_UDP(PEER, 33334, POD, 53) }, PAL_PASS_UNSELECTED, CT_NONE,
			  .quoted_untouched = true },
		},
	},
	{
		/* The quoted header must hold the ports: cut short, it is malformed. */
		.desc = "ICMP error cut inside the quoted header: DROP_MALFORMED",
		.ep_flags = ENF_IN,
		.steps = {
			{ TO_POD, { ICMP_ERR(PEER, POD, 3, 4), QUOTE_UDP(POD, 5000, PEER, 53), .len = 14 + 20 + 8 + 20 + 3 },
			  PAL_DROP_MALFORMED, CT_NONE },
		},
	},
	{
		/* Issue 7: a revoked connection's packets, dropped, keep its entry
		 * alive both ways, so the garbage collector removes it only once
		 * both sides have been silent for the whole timeout (the flow
		 * stays cut while either side keeps trying). */
		.desc = "revoked entry refreshed by its dropped packets, both ways",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_UDP_PORTS, 92), PORT(PEER_ID, IN, IPPROTO_UDP, 53, 93) },
		.steps = {
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_ALLOW_POLICY, CT_CREATED, 93 },
			{ REVOKE },
			{ AGE },
			{ TO_POD, { UDP(PEER, 33333, POD, 53) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
			{ AGE },
			{ FROM_POD, { UDP(POD, 53, PEER, 33333) }, PAL_DROP_REVOKED, CT_REVOKED, 901 },
		},
	},
	{
		/* A pod over its budget (SMALL_BUDGET entries here) gets its new
		 * connections dropped; its own tracked ones go on, and no other
		 * endpoint's entry is touched (there is no eviction). */
		.desc = "conntrack budget exhausted: DROP_CT_FULL, other endpoints' entries untouched",
		.small_budget = true,
		.ep_flags = 0,
		.steps = {
			{ OTHER_EP },
			{ BUDGET, .node_entries = OTHER_ENTRIES },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ FROM_POD, { UDP(POD, 5001, PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ FROM_POD, { UDP(POD, 5002, PEER, 53) }, PAL_DROP_CT_FULL, CT_NONE },
			{ TO_POD, { TCP(PEER, 40001, POD, 80, TH_SYN) }, PAL_DROP_CT_FULL, CT_NONE },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 0 },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_PASS_UNSELECTED, CT_REPLACED, 0 },
			{ OTHER_EP_CHECK },
		},
	},
	{
		/* The node-wide guarantee: once the shared part of the table is
		 * used up, an endpoint still gets its PAL_CT_RESERVED entries, and
		 * nothing beyond them. */
		.desc = "shared conntrack used up: the reserve still opens, beyond it DROP_CT_FULL",
		.ep_flags = 0,
		.steps = {
			{ BUDGET, .ep_entries = 0, .node_entries = PAL_CT_MAX - PAL_ENDPOINTS_MAX * PAL_CT_RESERVED },
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ BUDGET, .ep_entries = PAL_CT_RESERVED, .node_entries = PAL_CT_MAX - PAL_ENDPOINTS_MAX * PAL_CT_RESERVED },
			{ FROM_POD, { UDP(POD, 5001, PEER, 53) }, PAL_DROP_CT_FULL, CT_NONE },
			{ BUDGET, .ep_entries = PAL_CT_RESERVED, .node_entries = PAL_CT_MAX - PAL_ENDPOINTS_MAX * PAL_CT_RESERVED - 1 },
			{ FROM_POD, { UDP(POD, 5001, PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
		},
	},
	/* ---- deny rules and the CLUSTER class (ADR 0010) ---- */
	{
		/* The deny lane (direction 2) is looked at first: what it matches is
		 * dropped whatever the allow lane says, attributed to the deny rule,
		 * and the event is no default deny. The rest of the allow stands. */
		.desc = "deny entry drops what an allow entry allows: DROP_POLICY_DENY, the deny rule",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_DENY,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_ANY_PORT, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 0, 11),
			 SUMMARY(PEER_ID, IN_DENY, PAL_POL_TCP_PORTS, 20), PORT(PEER_ID, IN_DENY, IPPROTO_TCP, 80, 21) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE,
			  .ev = { PAL_FLOW_DROP, 0, 21 } },
			{ TO_POD, { TCP(PEER, 40001, POD, 443, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11,
			  .ev = { PAL_FLOW_NEW, 0, 11 } },
			{ TO_POD, { UDP(PEER, 40002, POD, 80) }, PAL_DROP_POLICY, CT_NONE,
			  .ev = { PAL_FLOW_DROP, PAL_FLOWF_DEFAULT_DENY, 901 } },
		},
	},
	{
		/* The endpoint's deny flag gates the deny lane, as ENFORCED gates the allow lane. */
		.desc = "deny entries without the endpoint's deny flag are not consulted",
		.ep_flags = ENF_IN | PAL_EP_EGRESS_DENY,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_ALL, 10), SUMMARY(PEER_ID, IN_DENY, PAL_POL_ALL, 21) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 10 } },
	},
	{
		/* Deny rules hold whether or not an allow policy isolates the pod:
		 * egress is not enforced, its deny lane still drops. */
		.desc = "deny in an unenforced direction: DROP_POLICY_DENY, the rest PASS_UNSELECTED",
		.ep_flags = PAL_EP_EGRESS_DENY,
		.pol = { SUMMARY(PEER_ID, OUT_DENY, PAL_POL_UDP_PORTS, 20), PORT(PEER_ID, OUT_DENY, IPPROTO_UDP, 53, 22) },
		.steps = {
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_DROP_POLICY_DENY, CT_NONE, .ev = { PAL_FLOW_DROP, 0, 22 } },
			{ FROM_POD, { UDP(POD, 5000, PEER, 54) }, PAL_PASS_UNSELECTED, CT_CREATED, 0, .ev = { PAL_FLOW_NEW, 0, 0 } },
			{ FROM_POD, { UDP(POD, 5001, WORLD_PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			/* the deny lane of egress is not the ingress one's */
			{ TO_POD, { UDP(PEER, 5002, POD, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
		},
	},
	{
		/* A deny by ANY drops every peer, the host too: deny comes before the
		 * host rule (pal_host_reaches_pods), which only shortcuts the allow lane. */
		.desc = "deny by the ANY class: every peer, the host included",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_ANY | PAL_EP_INGRESS_DENY | PAL_EP_INGRESS_DENY_ANY,
		.pol = { SUMMARY(PAL_ID_ANY, IN, PAL_POL_ALL, 40),
			 SUMMARY(PAL_ID_ANY, IN_DENY, PAL_POL_TCP_PORTS, 20), PORT(PAL_ID_ANY, IN_DENY, IPPROTO_TCP, 22, 41) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 22, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE, .ev = { PAL_FLOW_DROP, 0, 41 } },
			{ TO_POD, { TCP(WORLD_PEER, 40000, POD, 22, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE, .ev = { PAL_FLOW_DROP, 0, 41 } },
			{ TO_POD, { TCP(HOST, 40000, POD, 22, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE, .ev = { PAL_FLOW_DROP, 0, 41 } },
			{ TO_POD, { TCP(HOST, 40000, POD, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 0 },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 40 },
		},
	},
	{
		/* Deny ANY without its flag: only the peer's own class is probed. */
		.desc = "deny ANY entries without the endpoint's DENY_ANY flag are not consulted",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_ANY | PAL_EP_INGRESS_DENY | PAL_EP_INGRESS_ANY,
		.pol = { SUMMARY(PAL_ID_ANY, IN, PAL_POL_ALL, 40), SUMMARY(PAL_ID_ANY, IN_DENY, PAL_POL_ALL, 41) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 22, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 40 } },
	},
	{
		/* CLUSTER (3) matches peers of the cluster: pods (exact or under an
		 * ipcache prefix), the host, other nodes, the API server; not world. */
		.desc = "deny by the CLUSTER class: pods, host, nodes and API server, not world",
		.ep_flags = ENF_OUT | PAL_EP_EGRESS_ANY | PAL_EP_EGRESS_DENY | PAL_EP_EGRESS_DENY_CLUSTER,
		.pol = { SUMMARY(PAL_ID_ANY, OUT, PAL_POL_ALL, 50), SUMMARY(PAL_ID_CLUSTER, OUT_DENY, PAL_POL_ALL, 51) },
		.steps = {
			{ FROM_POD, { TCP(POD, 40000, PEER, 80, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE, .ev = { PAL_FLOW_DROP, 0, 51 } },
			{ FROM_POD, { TCP(POD, 40000, LPM_PEER, 80, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE },
			{ FROM_POD, { TCP(POD, 40000, HOST, 80, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE },
			{ FROM_POD, { TCP(POD, 40000, REMOTE, 80, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE },
			{ FROM_POD, { TCP(POD, 40000, APISERVER, 443, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE },
			{ FROM_POD, { TCP(POD, 40000, WORLD_PEER, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 50 },
			{ FROM_POD, { TCP(POD, 40000, CIDR_PEER, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 50 },
		},
	},
	{
		/* A CIDR deny region (pal_policy_cidr, direction 3) matches by address. */
		.desc = "deny by a CIDR region: its ports only, by address",
		.ep_flags = ENF_OUT | PAL_EP_EGRESS_ANY | PAL_EP_EGRESS_DENY | PAL_EP_EGRESS_DENY_CIDR,
		.pol = { SUMMARY(PAL_ID_ANY, OUT, PAL_POL_ALL, 50),
			 SUMMARY(REGION, OUT_DENY, PAL_POL_TCP_PORTS, 60), PORT(REGION, OUT_DENY, IPPROTO_TCP, 443, 61) },
		.cidr = { { IP4(203, 0, 113, 0), 24, OUT_DENY, REGION } },
		.steps = {
			{ FROM_POD, { TCP(POD, 40000, CIDR_PEER, 443, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE,
			  .ev = { PAL_FLOW_DROP, 0, 61 } },
			{ FROM_POD, { TCP(POD, 40000, CIDR_PEER, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 50 },
			{ FROM_POD, { TCP(POD, 40000, WORLD_PEER, 443, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 50 },
		},
	},
	{
		/* An allow lane's CIDR region (direction 1) is no deny, and the deny
		 * lane's (direction 3) is no allow. */
		.desc = "CIDR regions of the allow and deny lanes stay apart",
		.ep_flags = ENF_OUT | PAL_EP_EGRESS_CIDR | PAL_EP_EGRESS_DENY | PAL_EP_EGRESS_DENY_CIDR,
		.pol = { SUMMARY(REGION, OUT, PAL_POL_ALL, 50), SUMMARY(REGION | 1, OUT_DENY, PAL_POL_ALL, 61) },
		.cidr = { { IP4(203, 0, 113, 0), 24, OUT, REGION }, { IP4(8, 8, 0, 0), 16, OUT_DENY, REGION | 1 } },
		.steps = {
			{ FROM_POD, { TCP(POD, 40000, CIDR_PEER, 443, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 50 },
			{ FROM_POD, { TCP(POD, 40000, WORLD_PEER, 443, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_NONE },
		},
	},
	{
		/* The CLUSTER allow class: a pod identity, a remote node, the API
		 * server; world is dropped (the default deny). */
		.desc = "CLUSTER allow class: pods, remote node, API server; not world",
		.ep_flags = ENF_IN | PAL_EP_INGRESS_CLUSTER,
		.pol = { SUMMARY(PAL_ID_CLUSTER, IN, PAL_POL_ALL, 70) },
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 70, .ev = { PAL_FLOW_NEW, 0, 70 } },
			{ TO_POD, { TCP(REMOTE, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 70 },
			{ TO_POD, { TCP(APISERVER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 70 },
			{ TO_POD, { TCP(LPM_PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 70 },
			{ TO_POD, { TCP(INIT_POD, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 70 },
			{ TO_POD, { TCP(WORLD_PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE,
			  .ev = { PAL_FLOW_DROP, PAL_FLOWF_DEFAULT_DENY, 901 } },
			{ TO_POD, { TCP(CIDR_PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE },
		},
	},
	{
		/* With the host rule off, the host is an ordinary peer: in the cluster. */
		.desc = "CLUSTER allow class matches the host when the host rule is off",
		.host_blocked = true,
		.ep_flags = ENF_IN | PAL_EP_INGRESS_CLUSTER,
		.pol = { SUMMARY(PAL_ID_CLUSTER, IN, PAL_POL_TCP_PORTS, 70), PORT(PAL_ID_CLUSTER, IN, IPPROTO_TCP, 8080, 71) },
		.steps = {
			{ TO_POD, { TCP(HOST, 50000, POD, 8080, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 71 },
			{ TO_POD, { TCP(HOST, 50000, POD, 8081, TH_SYN) }, PAL_DROP_POLICY, CT_NONE },
		},
	},
	{
		/* The endpoint's CLUSTER flag gates the lookup. */
		.desc = "CLUSTER entries without the endpoint's CLUSTER flag: DROP_POLICY",
		.ep_flags = ENF_IN | PAL_EP_EGRESS_CLUSTER,
		.pol = { SUMMARY(PAL_ID_CLUSTER, IN, PAL_POL_ALL, 70) },
		.steps = { { TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY, CT_NONE } },
	},
	{
		/* A deny entry written under a connection that was allowed revokes it
		 * at its next packet, both ways, attributed to the deny rule (no
		 * default deny in the event). */
		.desc = "stale entry revoked by a new deny entry: DROP_REVOKED, the deny rule",
		.ep_flags = ENF_IN,
		.pol = { SUMMARY(PEER_ID, IN, PAL_POL_TCP_PORTS, 10), PORT(PEER_ID, IN, IPPROTO_TCP, 80, 11) },
		.later = { SUMMARY(PEER_ID, IN_DENY, PAL_POL_ALL, 21) },
		.later_flags = ENF_IN | PAL_EP_INGRESS_DENY,
		.steps = {
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_ALLOW_POLICY, CT_CREATED, 11 },
			{ FROM_POD, { TCP(POD, 80, PEER, 40000, TH_SYN | TH_ACK) }, PAL_ALLOW_REPLY, CT_KEPT, 11 },
			{ LATER },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 21,
			  .ev = { PAL_FLOW_DROP, 0, 21 } },
			{ FROM_POD, { TCP(POD, 80, PEER, 40000, TH_ACK) }, PAL_DROP_REVOKED, CT_REVOKED, 21,
			  .ev = { PAL_FLOW_DROP, 0, 21 } },
			{ TO_POD, { TCP(PEER, 40000, POD, 80, TH_SYN) }, PAL_DROP_POLICY_DENY, CT_REVOKED, 21,
			  .ev = { PAL_FLOW_DROP, 0, 21 } },
		},
	},
	{
		/* Revocation by a deny entry in a direction nothing enforces: the
		 * pod's own outgoing connection, opened unselected. */
		.desc = "unenforced egress connection revoked by a new deny entry",
		.ep_flags = 0,
		.later = { SUMMARY(PAL_ID_CLUSTER, OUT_DENY, PAL_POL_UDP_PORTS, 20), PORT(PAL_ID_CLUSTER, OUT_DENY, IPPROTO_UDP, 53, 23) },
		.later_flags = PAL_EP_EGRESS_DENY | PAL_EP_EGRESS_DENY_CLUSTER,
		.steps = {
			{ FROM_POD, { UDP(POD, 5000, PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ FROM_POD, { UDP(POD, 5001, WORLD_PEER, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0 },
			{ LATER },
			{ TO_POD, { UDP(PEER, 53, POD, 5000) }, PAL_DROP_REVOKED, CT_REVOKED, 23, .ev = { PAL_FLOW_DROP, 0, 23 } },
			{ FROM_POD, { UDP(POD, 5001, WORLD_PEER, 53) }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 0 },
		},
	},

	/* ---- the DNS proxy's redirect (docs/adr/0012-dns-redirect.md) ---- */
	{
		/* The egress policy judges the upstream (rule 21); then the query
		 * goes to the proxy, counted as PASS_DNS_REDIRECT, its NEW event
		 * still naming the upstream and the decision's reason. The proxy's
		 * reply comes back from the upstream, as a reply of that connection;
		 * revoking it stops both. */
		.desc = "DNS over UDP while the proxy's lease runs: to the proxy after the policy allowed the upstream, and back",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS | PAL_POL_TCP_PORTS, 20),
			 PORT(PEER_ID, OUT, IPPROTO_UDP, 53, 21), PORT(PEER_ID, OUT, IPPROTO_TCP, 53, 22) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 21,
			  .ev = { PAL_FLOW_NEW, PAL_FLOWF_DNS_PROXY, 21, PAL_ALLOW_POLICY },
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40000), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 21,
			  .out = TUPLE(UPSTREAM, 53, POD, 40000), .flow = TUPLE(UPSTREAM, 53, POD, 40000), .dns_entries = DNS_ENTRIES(1) },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ REVOKE },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53) }, PAL_DROP_REVOKED, CT_REVOKED, 902 },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40000) }, PAL_DROP_REVOKED, CT_REVOKED, 902,
			  .flow = TUPLE(UPSTREAM, 53, POD, 40000) },
		},
	},
	{
		/* TCP: the SYN follows the lease, the rest of the connection its SYN,
		 * even once the lease has passed. */
		.desc = "DNS over TCP: the SYN goes to the proxy, and the whole connection, lease or not",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS | PAL_POL_TCP_PORTS, 20),
			 PORT(PEER_ID, OUT, IPPROTO_UDP, 53, 21), PORT(PEER_ID, OUT, IPPROTO_TCP, 53, 22) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_SYN), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 22,
			  .ev = { PAL_FLOW_NEW, PAL_FLOWF_DNS_PROXY, 22, PAL_ALLOW_POLICY },
			  .out = TUPLE(POD, 41000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { TCP(PROXY, PROXY_PORT, POD, 41000, TH_SYN | TH_ACK), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 22,
			  .out = TUPLE(UPSTREAM, 53, POD, 41000), .flow = TUPLE(UPSTREAM, 53, POD, 41000) },
			{ LEASE_OFF },
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_ACK), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 22,
			  .out = TUPLE(POD, 41000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { TCP(PROXY, PROXY_PORT, POD, 41000, TH_ACK), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 22,
			  .out = TUPLE(UPSTREAM, 53, POD, 41000), .flow = TUPLE(UPSTREAM, 53, POD, 41000) },
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_FIN | TH_ACK), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 22,
			  true, .out = TUPLE(POD, 41000, PROXY, PROXY_PORT) },
		},
	},
	{
		/* The fallback: no proxy alive (alive_until 0, then passed), the
		 * datagram goes to the upstream untouched. UDP follows the lease
		 * datagram by datagram; a reply the proxy sends late is still
		 * translated (its flow's DNS entry is there). */
		.desc = "DNS over UDP without a live lease: to the upstream untouched, datagram by datagram",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS, 20), PORT(PEER_ID, OUT, IPPROTO_UDP, 53, 21) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = false,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_ALLOW_POLICY, CT_CREATED, 21,
			  .ev = { PAL_FLOW_NEW, 0, 21 }, .out = TUPLE(POD, 40000, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(0) },
			{ LEASE_ON },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ LEASE_OFF },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { UDP(UPSTREAM, 53, POD, 40000), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 21,
			  .out = TUPLE(UPSTREAM, 53, POD, 40000) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40000), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 21,
			  .out = TUPLE(UPSTREAM, 53, POD, 40000), .flow = TUPLE(UPSTREAM, 53, POD, 40000) },
		},
	},
	{
		/* A connection that started to the upstream stays there; a SYN sent
		 * again without a lease forgets the DNS entry of its first try. */
		.desc = "DNS over TCP without a live lease: the connection goes to the upstream and stays",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 20), PORT(PEER_ID, OUT, IPPROTO_TCP, 53, 22) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = false,
		.steps = {
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_SYN), .csum = true }, PAL_ALLOW_POLICY, CT_CREATED, 22,
			  .out = TUPLE(POD, 41000, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(0) },
			{ LEASE_ON },
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_ACK), .csum = true }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 22,
			  .out = TUPLE(POD, 41000, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { TCP(POD, 41001, UPSTREAM, 53, TH_SYN), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 22,
			  .out = TUPLE(POD, 41001, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ LEASE_OFF },
			{ FROM_POD, { TCP(POD, 41001, UPSTREAM, 53, TH_SYN), .csum = true }, PAL_ALLOW_POLICY, CT_REPLACED, 22,
			  .out = TUPLE(POD, 41001, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { TCP(POD, 41001, UPSTREAM, 53, TH_ACK), .csum = true }, PAL_ALLOW_ESTABLISHED, CT_KEPT, 22,
			  .out = TUPLE(POD, 41001, UPSTREAM, 53) },
		},
	},
	{
		/* Only an endpoint with the flag is redirected. */
		.desc = "DNS redirect flag off: the query goes to the upstream, lease or not",
		.ep_flags = ENF_IN,
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_UNSELECTED, CT_CREATED, 0,
			  .out = TUPLE(POD, 40000, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_SYN), .csum = true }, PAL_PASS_UNSELECTED, CT_CREATED, 0,
			  .out = TUPLE(POD, 41000, UPSTREAM, 53), .dns_entries = DNS_ENTRIES(0) },
		},
	},
	{
		/* Only UDP and TCP to port 53 of a listed upstream; an unenforced
		 * egress is redirected too (the event keeps PASS_UNSELECTED). */
		.desc = "DNS redirect: an address not listed, another port or protocol are left alone",
		.ep_flags = ENF_IN | DNS_EP,
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, WORLD_PEER, 53), .csum = true }, PAL_PASS_UNSELECTED, CT_CREATED, 0,
			  .out = TUPLE(POD, 40000, WORLD_PEER, 53), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(POD, 40001, UPSTREAM, 54), .csum = true }, PAL_PASS_UNSELECTED, CT_CREATED, 0,
			  .out = TUPLE(POD, 40001, UPSTREAM, 54), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { SCTP(POD, 40002, UPSTREAM, 53) }, PAL_PASS_UNSELECTED, CT_CREATED, 0, .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(POD, 40003, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 0,
			  .ev = { PAL_FLOW_NEW, PAL_FLOWF_DNS_PROXY, 0, PAL_PASS_UNSELECTED },
			  .out = TUPLE(POD, 40003, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
		},
	},
	{
		/* The redirect comes after the policy: what it denies is dropped. */
		.desc = "a DNS query the policy denies is dropped, not redirected",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_TCP_PORTS, 20), PORT(PEER_ID, OUT, IPPROTO_TCP, 53, 22) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53) }, PAL_DROP_POLICY, CT_NONE,
			  .ev = { PAL_FLOW_DROP, PAL_FLOWF_DEFAULT_DENY, 902 }, .dns_entries = DNS_ENTRIES(0) },
		},
	},
	{
		/* The pod's own flow to the proxy's port makes no DNS entry, and its
		 * replies stay as they are; a forged source is dropped before it
		 * could; a reply from another port or address is not translated;
		 * and the pod's direct flow on a DNS entry's tuple replaces it. */
		.desc = "DNS redirect: the pod cannot make the reverse path rewrite other traffic",
		.ep_flags = ENF_IN | DNS_EP,
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, PROXY, PROXY_PORT), .csum = true }, PAL_PASS_UNSELECTED, CT_CREATED, 0,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(0) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40000), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 0,
			  .out = TUPLE(PROXY, PROXY_PORT, POD, 40000), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(IP4(10, 0, 1, 6), 40001, UPSTREAM, 53) }, PAL_DROP_SPOOFED, CT_NONE,
			  .dns_entries = DNS_ENTRIES(0) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, IP4(10, 0, 1, 6), 40001), .csum = true }, PAL_ALLOW_POLICY, CT_CREATED, 0,
			  .out = TUPLE(PROXY, PROXY_PORT, IP4(10, 0, 1, 6), 40001), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(POD, 40002, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 0,
			  .out = TUPLE(POD, 40002, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT + 1, POD, 40002), .csum = true }, PAL_ALLOW_POLICY, CT_CREATED, 0,
			  .out = TUPLE(PROXY, PROXY_PORT + 1, POD, 40002), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { UDP(REMOTE, PROXY_PORT, POD, 40002) }, PAL_DROP_POLICY, CT_NONE, .dns_entries = DNS_ENTRIES(1) },
			{ FROM_POD, { UDP(POD, 40002, PROXY, PROXY_PORT), .csum = true }, PAL_PASS_UNSELECTED, CT_REPLACED, 0,
			  .out = TUPLE(POD, 40002, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(0) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40002), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 0,
			  .out = TUPLE(PROXY, PROXY_PORT, POD, 40002), .dns_entries = DNS_ENTRIES(0) },
			/* a query on that tuple takes it back */
			{ FROM_POD, { UDP(POD, 40002, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 0,
			  .out = TUPLE(POD, 40002, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1), .converts = true },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40002), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 0,
			  .out = TUPLE(UPSTREAM, 53, POD, 40002), .flow = TUPLE(UPSTREAM, 53, POD, 40002) },
		},
	},
	{
		/* The reverse path reads the proxy's address and the upstream's port
		 * as they are now: a reply from the port the upstream no longer has
		 * is not translated, and is judged as it is (from the host: the
		 * host rule), taking its tuple over from the DNS entry; the next
		 * query goes to the new port. */
		.desc = "DNS redirect: a reply from a port or address that is no longer the proxy's is not translated",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS, 20), PORT(PEER_ID, OUT, IPPROTO_UDP, 53, 21) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 21,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ REMAP },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40000), .csum = true }, PAL_ALLOW_POLICY, CT_REPLACED, 0,
			  .out = TUPLE(PROXY, PROXY_PORT, POD, 40000), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT + 1), .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT + 1, POD, 40000), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 21,
			  .out = TUPLE(UPSTREAM, 53, POD, 40000), .flow = TUPLE(UPSTREAM, 53, POD, 40000) },
			/* and one from an address that is no longer the proxy's */
			{ MOVE_PROXY },
			{ TO_POD, { UDP(PROXY, PROXY_PORT + 1, POD, 40000), .csum = true }, PAL_ALLOW_POLICY, CT_REPLACED, 0,
			  .out = TUPLE(PROXY, PROXY_PORT + 1, POD, 40000), .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, HOST_API, PROXY_PORT + 1), .dns_entries = DNS_ENTRIES(1) },
		},
	},
	{
		/* PAL_EP_DNS_NO_FALLBACK: a pod whose DNS rules the proxy enforces
		 * does not get around them while no proxy runs. */
		.desc = "DNS redirect without fallback: no live proxy, the query is dropped (DROP_DNS_NO_PROXY)",
		.ep_flags = ENF_BOTH | DNS_EP | PAL_EP_DNS_NO_FALLBACK,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS | PAL_POL_TCP_PORTS, 20),
			 PORT(PEER_ID, OUT, IPPROTO_UDP, 53, 21), PORT(PEER_ID, OUT, IPPROTO_TCP, 53, 22),
			 SUMMARY(PAL_ID_WORLD, OUT, PAL_POL_UDP_PORTS, 23), PORT(PAL_ID_WORLD, OUT, IPPROTO_UDP, 53, 24) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = false,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53) }, PAL_DROP_DNS_NO_PROXY, CT_CREATED, 21,
			  .ev = { PAL_FLOW_DROP, 0, 0 }, .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { TCP(POD, 41000, UPSTREAM, 53, TH_SYN) }, PAL_DROP_DNS_NO_PROXY, CT_CREATED, 22,
			  .dns_entries = DNS_ENTRIES(0) },
			{ FROM_POD, { UDP(POD, 40001, WORLD_PEER, 53), .csum = true }, PAL_ALLOW_POLICY, CT_CREATED, 24,
			  .out = TUPLE(POD, 40001, WORLD_PEER, 53) },
			{ LEASE_ON },
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
		},
	},
	{
		/* Service translation first: the policy judges the backend, which is
		 * the upstream; the proxy's reply gets the backend's address back,
		 * then the ClusterIP's. */
		.desc = "DNS to the DNS Service's ClusterIP: translated to the backend, judged, then to the proxy, and back",
		.ep_flags = ENF_BOTH | DNS_EP,
		.pol = { SUMMARY(PEER_ID, OUT, PAL_POL_UDP_PORTS, 20), PORT(PEER_ID, OUT, IPPROTO_UDP, 53, 21) },
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.svc = { CLUSTER_IP, 53, IPPROTO_UDP, UPSTREAM, 53 },
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, CLUSTER_IP, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 21,
			  .ev = { PAL_FLOW_NEW, PAL_FLOWF_SERVICE | PAL_FLOWF_DNS_PROXY, 21, PAL_ALLOW_POLICY },
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .flow = TUPLE(POD, 40000, UPSTREAM, 53),
			  .dns_entries = DNS_ENTRIES(1) },
			{ TO_POD, { UDP(PROXY, PROXY_PORT, POD, 40000), .csum = true }, PAL_ALLOW_REPLY, CT_KEPT, 21,
			  .out = TUPLE(CLUSTER_IP, 53, POD, 40000), .flow = TUPLE(UPSTREAM, 53, POD, 40000) },
			{ FROM_POD, { UDP(POD, 40000, CLUSTER_IP, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_KEPT, 21,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .flow = TUPLE(POD, 40000, UPSTREAM, 53) },
		},
	},
	{
		/* The DNS entry counts against the endpoint's budget: a query whose
		 * entry does not fit is dropped, neither redirected (its reply could
		 * not come back) nor sent around the proxy. */
		.desc = "DNS redirect over the conntrack budget: DROP_CT_FULL",
		.small_budget = true,
		.ep_flags = DNS_EP,
		.upstreams = { { UPSTREAM, PROXY_PORT } }, .proxy = PROXY, .lease = true,
		.steps = {
			{ FROM_POD, { UDP(POD, 40000, UPSTREAM, 53), .csum = true }, PAL_PASS_DNS_REDIRECT, CT_CREATED, 0,
			  .out = TUPLE(POD, 40000, PROXY, PROXY_PORT), .dns_entries = DNS_ENTRIES(1) },
			{ FROM_POD, { UDP(POD, 40001, UPSTREAM, 53) }, PAL_DROP_CT_FULL, CT_CREATED, 0, .dns_entries = DNS_ENTRIES(1) },
		},
	},
};

#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* ---- packets ------------------------------------------------------------- */

static __u16 csum16(const __u8 *p, size_t n)
{
	__u32 sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (n & 1)
		sum += p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

static void put16(__u8 *p, __u16 v) { p[0] = v >> 8; p[1] = v; }
static void put32(__u8 *p, __u32 v) { put16(p, v >> 16); put16(p + 2, v); }

/* The IPv4 header at ip and the transport header (+ 8 bytes of payload)
 * after it; ICMP errors quote `quoted` as their payload. Returns the
 * length from ip. */
static size_t build_ipv4(const struct pkt *pk, __u8 *ip)
{
	size_t ihl = pk->ihl ? pk->ihl : 5, hl = ihl < 5 ? 20 : ihl * 4, l4len, len;
	__u8 *th = ip + hl;
	bool error = pk->proto == IPPROTO_ICMP &&
		     (pk->icmp_type == 3 || pk->icmp_type == 11 || pk->icmp_type == 12);

	switch (pk->proto) {
	case IPPROTO_TCP:
		l4len = 20;
		put16(th, pk->sport);
		put16(th + 2, pk->dport);
		put32(th + 4, 1000);                       /* seq */
		put32(th + 8, pk->tcp_flags & TH_ACK ? 2000 : 0);
		th[12] = 5 << 4;                           /* data offset */
		th[13] = pk->tcp_flags;
		put16(th + 14, 65535);                     /* window */
		break;
	case IPPROTO_UDP:
		l4len = 8;
		put16(th, pk->sport);
		put16(th + 2, pk->dport);
		put16(th + 4, 8 + 8);
		break;
	case IPPROTO_SCTP:
		l4len = 12;
		put16(th, pk->sport);
		put16(th + 2, pk->dport);
		put32(th + 4, 0x12345678);                 /* verification tag */
		break;
	default:                                           /* ICMP */
		l4len = 8;
		th[0] = pk->icmp_type;
		th[1] = pk->icmp_code;
		if (error) {
			put16(th + 6, 1400);                       /* next-hop MTU */
		} else {
			put16(th + 4, 0x4242);                     /* echo id, seq */
			put16(th + 6, 1);
		}
		break;
	}
	if (error) {                                       /* the quoted header + 8 bytes */
		const struct quoted *q = &pk->quoted;
		struct pkt inner = {
			.proto = q->proto, .saddr = q->saddr, .daddr = q->daddr,
			.sport = q->sport, .dport = q->dport, .frag_off = q->frag_off,
			.tcp_flags = TH_ACK, .icmp_type = 8,
		};

		build_ipv4(&inner, th + l4len);
		len = hl + l4len + 20 + 8;
	} else {
		memcpy(th + l4len, "palisade", 8);
		len = hl + l4len + 8;
	}

	ip[0] = 0x40 | (ihl & 0xf);
	put16(ip + 2, len);
	put16(ip + 4, pk->ipid ? pk->ipid : 0x1234);
	put16(ip + 6, pk->frag_off);
	ip[8] = 64;
	ip[9] = pk->proto;
	put32(ip + 12, pk->saddr);
	put32(ip + 16, pk->daddr);
	memset(ip + 20, 0x01, hl - 20);                    /* options: NOPs */
	memcpy(ip + 10, (__u16[]){ csum16(ip, hl) }, 2);
	if (pk->csum && (pk->proto == IPPROTO_TCP || pk->proto == IPPROTO_UDP)) {
		__u8 pseudo[12 + 64];
		size_t seg = len - hl;

		memcpy(pseudo, ip + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = pk->proto;
		put16(pseudo + 10, seg);
		memcpy(pseudo + 12, th, seg);
		memcpy(th + (pk->proto == IPPROTO_TCP ? 16 : 6), (__u16[]){ csum16(pseudo, 12 + seg) }, 2);
	}
	return len;
}

/* ARP for IPv4 over Ethernet at p: sender saddr, target daddr. */
static size_t build_arp(const struct pkt *pk, __u8 *p)
{
	static const __u8 mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	__u8 plen = pk->arp_plen ? pk->arp_plen : 4;

	put16(p, 1);                                       /* hardware: Ethernet */
	put16(p + 2, 0x0800);                              /* protocol: IPv4 */
	p[4] = 6;
	p[5] = plen;
	put16(p + 6, pk->arp_op);
	memcpy(p + 8, mac, 6);
	put32(p + 14, pk->saddr);
	put32(p + 24, pk->daddr);                          /* target MAC (18..23) zero */
	return 28;
}

/* Ethernet (+ VLAN tags) + IPv4 (+ options) + transport header + 8 bytes
 * of payload, or ARP, or an Ethernet header of another type and zeros. */
static size_t build_packet(const struct pkt *pk, __u8 *buf, size_t cap)
{
	static const __u8 mac_dst[6] = { 0x02, 0, 0, 0, 0, 0x01 }, mac_src[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	size_t l3 = 12, len;

	memset(buf, 0, cap);
	memcpy(buf, mac_dst, 6);
	memcpy(buf + 6, mac_src, 6);
	for (int i = 0; i < 2 && pk->tags[i]; i++, l3 += 4)
		put16(buf + l3, pk->tags[i]);              /* TCI 0: priority 0, VID 0 */
	put16(buf + l3, pk->ethertype ? pk->ethertype : 0x0800);
	l3 += 2;
	if (pk->ethertype == ETH_ARP)
		len = l3 + build_arp(pk, buf + l3);
	else if (pk->ethertype)
		len = 64;
	else
		len = l3 + build_ipv4(pk, buf + l3);
	return pk->len ? pk->len : len;
}

static void print_hex(const __u8 *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		printf("%s%02x", i % 16 ? " " : "\n      ", buf[i]);
	printf("\n");
}

/* ---- loading and maps ---------------------------------------------------- */

struct loaded {
	struct bpf_object *obj;
	int from_pod, to_pod, clock;
	int endpoints, ipcache4, ipcache, policy, policy_cidr, policy_ports, ct4, config, metrics, frag4, ct_budget, drop_agg;
	int dns_upstreams, dns_proxy, lb4, lb4_backends;
	struct ring_buffer *flows; /* pal_flows: the events of each packet step */
};

/* The flow events read since the last drain. */
#define MAX_EVENTS 8
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

/* Reads every event the ring holds into `events`, after forgetting the last ones. */
static void read_events(const struct loaded *l)
{
	n_events = 0;
	if (l->flows)
		ring_buffer__consume(l->flows);
}

/* test-tagged.bpf.o: pushes a VLAN tag into the skb's metadata (what the
 * kernel's receive path does with a tagged frame before tc sees it, which
 * test_run's skb cannot be given otherwise) and tail-calls slot 0 of its
 * prog array, set to the program under test before each run. */
struct tagged {
	struct bpf_object *obj;
	int run, target;
};

static struct tagged tagged;
#define SMALL_BUDGET 3

static int ncpus;

static int map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	return m ? bpf_map__fd(m) : -1;
}

/* Sets a `const volatile` global before load, found by name in .rodata's BTF. */
static int set_rodata_u32(struct bpf_object *obj, const char *var, __u32 value)
{
	struct btf *btf = bpf_object__btf(obj);
	int sec_id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	struct bpf_map *map = NULL, *m;
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	size_t size;

	bpf_object__for_each_map(m, obj)
		if (bpf_map__is_internal(m) && strstr(bpf_map__name(m), ".rodata"))
			map = m;
	if (sec_id < 0 || !map)
		return -1;
	sec = btf__type_by_id(btf, sec_id);
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *t = btf__type_by_id(btf, vs->type);
		const void *init = bpf_map__initial_value(map, &size);
		__u8 data[size];

		if (strcmp(btf__name_by_offset(btf, t->name_off), var) || vs->size != sizeof(value))
			continue;
		memcpy(data, init, size);
		memcpy(data + vs->offset, &value, sizeof(value));
		return bpf_map__set_initial_value(map, data, size);
	}
	return -1;
}

static int load_tagged(const char *path)
{
	tagged.obj = bpf_object__open_file(path, NULL);
	if (!tagged.obj || bpf_object__load(tagged.obj)) {
		fprintf(stderr, "load %s: %s\n", path, strerror(errno));
		return -1;
	}
	tagged.run = bpf_program__fd(bpf_object__find_program_by_name(tagged.obj, "tagged_run"));
	tagged.target = map_fd(tagged.obj, "tagged_target");
	return tagged.run < 0 || tagged.target < 0 ? -1 : 0;
}

static int load(const char *path, bool host_reaches_pods, __u32 ct_endpoint_max, struct loaded *l)
{
	struct bpf_map *m;

	l->obj = bpf_object__open_file(path, NULL);
	if (!l->obj) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* The maps are declared LIBBPF_PIN_BY_NAME: without this, load would
	 * reuse (or create) pins under /sys/fs/bpf and share a running agent's maps. */
	bpf_object__for_each_map(m, l->obj)
		bpf_map__set_pin_path(m, NULL);
	if (!host_reaches_pods && set_rodata_u32(l->obj, "pal_host_reaches_pods", 0)) {
		fprintf(stderr, "cannot set pal_host_reaches_pods\n");
		return -1;
	}
	if (ct_endpoint_max && set_rodata_u32(l->obj, "pal_ct_endpoint_max", ct_endpoint_max)) {
		fprintf(stderr, "cannot set pal_ct_endpoint_max\n");
		return -1;
	}
	if (bpf_object__load(l->obj)) {
		fprintf(stderr, "load %s: %s\n", path, strerror(errno));
		return -1;
	}
	bpf_object__for_each_map(m, l->obj)
		if (bpf_map__is_pinned(m)) {
			fprintf(stderr, "map %s got pinned\n", bpf_map__name(m));
			return -1;
		}
	l->from_pod = bpf_program__fd(bpf_object__find_program_by_name(l->obj, "pal_from_pod"));
	l->to_pod = bpf_program__fd(bpf_object__find_program_by_name(l->obj, "pal_to_pod"));
	l->clock = bpf_program__fd(bpf_object__find_program_by_name(l->obj, "pal_clock"));
	l->endpoints = map_fd(l->obj, "pal_endpoints");
	l->ipcache4 = map_fd(l->obj, "pal_ipcache4");
	l->ipcache = map_fd(l->obj, "pal_ipcache");
	l->policy = map_fd(l->obj, "pal_policy");
	l->policy_cidr = map_fd(l->obj, "pal_policy_cidr");
	l->policy_ports = map_fd(l->obj, "pal_policy_ports");
	l->ct4 = map_fd(l->obj, "pal_ct4");
	l->config = map_fd(l->obj, "pal_config");
	l->metrics = map_fd(l->obj, "pal_metrics");
	/* Absent from objects older than issue 7: the runner still judges those
	 * (their new fixtures fail), which is how the new fixtures were seen
	 * failing first. */
	l->frag4 = map_fd(l->obj, "pal_frag4");
	l->ct_budget = map_fd(l->obj, "pal_ct_budget");
	l->drop_agg = map_fd(l->obj, "pal_drop_agg");
	l->dns_upstreams = map_fd(l->obj, "pal_dns_upstreams");
	l->dns_proxy = map_fd(l->obj, "pal_dns_proxy");
	l->lb4 = map_fd(l->obj, "pal_lb4");
	l->lb4_backends = map_fd(l->obj, "pal_lb4_backends");
	l->flows = map_fd(l->obj, "pal_flows") < 0 ? NULL : ring_buffer__new(map_fd(l->obj, "pal_flows"), on_event, NULL, NULL);
	if (l->from_pod < 0 || l->to_pod < 0 || l->clock < 0 || l->endpoints < 0 || l->ipcache4 < 0 || l->ipcache < 0 ||
	    l->policy < 0 || l->policy_cidr < 0 || l->ct4 < 0 || l->config < 0 || l->metrics < 0) {
		fprintf(stderr, "%s: a program or map is missing\n", path);
		return -1;
	}
	return 0;
}

static void clear_hash(int fd)
{
	__u8 key[64];

	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		bpf_map_delete_elem(fd, key);
}

static void reset(const struct loaded *l)
{
	struct datapath_config cfg = { .policy_revision = REVISION };
	struct metrics_value zero[ncpus];
	__u32 k0 = 0;

	clear_hash(l->endpoints);
	clear_hash(l->ipcache4);
	clear_hash(l->ipcache);
	clear_hash(l->policy);
	clear_hash(l->policy_cidr);
	clear_hash(l->policy_ports);
	clear_hash(l->ct4);
	clear_hash(l->frag4);
	clear_hash(l->ct_budget);
	if (l->drop_agg >= 0)
		clear_hash(l->drop_agg); /* each fixture's first drop of a kind writes its event */
	if (l->dns_upstreams >= 0) {
		struct dns_proxy none = { 0 };

		clear_hash(l->dns_upstreams);
		bpf_map_update_elem(l->dns_proxy, &k0, &none, BPF_ANY);
	}
	if (l->lb4 >= 0) {
		clear_hash(l->lb4);
		clear_hash(l->lb4_backends);
	}
	read_events(l);
	memset(zero, 0, sizeof(zero));
	for (__u32 r = 0; r < PAL_METRICS_MAX; r++)
		bpf_map_update_elem(l->metrics, &r, zero, BPF_ANY);
	bpf_map_update_elem(l->config, &k0, &cfg, BPF_ANY);
}

static void put_ipcache4(int fd, __u32 addr, __u32 identity)
{
	__u32 key = htonl(addr);
	struct ipcache_value v = { .identity = identity };

	bpf_map_update_elem(fd, &key, &v, BPF_ANY);
}

static void put_ipcache(int fd, __u32 addr, __u32 plen, __u32 identity)
{
	struct ipcache_key k = { .prefixlen = 32 + plen, .family = PAL_AF_INET };
	struct ipcache_value v = { .identity = identity };
	__u32 a = htonl(addr);

	memcpy(k.addr, &a, 4);
	bpf_map_update_elem(fd, &k, &v, BPF_ANY);
}

static int seed_policy(const struct loaded *l, const struct pol *list)
{
	int err = 0;

	for (const struct pol *p = list; p->rule; p++) {
		struct policy_key k = {
			.endpoint_id = p->endpoint_id ? p->endpoint_id : EP_ID,
			.identity = p->class, .direction = p->dir, .protocol = p->proto, .dport = p->port,
		};
		struct policy_value v = { .rule_id = p->rule, .flags = p->flags };

		err |= bpf_map_update_elem(l->policy, &k, &v, BPF_ANY);
	}
	return err;
}

static void set_lease(const struct loaded *l, __u32 proxy, bool alive);

static int seed(const struct loaded *l, const struct fixture *f)
{
	__u32 ifindex = f->ep_ifindex ? f->ep_ifindex : EP_IFINDEX;
	struct endpoint_info ep = {
		.endpoint_id = EP_ID, .identity = 300, .flags = f->ep_flags,
		.ingress_default_rule = 901, .egress_default_rule = 902, .ipv4 = htonl(POD),
	};
	int err = 0;

	if (!f->no_endpoint)
		err |= bpf_map_update_elem(l->endpoints, &ifindex, &ep, BPF_ANY);
	put_ipcache4(l->ipcache4, POD, 300);
	put_ipcache4(l->ipcache4, PEER, PEER_ID);
	put_ipcache4(l->ipcache4, HOST, PAL_ID_HOST);
	put_ipcache4(l->ipcache4, REMOTE, PAL_ID_REMOTE_NODE);
	put_ipcache4(l->ipcache4, APISERVER, PAL_ID_KUBE_APISERVER);
	put_ipcache4(l->ipcache4, HOST_API, PAL_ID_HOST_KUBE_APISERVER);
	put_ipcache4(l->ipcache4, INIT_POD, PAL_ID_INIT);
	put_ipcache(l->ipcache, IP4(192, 168, 0, 0), 16, LPM_ID);
	put_ipcache(l->ipcache, IP4(10, 0, 0, 0), 8, NET10_ID);
	err |= seed_policy(l, f->pol);
	for (const struct prange *r = f->ranges; r->rule; r++) {
		struct policy_port_key k = {
			.prefixlen = 80 + r->bits, .endpoint_id = EP_ID, .identity = r->class,
			.direction = r->dir, .protocol = r->proto, .dport = htons(r->port),
		};
		struct policy_value v = { .rule_id = r->rule };

		err |= bpf_map_update_elem(l->policy_ports, &k, &v, BPF_ANY);
	}
	for (const struct cidr *c = f->cidr; c->region; c++) {
		struct policy_cidr_key k = {
			.prefixlen = 64 + c->plen, .endpoint_id = EP_ID, .direction = c->dir, .family = PAL_AF_INET,
		};
		struct policy_cidr_value v = { .identity = c->region };
		__u32 a = htonl(c->addr);

		memcpy(k.addr, &a, 4);
		err |= bpf_map_update_elem(l->policy_cidr, &k, &v, BPF_ANY);
	}
	for (int i = 0; i < 2 && f->upstreams[i].addr; i++) {
		__u32 k = htonl(f->upstreams[i].addr);
		struct dns_upstream v = { .proxy_port = htons(f->upstreams[i].proxy_port) };

		err |= bpf_map_update_elem(l->dns_upstreams, &k, &v, BPF_ANY);
	}
	if (f->proxy)
		set_lease(l, f->proxy, f->lease);
	if (f->svc.addr) {
		struct lb4_key fk = { .addr = htonl(f->svc.addr), .port = f->svc.port, .protocol = f->svc.proto };
		struct lb4_backend_key bk = { .frontend = fk, .slot = 0 };
		struct lb4_backend b = { .addr = htonl(f->svc.backend), .port = f->svc.backend_port };
		struct lb4_service svc = { .count = 1 };

		err |= bpf_map_update_elem(l->lb4_backends, &bk, &b, BPF_ANY);
		err |= bpf_map_update_elem(l->lb4, &fk, &svc, BPF_ANY);
	}
	return err;
}

/* ---- running the steps --------------------------------------------------- */

#define FAIL(...) (snprintf(why, whylen, __VA_ARGS__), false)

/* The kernel's jiffies, which user space has no call for: the object's
 * pal_clock returns the low 32 bits, the width of ct_value.last_seen. */
static __u32 now_jiffies(const struct loaded *l)
{
	__u8 frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame));

	return bpf_prog_test_run_opts(l->clock, &opts) ? 0 : opts.retval;
}

/* The whole 64-bit jiffies, the clock of the DNS proxy's lease: pal_clock
 * writes them into the first 8 bytes of its packet (host order), and
 * returns their low 32 bits (*low). */
static __u64 now_jiffies64(const struct loaded *l, __u32 *low)
{
	__u8 frame[64] = { 0 }, out[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .data_out = out,
		    .data_size_out = sizeof(out));
	__u64 now = 0;

	if (bpf_prog_test_run_opts(l->clock, &opts))
		return 0;
	memcpy(&now, out, sizeof(now));
	if (low)
		*low = opts.retval;
	return now;
}

/* pal_dns_proxy: the proxy at `proxy` (host order), alive for a minute of
 * jiffies from now at HZ 1000 (16 s at HZ 250...: longer than any fixture),
 * or with a lease that passed a jiffy ago. */
static void set_lease(const struct loaded *l, __u32 proxy, bool alive)
{
	__u64 now = now_jiffies64(l, NULL);
	struct dns_proxy v = { .addr = htonl(proxy), .alive_until = alive ? now + 60000 : now - 1 };
	__u32 k0 = 0;

	bpf_map_update_elem(l->dns_proxy, &k0, &v, BPF_ANY);
}

static __u32 proxy_of(const struct loaded *l)
{
	struct dns_proxy v = { 0 };
	__u32 k0 = 0;

	bpf_map_lookup_elem(l->dns_proxy, &k0, &v);
	return ntohl(v.addr);
}

/* How many pal_ct4 entries are DNS entries (PAL_NAT_DNS), and how many are
 * not SERVICE or DNS entries (what a step's `ct` effect counts). */
static int count_dns(const struct loaded *l, int *plain)
{
	struct ct4_key key, next;
	struct ct_value v;
	int dns = 0;

	*plain = 0;
	for (void *prev = NULL; bpf_map_get_next_key(l->ct4, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(l->ct4, &key, &v))
			continue;
		dns += v.nat == PAL_NAT_DNS;
		*plain += v.nat != PAL_NAT_DNS && v.nat != PAL_NAT_SERVICE;
	}
	return dns;
}

/* Whether the frame's IPv4 header checksum, and its TCP or UDP checksum
 * (a UDP checksum of 0 means none), are valid. */
static bool checksums_ok(const __u8 *frame, size_t len)
{
	const __u8 *ip = frame + 14;
	size_t hl = (ip[0] & 0xf) * 4, total = ((size_t)ip[2] << 8) | ip[3];
	__u8 pseudo[12 + 256];
	__u32 sum = 0;

	if (len < 14 + total || total > 256)
		return false;
	for (size_t i = 0; i < hl; i += 2)
		sum += (ip[i] << 8) | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return false;
	if (ip[9] != IPPROTO_TCP && ip[9] != IPPROTO_UDP)
		return true;
	if (ip[9] == IPPROTO_UDP && ip[hl + 6] == 0 && ip[hl + 7] == 0)
		return true;
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = ip[9];
	put16(pseudo + 10, total - hl);
	memcpy(pseudo + 12, ip + hl, total - hl);
	return csum16(pseudo, 12 + total - hl) == 0;
}

static void metrics_sum(const struct loaded *l, struct metrics_value sum[PAL_METRICS_MAX])
{
	struct metrics_value percpu[ncpus];

	for (__u32 r = 0; r < PAL_METRICS_MAX; r++) {
		sum[r] = (struct metrics_value){ 0 };
		if (bpf_map_lookup_elem(l->metrics, &r, percpu))
			continue;
		for (int c = 0; c < ncpus; c++) {
			sum[r].packets += percpu[c].packets;
			sum[r].bytes += percpu[c].bytes;
		}
	}
}

/* The flow's entry as the program keys it: from the endpoint's side, so the
 * same key for both directions (to-pod: the endpoint is the destination).
 * Returns whether one exists. */
static bool ct_find(const struct loaded *l, const struct pkt *pk, __u8 dir, struct ct4_key *key,
		    struct ct_value *val)
{
	/* A non-first fragment is judged as its connection (whose ports it
	 * does not carry): the flow's entry is the one with the step's ports. */
	bool ports = pk->proto == IPPROTO_TCP || pk->proto == IPPROTO_UDP || pk->proto == IPPROTO_SCTP;
	bool to_pod = dir == PAL_DIR_INGRESS;
	__u16 sport = ports ? pk->sport : 0, dport = ports ? pk->dport : 0;
	struct ct4_key k = {
		.addr = htonl(to_pod ? pk->daddr : pk->saddr),
		.peer_addr = htonl(to_pod ? pk->saddr : pk->daddr),
		.port = to_pod ? dport : sport,
		.peer_port = to_pod ? sport : dport,
		.protocol = pk->proto,
	};

	*key = k;
	return bpf_map_lookup_elem(l->ct4, key, val) == 0;
}

/* The entry of the connection an ICMP error quotes, at the hook of `dir`:
 * the quoted packet went the other way (an error to the pod quotes what the
 * pod sent). */
static bool ct_find_quoted(const struct loaded *l, const struct pkt *pk, __u8 dir, struct ct_value *val)
{
	const struct quoted *q = &pk->quoted;
	struct pkt quoted = { .proto = q->proto, .saddr = q->saddr, .daddr = q->daddr, .sport = q->sport, .dport = q->dport };
	struct ct4_key key;

	return ct_find(l, &quoted, dir == PAL_DIR_INGRESS ? PAL_DIR_EGRESS : PAL_DIR_INGRESS, &key, val);
}

/* OTHER_EP's entries: another endpoint's connections, written directly. */
static void other_entry(int i, struct ct4_key *k, struct ct_value *v)
{
	*k = (struct ct4_key){ .addr = htonl(IP4(10, 0, 1, 77)), .peer_addr = htonl(PEER), .port = 80,
			       .peer_port = 10000 + i, .protocol = IPPROTO_TCP };
	*v = (struct ct_value){ .revision = REVISION, .rule_id = 5, .last_seen = 12345 + i, .ifindex = EP_IFINDEX + 1 };
}

static int write_other(const struct loaded *l)
{
	struct ct4_key k;
	struct ct_value v;
	int err = 0;

	for (int i = 0; i < OTHER_ENTRIES; i++) {
		other_entry(i, &k, &v);
		err |= bpf_map_update_elem(l->ct4, &k, &v, BPF_NOEXIST);
	}
	return err;
}

static int check_other(const struct loaded *l)
{
	struct ct4_key k;
	struct ct_value v, got;
	int missing = 0;

	for (int i = 0; i < OTHER_ENTRIES; i++) {
		other_entry(i, &k, &v);
		if (bpf_map_lookup_elem(l->ct4, &k, &got) || memcmp(&v, &got, sizeof(v)))
			missing++;
	}
	return missing;
}

static __u32 budget_of(const struct loaded *l, __u32 ifindex)
{
	struct ct_budget b = { 0 };

	bpf_map_lookup_elem(l->ct_budget, &ifindex, &b);
	return b.entries;
}

static void set_budget(const struct loaded *l, __u32 ifindex, __u32 entries)
{
	struct ct_budget b = { .entries = entries };

	bpf_map_update_elem(l->ct_budget, &ifindex, &b, BPF_ANY);
}

/* The accounting invariant: pal_ct_budget counts, per device and in all,
 * the pal_ct4 entries there are. */
static bool budget_consistent(const struct loaded *l, char *why, size_t whylen)
{
	struct ct4_key keys[64];
	struct ct_value v;
	__u32 mine = 0, all = 0;
	int n = 0;

	for (void *prev = NULL; n < 64 && bpf_map_get_next_key(l->ct4, prev, &keys[n]) == 0; prev = &keys[n++])
		;
	for (int i = 0; i < n; i++)
		if (bpf_map_lookup_elem(l->ct4, &keys[i], &v) == 0) {
			all++;
			mine += v.ifindex == EP_IFINDEX;
		}
	if (l->ct_budget >= 0 && (budget_of(l, EP_IFINDEX) != mine || budget_of(l, 0) != all))
		return FAIL("pal_ct_budget counts %u here and %u in all, pal_ct4 holds %u and %u",
			    budget_of(l, EP_IFINDEX), budget_of(l, 0), mine, all);
	return true;
}

static void for_each_ct(const struct loaded *l, void (*fn)(int fd, struct ct4_key *k))
{
	struct ct4_key keys[64];
	int n = 0;

	for (void *prev = NULL; n < 64 && bpf_map_get_next_key(l->ct4, prev, &keys[n]) == 0; prev = &keys[n++])
		;
	for (int i = 0; i < n; i++)
		fn(l->ct4, &keys[i]);
}

static void age_entry(int fd, struct ct4_key *k)
{
	struct ct_value v;

	if (bpf_map_lookup_elem(fd, k, &v) == 0) {
		v.last_seen -= 2 * PAL_CT_REFRESH_JIFFIES;
		bpf_map_update_elem(fd, k, &v, BPF_EXIST);
	}
}

static void rehome_entry(int fd, struct ct4_key *k)
{
	struct ct_value v;

	if (bpf_map_lookup_elem(fd, k, &v) == 0) {
		v.ifindex = EP_IFINDEX + 1;
		bpf_map_update_elem(fd, k, &v, BPF_EXIST);
	}
}

static __u32 revision(const struct loaded *l)
{
	struct datapath_config cfg = { 0 };
	__u32 k0 = 0;

	bpf_map_lookup_elem(l->config, &k0, &cfg);
	return cfg.policy_revision;
}

static void bump(const struct loaded *l)
{
	struct datapath_config cfg = { .policy_revision = revision(l) + 1 };
	__u32 k0 = 0;

	bpf_map_update_elem(l->config, &k0, &cfg, BPF_ANY);
}

/* Runs one packet step; on failure fills `why`. */
static bool run_packet(const struct loaded *l, const struct step *s, __u8 *buf, size_t *len,
		       char *why, size_t whylen)
{
	static struct metrics_value before[PAL_METRICS_MAX], after[PAL_METRICS_MAX];
	bool from_pod = s->kind == FROM_POD || s->kind == FROM_POD_TAGGED;
	bool tag = s->kind == FROM_POD_TAGGED || s->kind == TO_POD_TAGGED;
	__u8 dir = from_pod ? PAL_DIR_EGRESS : PAL_DIR_INGRESS;
	int prog = from_pod ? l->from_pod : l->to_pod;
	struct ct_value quoted_before = { 0 }, quoted_after = { 0 };
	bool quoted_had = false, quoted_has = false;
	__u32 slot = 0;
	int want_verdict = PAL_REASON_IS_DROP(s->reason) ? TC_ACT_SHOT : TC_ACT_OK;
	struct __sk_buff ctx = { .ifindex = EP_IFINDEX };
	struct ct4_key key;
	struct ct_value old = { 0 }, ct;
	bool had, has;
	int n_before, n_after, delta, dns_before, dns_after;
	__u32 t0, t1;
	__u64 pkts = 0;
	__u8 out[256];
	struct pkt flow = s->pkt; /* the connection whose entry is checked */

	*len = build_packet(&s->pkt, buf, 256);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = *len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .data_out = out, .data_size_out = sizeof(out));
	if (s->flow.saddr) {
		flow.saddr = s->flow.saddr;
		flow.daddr = s->flow.daddr;
		flow.sport = s->flow.sport;
		flow.dport = s->flow.dport;
	}

	if (tag) {
		if (bpf_map_update_elem(tagged.target, &slot, &prog, BPF_ANY))
			return FAIL("prog array: %s", strerror(errno));
		prog = tagged.run;
	}
	had = ct_find(l, &flow, dir, &key, &old);
	if (s->quoted_untouched)
		quoted_had = ct_find_quoted(l, &s->pkt, dir, &quoted_before);
	dns_before = count_dns(l, &n_before);
	metrics_sum(l, before);
	read_events(l); /* forget what earlier steps wrote */
	t0 = now_jiffies(l);
	if (bpf_prog_test_run_opts(prog, &opts))
		return FAIL("test_run: %s", strerror(errno));
	t1 = now_jiffies(l);
	metrics_sum(l, after);
	has = ct_find(l, &flow, dir, &key, &ct);
	if (s->quoted_untouched)
		quoted_has = ct_find_quoted(l, &s->pkt, dir, &quoted_after);
	dns_after = count_dns(l, &n_after);
	read_events(l);
	if (s->dns_entries && dns_after != s->dns_entries - 1)
		return FAIL("%d DNS entries in pal_ct4 (%d before), want %d", dns_after, dns_before, s->dns_entries - 1);
	if (s->out.saddr) {
		const __u8 *ip = out + 14;
		__u32 sa = ((__u32)ip[12] << 24) | (ip[13] << 16) | (ip[14] << 8) | ip[15];
		__u32 da = ((__u32)ip[16] << 24) | (ip[17] << 16) | (ip[18] << 8) | ip[19];
		size_t hl = (ip[0] & 0xf) * 4;
		__u16 sp = (ip[hl] << 8) | ip[hl + 1], dp = (ip[hl + 2] << 8) | ip[hl + 3];

		if (opts.data_size_out != *len)
			return FAIL("the program let out %u bytes of %zu", opts.data_size_out, *len);
		if (sa != s->out.saddr || da != s->out.daddr || sp != s->out.sport || dp != s->out.dport)
			return FAIL("let out %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u, want %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u",
				    sa >> 24, (sa >> 16) & 0xff, (sa >> 8) & 0xff, sa & 0xff, sp,
				    da >> 24, (da >> 16) & 0xff, (da >> 8) & 0xff, da & 0xff, dp,
				    s->out.saddr >> 24, (s->out.saddr >> 16) & 0xff, (s->out.saddr >> 8) & 0xff, s->out.saddr & 0xff,
				    s->out.sport, s->out.daddr >> 24, (s->out.daddr >> 16) & 0xff, (s->out.daddr >> 8) & 0xff,
				    s->out.daddr & 0xff, s->out.dport);
		if (!checksums_ok(out, opts.data_size_out))
			return FAIL("the packet let out has a wrong IPv4 or transport checksum");
	}
	if (s->ev.type) {
		const __u8 checked = PAL_FLOWF_DEFAULT_DENY | PAL_FLOWF_SERVICE | PAL_FLOWF_IDLE | PAL_FLOWF_DNS_PROXY;
		const struct flow_event *e = &events[0];

		if (!l->flows)
			return FAIL("no pal_flows ring in the object");
		if (n_events != 1)
			return FAIL("%d flow events, want 1", n_events);
		__u32 want_reason = s->ev.reason ? s->ev.reason : s->reason;

		if (e->type != s->ev.type || e->reason != want_reason || e->rule_id != s->ev.rule ||
		    (e->flags & checked) != s->ev.flags)
			return FAIL("flow event type %u reason %u rule %u flags 0x%x, want type %u reason %u rule %u flags 0x%x",
				    e->type, e->reason, e->rule_id, e->flags & checked, s->ev.type, want_reason, s->ev.rule,
				    s->ev.flags);
		if (s->out.saddr && e->type == PAL_FLOW_NEW &&
		    (ntohl(e->saddr) != flow.saddr || ntohl(e->daddr) != flow.daddr || e->sport != flow.sport ||
		     e->dport != flow.dport))
			return FAIL("the NEW event names another connection than the one judged");
	}
	if (quoted_had != quoted_has || memcmp(&quoted_before, &quoted_after, sizeof(quoted_after)))
		return FAIL("the quoted connection's entry was %s", quoted_had ? (quoted_has ? "changed" : "deleted") : "created");

	if ((int)opts.retval != want_verdict)
		return FAIL("verdict %d, want %d", opts.retval, want_verdict);
	for (int r = 0; r < PAL_METRICS_MAX; r++)
		pkts += after[r].packets - before[r].packets;
	if (after[s->reason].packets - before[s->reason].packets != 1 || pkts != 1) {
		for (int r = 0; r < PAL_METRICS_MAX; r++)
			if (after[r].packets != before[r].packets)
				return FAIL("counted under reason %d, want %u", r, s->reason);
		return FAIL("not counted, want reason %u", s->reason);
	}
	if (after[s->reason].bytes - before[s->reason].bytes != *len)
		return FAIL("bytes counted %llu, want %zu",
			    (unsigned long long)(after[s->reason].bytes - before[s->reason].bytes), *len);

	delta = s->ct == CT_CREATED ? 1 : 0;
	/* A DNS or SERVICE entry replaced by a plain one under the same key. */
	if (had && has && (old.nat == PAL_NAT_DNS || old.nat == PAL_NAT_SERVICE) && ct.nat != PAL_NAT_DNS &&
	    ct.nat != PAL_NAT_SERVICE)
		delta++;
	if (!s->converts && n_after - n_before != delta)
		return FAIL("pal_ct4 went from %d to %d entries, want a change of %d", n_before, n_after, delta);
	switch (s->ct) {
	case CT_NONE:
		if (had || has)
			return FAIL("conntrack entry %s, want none", has ? "present" : "was present");
		return true;
	case CT_REVOKED:
		if (!had || !has)
			return FAIL("conntrack entry %s, want it kept and revoked", had ? "deleted" : "was absent");
		if (!ct.revoked || ct.origin != old.origin)
			return FAIL("conntrack entry revoked %u origin %u (was %u), want revoked, origin unchanged",
				    ct.revoked, ct.origin, old.origin);
		/* A revoked connection's packets keep its entry alive, as any
		 * connection's: collected only once both sides are silent. */
		if (t0 - old.last_seen > PAL_CT_REFRESH_JIFFIES && ct.last_seen - t0 > t1 - t0)
			return FAIL("revoked entry's last_seen %u not refreshed although %u jiffies old", old.last_seen,
				    t0 - old.last_seen);
		break;
	case CT_CREATED:
	case CT_REPLACED:
		if (ct.revoked)
			return FAIL("conntrack entry marked revoked, want it live");
		if (ct.ifindex != EP_IFINDEX)
			return FAIL("conntrack entry bound to ifindex %u, want %u", ct.ifindex, EP_IFINDEX);
		if (had != (s->ct == CT_REPLACED) || !has || ct.origin != dir)
			return FAIL("no %s conntrack entry opened in the packet's direction",
				    s->ct == CT_CREATED ? "new" : "rewritten");
		if (ct.last_seen - t0 > t1 - t0)
			return FAIL("last_seen %u outside the run [%u, %u] (jiffies)", ct.last_seen, t0, t1);
		break;
	case CT_KEPT:
		if (!had || !has)
			return FAIL("conntrack entry %s, want it kept", had ? "deleted" : "was absent");
		if (ct.origin != old.origin || ct.revoked)
			return FAIL("conntrack origin %u (was %u), revoked %u: want the origin unchanged, live",
				    ct.origin, old.origin, ct.revoked);
		if (t0 - old.last_seen > PAL_CT_REFRESH_JIFFIES && ct.last_seen - t0 > t1 - t0)
			return FAIL("last_seen %u not refreshed although %u jiffies old", old.last_seen, t0 - old.last_seen);
		if (t1 - old.last_seen <= PAL_CT_REFRESH_JIFFIES && ct.last_seen != old.last_seen)
			return FAIL("last_seen rewritten although %u jiffies old", t1 - old.last_seen);
		break;
	}
	if (ct.closing != s->closing)
		return FAIL("conntrack entry closing %u, want %u", ct.closing, s->closing);
	if (ct.revision != revision(l) || ct.rule_id != s->rule)
		return FAIL("conntrack revision %u rule %u, want revision %u rule %u", ct.revision, ct.rule_id,
			    revision(l), s->rule);
	return true;
}

static bool run_fixture(const struct loaded *l, const struct fixture *f, int n)
{
	char why[256];
	__u8 buf[256];
	size_t len;
	bool direct = false; /* entries or counts written behind the datapath's back */

	reset(l);
	if (seed(l, f)) {
		printf("FAIL %2d %s\n      seeding the maps: %s\n", n, f->desc, strerror(errno));
		return false;
	}
	for (int i = 0; f->steps[i].kind != END; i++) {
		const struct step *s = &f->steps[i];

		switch (s->kind) {
		case BUMP:
			bump(l);
			continue;
		case CLEAR:
		case REVOKE:
			clear_hash(l->policy);
			if (s->kind == REVOKE)
				bump(l);
			continue;
		case RESTORE:
			seed_policy(l, f->pol);
			bump(l);
			continue;
		case LATER: {
			__u32 ifindex = f->ep_ifindex ? f->ep_ifindex : EP_IFINDEX;
			struct endpoint_info ep;

			if (seed_policy(l, f->later) || bpf_map_lookup_elem(l->endpoints, &ifindex, &ep)) {
				printf("FAIL %2d %s\n      step %d: writing the later entries: %s\n", n, f->desc, i + 1,
				       strerror(errno));
				return false;
			}
			ep.flags = f->later_flags;
			bpf_map_update_elem(l->endpoints, &ifindex, &ep, BPF_EXIST);
			bump(l);
			continue;
		}
		case AGE:
			for_each_ct(l, age_entry);
			continue;
		case LEASE_ON:
		case LEASE_OFF:
			set_lease(l, proxy_of(l), s->kind == LEASE_ON);
			continue;
		case MOVE_PROXY:
			set_lease(l, HOST_API, true);
			continue;
		case REMAP: {
			__u32 k = htonl(UPSTREAM);
			struct dns_upstream v = { .proxy_port = htons(PROXY_PORT + 1) };

			bpf_map_update_elem(l->dns_upstreams, &k, &v, BPF_ANY);
			continue;
		}
		case REHOME:
			for_each_ct(l, rehome_entry);
			direct = true;
			continue;
		case OTHER_EP:
			direct = true;
			if (write_other(l)) {
				printf("FAIL %2d %s\n      step %d: writing the other endpoint's entries: %s\n", n, f->desc,
				       i + 1, strerror(errno));
				return false;
			}
			continue;
		case OTHER_EP_CHECK:
			if (check_other(l)) {
				printf("FAIL %2d %s\n      step %d: %d of the other endpoint's %d entries gone or changed\n",
				       n, f->desc, i + 1, check_other(l), OTHER_ENTRIES);
				return false;
			}
			continue;
		case BUDGET:
			direct = true;
			set_budget(l, EP_IFINDEX, s->ep_entries);
			set_budget(l, 0, s->node_entries);
			continue;
		default:
			break;
		}
		if (!run_packet(l, s, buf, &len, why, sizeof(why)) ||
		    (!direct && !budget_consistent(l, why, sizeof(why)))) {
			printf("FAIL %2d %s\n      step %d (%s%s): %s\n      packet (%zu bytes):", n, f->desc, i + 1,
			       s->kind == FROM_POD || s->kind == FROM_POD_TAGGED ? "pal_from_pod" : "pal_to_pod",
			       s->kind == FROM_POD_TAGGED || s->kind == TO_POD_TAGGED ? ", tag in the skb's metadata" : "",
			       why, len);
			print_hex(buf, len);
			return false;
		}
	}
	printf("ok   %2d %s\n", n, f->desc);
	return true;
}

static int libbpf_warnings(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX], path[PATH_MAX + 32], tagged_path[PATH_MAX + 64];
	struct loaded def, host_off, small;
	int passed = 0, failed = 0;
	ssize_t n;

	if (argc > 1) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		snprintf(path, sizeof(path), "%s/../bpf/endpoint.bpf.o", dirname(exe));
	}
	libbpf_set_print(libbpf_warnings);
	ncpus = libbpf_num_possible_cpus();
	snprintf(tagged_path, sizeof(tagged_path), "%s/test-tagged.bpf.o", dirname(strdupa(path)));
	if (ncpus <= 0 || load(path, true, 0, &def) || load(path, false, 0, &host_off) || load_tagged(tagged_path)) {
		printf("0 passed, %zu failed\n", N_FIXTURES);
		return 1;
	}
	if (load(path, true, SMALL_BUDGET, &small)) {
		fprintf(stderr, "no pal_ct_endpoint_max in %s: the default object stands in\n", path);
		small = def;
		small.obj = NULL;
	}
	{
		/* The lease's clock: pal_clock's packet holds the 64-bit jiffies
		 * whose low 32 bits it returns. */
		__u32 low = 0;
		__u64 j = now_jiffies64(&def, &low);

		if (j == 0 || (__u32)j != low) {
			printf("FAIL pal_clock wrote jiffies %llu into its packet and returned %u\n", (unsigned long long)j, low);
			failed++;
		}
	}
	for (size_t i = 0; i < N_FIXTURES; i++) {
		const struct fixture *f = &fixtures[i];

		if (run_fixture(f->host_blocked ? &host_off : f->small_budget ? &small : &def, f, i + 1))
			passed++;
		else
			failed++;
	}
	ring_buffer__free(def.flows);
	ring_buffer__free(host_off.flows);
	if (small.obj)
		ring_buffer__free(small.flows);
	bpf_object__close(def.obj);
	bpf_object__close(host_off.obj);
	bpf_object__close(small.obj);
	bpf_object__close(tagged.obj);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
