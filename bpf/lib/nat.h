/* Rewriting a parsed packet's destination (to a Service's backend, to the
 * DNS proxy) or source (a backend's reply, back to the frontend the pod
 * addressed; the DNS proxy's, back to the upstream) in place, the
 * checksums updated incrementally.
 *
 * The packet was parsed by pal_parse: untagged Ethernet, then IPv4 at
 * offset 14. The transport checksum covers the pseudo-header, so an address
 * change goes into it too (BPF_F_PSEUDO_HDR, which also does the right
 * thing for CHECKSUM_PARTIAL skbs, the usual case for what a pod sends).
 * A UDP checksum of zero (none) stays zero (BPF_F_MARK_MANGLED_0). A later
 * fragment has no transport header: only its address changes; the first
 * fragment's transport checksum covers the whole datagram.
 */
#ifndef PAL_NAT_H
#define PAL_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

#define PAL_IP_CHECK_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define PAL_IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define PAL_IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

/* Sets the destination (`dst`) or the source address and port of `pkt`,
 * which are now `from_addr` (network byte order) and `from_port` (host
 * byte order), to `addr` and `port`. Only TCP and UDP are translated (lb.h
 * has no other frontends). False when a helper failed: the packet may be
 * half-written and must be dropped. */
static __always_inline bool pal_nat4_from(struct __sk_buff *skb, const struct pal_pkt *pkt, const bool dst,
					  __u32 from_addr, __u16 from_port, __u32 addr, __u16 port)
{
	__u32 old_addr = from_addr;
	__be16 old_port = bpf_htons(from_port);
	__be16 new_port = bpf_htons(port);
	__u32 csum_off, flags;

	if (!pkt->fragment) {
		if (pkt->protocol == IPPROTO_TCP) {
			csum_off = pkt->l4_off + offsetof(struct tcphdr, check);
			flags = 0;
		} else if (pkt->protocol == IPPROTO_UDP) {
			csum_off = pkt->l4_off + offsetof(struct udphdr, check);
			flags = BPF_F_MARK_MANGLED_0;
		} else {
			return false;
		}
		if (bpf_l4_csum_replace(skb, csum_off, old_addr, addr, flags | BPF_F_PSEUDO_HDR | sizeof(addr)))
			return false;
		if (old_port != new_port) {
			if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, flags | sizeof(new_port)))
				return false;
			if (bpf_skb_store_bytes(skb, pkt->l4_off + (dst ? 2 : 0), &new_port, sizeof(new_port), 0))
				return false;
		}
	}
	if (bpf_l3_csum_replace(skb, PAL_IP_CHECK_OFF, old_addr, addr, sizeof(addr)))
		return false;
	return bpf_skb_store_bytes(skb, dst ? PAL_IP_DADDR_OFF : PAL_IP_SADDR_OFF, &addr, sizeof(addr), 0) == 0;
}

/* pal_nat4_from() of the packet's destination or source as parsed. */
static __always_inline bool pal_nat4(struct __sk_buff *skb, const struct pal_pkt *pkt, const bool dst,
				     __u32 addr, __u16 port)
{
	return pal_nat4_from(skb, pkt, dst, dst ? pkt->daddr : pkt->saddr, dst ? pkt->dport : pkt->sport, addr, port);
}

#endif
