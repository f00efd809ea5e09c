/* pal_ipcache4 and pal_ipcache: the security identity of a peer address.
 *
 * pal_ipcache4 (HASH) is keyed by an exact IPv4 address in network byte
 * order: pods and nodes, the common case, one hash lookup. pal_ipcache
 * (LPM_TRIE) holds prefixes and addresses that are not pods (and IPv6 later):
 * its key's prefixlen counts the 32 bits of family+pad first, so a lookup of
 * an IPv4 address uses prefixlen 32 + 32 and can only match AF_INET entries.
 * There is no wildcard entry: an address found in neither map is `world`.
 * The value's flags are the agent's; the datapath reads only the identity.
 *
 * Identities: 0 ANY (policy keys only), 1 host, 2 world, 3 CLUSTER (policy
 * keys only: every peer whose identity is in the cluster), 5 init (a pod's
 * address whose pod has no identity number yet), 6 remote node, 7 the API
 * server (an address that is no node's), 8 / 9 the API server on this node's
 * / another node's address, 256 .. 2^24-1 pods, 2^31 | h CIDR regions (see
 * policy.h). In the cluster: 1, 5 .. 9 and the pods (ADR 0010).
 *
 * Neither map is preallocated (LPM tries cannot be; pal_ipcache4 would pin
 * ~20 MB for PAL_IPCACHE_MAX entries): memory follows the entries written.
 */
#ifndef PAL_IPCACHE_H
#define PAL_IPCACHE_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_IPCACHE_MAX
#define PAL_IPCACHE_MAX (1 << 18)
#endif

#define PAL_ID_ANY         0u
#define PAL_ID_HOST        1u
#define PAL_ID_WORLD       2u
#define PAL_ID_CLUSTER     3u
#define PAL_ID_INIT        5u
#define PAL_ID_REMOTE_NODE 6u
#define PAL_ID_KUBE_APISERVER 7u
#define PAL_ID_HOST_KUBE_APISERVER 8u
#define PAL_ID_REMOTE_NODE_KUBE_APISERVER 9u
#define PAL_ID_POD_MIN     256u
#define PAL_ID_POD_MAX     ((1u << 24) - 1)
#define PAL_ID_CIDR_BIT    (1u << 31)

/* Whether a peer of identity `id` is in the cluster: what the CLUSTER class
 * (the `cluster` entity) matches. World, CIDR regions and ANY are not. */
static inline __attribute__((always_inline)) int pal_cluster_identity(__u32 id)
{
	return id == PAL_ID_HOST || (id >= PAL_ID_INIT && id <= PAL_ID_REMOTE_NODE_KUBE_APISERVER) ||
	       (id >= PAL_ID_POD_MIN && id <= PAL_ID_POD_MAX);
}

#define PAL_AF_INET 2 /* AF_INET, without pulling libc headers into BPF */

/* prefixlen of an exact IPv4 lookup in pal_ipcache: family+pad, then /32 */
#define PAL_IPCACHE_V4_FULL (32 + 32)

struct ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16]; /* network byte order; IPv4 in the first 4 bytes */
};
_Static_assert(sizeof(struct ipcache_key) == 24, "ipcache_key is ABI");

struct ipcache_value {
	__u32 identity;
	__u32 flags;
};
_Static_assert(sizeof(struct ipcache_value) == 8, "ipcache_value is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_IPCACHE_MAX);
	__type(key, __u32);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ipcache4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_IPCACHE_MAX);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ipcache SEC(".maps");

/* A peer address's identity, as every program judges it. Exact entries
 * first: pods and nodes are the common peers, and a hash lookup costs the
 * same at any map size; the LPM trie only for the rest; else world. */
static __always_inline __u32 pal_peer_identity(__u32 addr)
{
	struct ipcache_value *v = bpf_map_lookup_elem(&pal_ipcache4, &addr);
	struct ipcache_key k = { .prefixlen = PAL_IPCACHE_V4_FULL, .family = PAL_AF_INET };

	if (v)
		return v->identity;
	__builtin_memcpy(k.addr, &addr, sizeof(addr));
	v = bpf_map_lookup_elem(&pal_ipcache, &k);
	return v ? v->identity : PAL_ID_WORLD;
}
#endif

#endif
