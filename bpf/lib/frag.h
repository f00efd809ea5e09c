/* pal_frag4: the ports of fragmented IPv4 datagrams, so that their later
 * fragments, which carry none, are judged as their connection.
 *
 * Key: the datagram as IPv4 reassembly knows it (source, destination,
 * protocol, IP id; addresses in network byte order, id as on the wire) and
 * the device whose hook saw its first fragment: a record made at one
 * endpoint is never used at another (two pods of this node see the same
 * datagram at their own hooks, and each records it). No wildcards.
 *
 * Value: the first fragment's ports (host byte order). Written when a first
 * fragment (MF set, offset 0) passes an endpoint's hook; a later fragment
 * with no record is dropped (DROP_FRAGMENT), one with a record takes its
 * ports and is then judged exactly as an unfragmented packet of its
 * connection (one conntrack lookup, its revision, its revocation). Records
 * are not deleted by the last fragment (fragments may arrive out of order);
 * the LRU ages them out. Reordering that brings a later fragment before the
 * first drops it, as a stateful firewall without reassembly must.
 */
#ifndef PAL_FRAG_H
#define PAL_FRAG_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_FRAG_MAX
#define PAL_FRAG_MAX 8192
#endif

struct frag4_key {
	__u32 saddr;
	__u32 daddr;
	__u32 ifindex;
	__u16 id;       /* iphdr.id, network byte order */
	__u8 protocol;
	__u8 pad;
};
_Static_assert(sizeof(struct frag4_key) == 16, "frag4_key is ABI");

struct frag4_value {
	__u16 sport;    /* host byte order */
	__u16 dport;
};
_Static_assert(sizeof(struct frag4_value) == 4, "frag4_value is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_FRAG_MAX);
	__type(key, struct frag4_key);
	__type(value, struct frag4_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_frag4 SEC(".maps");
#endif

#endif
