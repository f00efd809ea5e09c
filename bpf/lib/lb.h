/* pal_lb4 and pal_lb4_backends: the Services a pod's traffic is translated
 * for, so that its egress policy judges the backend the connection reaches
 * (docs/adr/0005-service-egress.md).
 *
 * pal_lb4 (HASH) is keyed by a frontend: an IPv4 address in network byte
 * order (a ClusterIP, an external IP or a load-balancer IP), the Service
 * port and protocol (TCP or UDP), port in host byte order. Its value counts
 * the frontend's backends; `flags` says whether the choice depends on the
 * client address only (sessionAffinity ClientIP). A frontend with no
 * backend is written with count 0: its traffic is dropped
 * (DROP_NO_BACKEND), never passed on untranslated.
 *
 * pal_lb4_backends (HASH) holds backend `slot` (0 .. count - 1) of each
 * frontend: the backend's address and target port. The agent writes the
 * slots before raising a count and lowers a count before deleting slots, so
 * a packet that reads a count finds its slots; one that races a shrink and
 * misses its slot is dropped (DROP_NO_BACKEND), and its retransmission
 * finds a backend.
 *
 * No wildcards: a destination that is no frontend is not a Service.
 */
#ifndef PAL_LB_H
#define PAL_LB_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_LB_FRONTENDS_MAX
#define PAL_LB_FRONTENDS_MAX (1 << 16)
#endif
#ifndef PAL_LB_BACKENDS_MAX
#define PAL_LB_BACKENDS_MAX (1 << 18)
#endif

/* lb4_service.flags */
#define PAL_LB_CLIENT_AFFINITY (1u << 0)

struct lb4_key {
	__u32 addr;    /* network byte order */
	__u16 port;    /* host byte order */
	__u8 protocol;
	__u8 pad;
};
_Static_assert(sizeof(struct lb4_key) == 8, "lb4_key is ABI");

struct lb4_service {
	__u32 count;   /* backends in pal_lb4_backends, slots 0 .. count - 1 */
	__u32 flags;
};
_Static_assert(sizeof(struct lb4_service) == 8, "lb4_service is ABI");

struct lb4_backend_key {
	struct lb4_key frontend;
	__u32 slot;
};
_Static_assert(sizeof(struct lb4_backend_key) == 12, "lb4_backend_key is ABI");

struct lb4_backend {
	__u32 addr;    /* network byte order */
	__u16 port;    /* host byte order */
	__u16 pad;
};
_Static_assert(sizeof(struct lb4_backend) == 8, "lb4_backend is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_LB_FRONTENDS_MAX);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_lb4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_LB_BACKENDS_MAX);
	__type(key, struct lb4_backend_key);
	__type(value, struct lb4_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_lb4_backends SEC(".maps");

/* A 32-bit mix of the connection (murmur3's finalizer over a sum of its
 * fields): the same connection always gets the same backend while the
 * backends stay the same, even if its conntrack entries were collected. */
static __always_inline __u32 pal_lb_hash(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport, __u8 protocol)
{
	__u32 h = saddr * 0x9e3779b1u;

	h ^= daddr + 0x7f4a7c15u + (h << 6) + (h >> 2);
	h ^= (((__u32)sport << 16) | dport) + 0x7f4a7c15u + (h << 6) + (h >> 2);
	h ^= protocol;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}
#endif

#endif
