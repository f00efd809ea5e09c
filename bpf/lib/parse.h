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

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PAL_IP_OFFSET 0x1fff /* fragment offset bits of iphdr.frag_off */
#define PAL_IP_MF     0x2000 /* more fragments */

#define PAL_ETH_P_ARP    0x0806
#define PAL_ETH_P_8021Q  0x8100
#define PAL_ETH_P_8021AD 0x88a8

/* The longest header chain read: Ethernet, IPv4 with 40 bytes of options,
 * an ICMP error quoting an IPv4 header with 40 bytes of options and the 8
 * bytes after it (longer than Ethernet, IPv4, TCP). */
#define PAL_HDR_MAX (sizeof(struct ethhdr) + 60 + 8 + 60 + 8)

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

/* ARP for IPv4 over Ethernet (RFC 826); the addresses are unaligned. */
struct pal_arphdr {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

/* The connection an ICMP error is about, from the header it quotes:
 * the packet that caused it, as that packet went (saddr its source). */
struct pal_quoted {
	__u32 saddr;    /* network byte order */
	__u32 daddr;
	__u16 sport;    /* host byte order; 0 for ICMP */
	__u16 dport;
	__u8 protocol;
	__u8 ok;        /* 0: not matchable (a quoted non-first fragment) */
};

struct pal_pkt {
	__u32 saddr;    /* network byte order; for ARP the sender's and */
	__u32 daddr;    /* target's protocol addresses */
	__u16 sport;    /* host byte order; 0 for protocols without ports and */
	__u16 dport;    /* for non-first fragments */
	__u16 ipid;     /* iphdr.id, network byte order */
	__u8 protocol;
	__u8 syn;       /* TCP SYN without ACK: a connection attempt */
	__u8 fin_rst;   /* TCP FIN or RST: the connection is closing */
	__u8 fragment;  /* a non-first fragment: no transport header */
	__u8 first_fragment; /* MF set, offset 0: later fragments will need its ports */
	__u8 icmp_error;/* an ICMP error (destination unreachable, time exceeded,
	                 * parameter problem): `quoted` is its connection */
	__u8 l4_off;    /* offset of the transport header from the frame's start */
	__u8 tcp_flags; /* TCP: the flags byte (FIN 0x01 .. CWR 0x80); 0 otherwise */
	struct pal_quoted quoted;
};

enum pal_parse_result {
	PAL_PARSE_OK,        /* IPv4 */
	PAL_PARSE_ARP,       /* well-formed ARP for IPv4 over Ethernet */
	PAL_PARSE_VLAN,      /* 802.1Q or 802.1ad tagged, in the frame or the skb's metadata */
	PAL_PARSE_OTHER,     /* any other ethertype, IPv6 included */
	PAL_PARSE_MALFORMED,
};

/* The ports of a TCP, UDP or SCTP header: all three start with them. */
struct pal_ports {
	__be16 source;
	__be16 dest;
};

/* The header an ICMP error quotes, at the cursor: IPv4 (options skipped),
 * then 8 bytes of which the ports are the first 4 for TCP, UDP and SCTP.
 * Returns false when it is cut short (RFC 792 requires the 8 bytes). */
static __always_inline bool pal_parse_quoted(struct pal_cursor *c, struct pal_quoted *q)
{
	struct iphdr *ip = pal_pull(c, sizeof(*ip));
	struct pal_ports *ports;

	if (!ip || ip->version != 4 || ip->ihl < 5)
		return false;
	if (!pal_pull(c, (ip->ihl - 5) * 4))
		return false;
	ports = pal_pull(c, 8);
	if (!ports)
		return false;
	q->saddr = ip->saddr;
	q->daddr = ip->daddr;
	q->protocol = ip->protocol;
	q->sport = 0;
	q->dport = 0;
	q->ok = (ip->frag_off & bpf_htons(PAL_IP_OFFSET)) == 0;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_SCTP) {
		q->sport = bpf_ntohs(ports->source);
		q->dport = bpf_ntohs(ports->dest);
	}
	return true;
}

/* A VLAN tag (in the skb's metadata, where the receive path puts the
 * first one before tc runs, or in the frame), then Ethernet, and then:
 * ARP, checked to be IPv4 over Ethernet; or IPv4 (options skipped by
 * ihl), then the ports of TCP, UDP and SCTP; ICMP's header is required
 * but has no ports, and an ICMP error's quoted header is read; other
 * protocols are not read past IPv4. */
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

	if (skb->vlan_present)
		return PAL_PARSE_VLAN;
	if (!eth)
		return PAL_PARSE_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		struct pal_arphdr *arp;

		if (eth->h_proto == bpf_htons(PAL_ETH_P_8021Q) || eth->h_proto == bpf_htons(PAL_ETH_P_8021AD))
			return PAL_PARSE_VLAN;
		if (eth->h_proto != bpf_htons(PAL_ETH_P_ARP))
			return PAL_PARSE_OTHER;
		arp = pal_pull(&c, sizeof(*arp));
		if (!arp || arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
		    arp->hlen != 6 || arp->plen != 4)
			return PAL_PARSE_MALFORMED;
		__builtin_memcpy(&pkt->saddr, arp->spa, 4);
		__builtin_memcpy(&pkt->daddr, arp->tpa, 4);
		return PAL_PARSE_ARP;
	}
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
	pkt->tcp_flags = 0;
	pkt->icmp_error = 0;
	pkt->ipid = ip->id;
	pkt->l4_off = sizeof(*eth) + ip->ihl * 4;
	pkt->fragment = (ip->frag_off & bpf_htons(PAL_IP_OFFSET)) != 0;
	pkt->first_fragment = (ip->frag_off & bpf_htons(PAL_IP_OFFSET | PAL_IP_MF)) == bpf_htons(PAL_IP_MF);
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
		pkt->tcp_flags = ((__u8 *)tcp)[13];
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
	case IPPROTO_ICMP: {
		struct pal_icmphdr *icmp = pal_pull(&c, sizeof(*icmp));

		if (!icmp)
			return PAL_PARSE_MALFORMED;
		/* Source quench (4) is obsolete (RFC 6633): judged as plain ICMP. */
		if (icmp->type == 3 || icmp->type == 11 || icmp->type == 12) {
			pkt->icmp_error = 1;
			if (!pal_parse_quoted(&c, &pkt->quoted))
				return PAL_PARSE_MALFORMED;
		}
		break;
	}
	}
	return PAL_PARSE_OK;
}

#endif
