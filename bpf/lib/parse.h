/* Packet parsing through a bounds-checked cursor.
 *
 * CONTRACT: a cursor covers [pos, end) of the packet's linear data.
 * pal_pull(c, n) returns a pointer to the next n bytes and advances past
 * them, or returns NULL and leaves the cursor where it was when fewer than
 * n bytes remain. Every header is read through a pointer that pal_pull
 * returned and only within the n bytes it was asked for: no other pointer
 * arithmetic on packet data, so each access is one the verifier has already
 * seen checked against data_end, and a truncated packet can only ever be
 * "NULL from pal_pull", which the parser reports as malformed.
 */
#ifndef PAL_PARSE_H
#define PAL_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PAL_IP_OFFSET 0x1fff /* fragment offset bits of iphdr.frag_off */

/* The longest header chain read: Ethernet, IPv4 with 40 bytes of options, TCP. */
#define PAL_HDR_MAX (sizeof(struct ethhdr) + 60 + sizeof(struct tcphdr))

struct pal_cursor {
	void *pos;
	void *end;
};

static __always_inline void *pal_pull(struct pal_cursor *c, __u32 n)
{
	void *p = c->pos;

	if (p + n > c->end)
		return NULL;
	c->pos = p + n;
	return p;
}

/* Headers that have no libc-free UAPI struct. ICMP's is 8 bytes for every
 * message type. SCTP's common header has its ports where UDP has them. */
struct pal_icmphdr {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be32 rest;
};

struct pal_sctphdr {
	__be16 source;
	__be16 dest;
	__be32 vtag;
	__be32 checksum;
};

struct pal_pkt {
	__u32 saddr;    /* network byte order */
	__u32 daddr;
	__u16 sport;    /* host byte order; 0 for protocols without ports and */
	__u16 dport;    /* for non-first fragments */
	__u8 protocol;
	__u8 syn;       /* TCP SYN without ACK: a connection attempt */
	__u8 fin_rst;   /* TCP FIN or RST: the connection is closing */
	__u8 fragment;  /* a non-first fragment: no transport header */
};

enum pal_parse_result {
	PAL_PARSE_OK,
	PAL_PARSE_NON_IP,
	PAL_PARSE_MALFORMED,
};

/* Ethernet, IPv4 (options skipped by ihl), then the ports of TCP, UDP and
 * SCTP; ICMP's header is required but has no ports; other protocols are not
 * read past IPv4. */
static __always_inline enum pal_parse_result pal_parse(struct __sk_buff *skb, struct pal_pkt *pkt)
{
	/* Forwarded skbs may hold the transport header outside the linear area
	 * that direct packet access sees (the stack pulled only what it read).
	 * Pull just what the parser can read; a no-op test when it is already
	 * linear, as for packets a pod sends. The pull invalidates packet
	 * pointers, so the cursor starts after it. */
	__u32 want = skb->len < PAL_HDR_MAX ? skb->len : PAL_HDR_MAX;

	if ((void *)(long)skb->data + want > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, want);

	struct pal_cursor c = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};
	struct ethhdr *eth = pal_pull(&c, sizeof(*eth));
	struct iphdr *ip;

	if (!eth)
		return PAL_PARSE_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PAL_PARSE_NON_IP;
	ip = pal_pull(&c, sizeof(*ip));
	if (!ip || ip->version != 4 || ip->ihl < 5)
		return PAL_PARSE_MALFORMED;
	if (!pal_pull(&c, (ip->ihl - 5) * 4)) /* options */
		return PAL_PARSE_MALFORMED;

	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->protocol = ip->protocol;
	pkt->sport = 0;
	pkt->dport = 0;
	pkt->syn = 0;
	pkt->fin_rst = 0;
	pkt->fragment = (ip->frag_off & bpf_htons(PAL_IP_OFFSET)) != 0;
	if (pkt->fragment)
		return PAL_PARSE_OK;

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = pal_pull(&c, sizeof(*tcp));

		if (!tcp)
			return PAL_PARSE_MALFORMED;
		pkt->sport = bpf_ntohs(tcp->source);
		pkt->dport = bpf_ntohs(tcp->dest);
		pkt->syn = tcp->syn && !tcp->ack;
		pkt->fin_rst = tcp->fin || tcp->rst;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = pal_pull(&c, sizeof(*udp));

		if (!udp)
			return PAL_PARSE_MALFORMED;
		pkt->sport = bpf_ntohs(udp->source);
		pkt->dport = bpf_ntohs(udp->dest);
		break;
	}
	case IPPROTO_SCTP: {
		struct pal_sctphdr *sctp = pal_pull(&c, sizeof(*sctp));

		if (!sctp)
			return PAL_PARSE_MALFORMED;
		pkt->sport = bpf_ntohs(sctp->source);
		pkt->dport = bpf_ntohs(sctp->dest);
		break;
	}
	case IPPROTO_ICMP:
		if (!pal_pull(&c, sizeof(struct pal_icmphdr)))
			return PAL_PARSE_MALFORMED;
		break;
	}
	return PAL_PARSE_OK;
}

#endif
