/* The XDP prefilter's maps (bpf/prefilter.bpf.c, docs/adr/0013-xdp-prefilter.md).
 *
 * pal_prefilter4 (LPM_TRIE): the source prefixes every pod of this node
 * denies on every port and protocol (the ingress deny rules of cluster-wide
 * policies that select every pod, policy/prefilter.ts). Disjoint prefixes
 * (excepts already cut out by the agent), each with the deny rule that puts
 * it there (rule_id, as in the policy maps: flows name it). The key's
 * prefixlen counts address bits only (0..32); addresses in network order.
 *
 * pal_prefilter_dst4 (HASH): the destinations the prefilter acts for, this
 * node's endpoints (pods whose host veth carries the tc programs): address
 * (network order) -> the endpoint's host veth. Nothing else: not the node's
 * own addresses, not a pod of another node, not an address of the pod CIDR
 * that no Palisade endpoint holds.
 *
 * pal_prefilter_config[0] (ARRAY): flags PAL_PREFILTER_ACTIVE (anything to
 * do: pal_prefilter4 has entries or WORLD is set; without it every frame
 * passes after one array read) and PAL_PREFILTER_WORLD (a source with no
 * ipcache entry, i.e. `world` as the tc programs see it, is denied too,
 * under world_rule).
 *
 * pal_prefilter_frag4 (LRU_HASH): the ports of a fragmented datagram whose
 * first fragment the prefilter passed although its source is denied (a
 * reply: its connection is in pal_ct4), keyed as pal_frag4 with the
 * uplink's ifindex, so that its later fragments pass too; a later fragment
 * from a denied source without a record is dropped, as tc would
 * (DROP_FRAGMENT).
 *
 * pal_prefilter_budget (PERCPU_ARRAY, 1): flow events of prefilter drops
 * per CPU and window (PAL_PREFILTER_EVENTS per PAL_FLOW_DROP_WINDOW_NS).
 * Drops of a key (flows.h pal_drop_agg) that wrote its event within the
 * window are summarised there as the tc programs' are; an event for a new
 * key, or one whose window ran out, needs the budget: beyond it the drop
 * is counted in pal_metrics only, so a flood from many sources costs
 * neither the ring nor pal_drop_agg's keys more than the budget.
 */
#ifndef PAL_PREFILTER_H
#define PAL_PREFILTER_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#include "endpoints.h"
#include "frag.h"

#ifndef PAL_PREFILTER_MAX
#define PAL_PREFILTER_MAX (1 << 16)
#endif

/* Flow events per CPU per window (flows.h PAL_FLOW_DROP_WINDOW_NS). */
#ifndef PAL_PREFILTER_EVENTS
#define PAL_PREFILTER_EVENTS 64
#endif

/* prefilter_config.flags */
#define PAL_PREFILTER_ACTIVE (1u << 0)
#define PAL_PREFILTER_WORLD  (1u << 1)

struct prefilter4_key {
	__u32 prefixlen; /* address bits, 0..32 */
	__u32 addr;      /* network byte order */
};
_Static_assert(sizeof(struct prefilter4_key) == 8, "prefilter4_key is ABI");

struct prefilter_value {
	__u32 rule_id;   /* the deny rule whose prefix this is */
};
_Static_assert(sizeof(struct prefilter_value) == 4, "prefilter_value is ABI");

struct prefilter_dst {
	__u32 ifindex;   /* the endpoint's host veth */
};
_Static_assert(sizeof(struct prefilter_dst) == 4, "prefilter_dst is ABI");

struct prefilter_config {
	__u32 flags;      /* PAL_PREFILTER_* */
	__u32 world_rule; /* with PAL_PREFILTER_WORLD: the deny rule naming `world` */
};
_Static_assert(sizeof(struct prefilter_config) == 8, "prefilter_config is ABI");

struct prefilter_budget {
	__u64 window_start; /* CLOCK_MONOTONIC_COARSE ns */
	__u64 events;       /* events written in the window */
};
_Static_assert(sizeof(struct prefilter_budget) == 16, "prefilter_budget is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_PREFILTER_MAX);
	__type(key, struct prefilter4_key);
	__type(value, struct prefilter_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_prefilter4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct prefilter_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_prefilter_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prefilter_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_prefilter_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_FRAG_MAX);
	__type(key, struct frag4_key);
	__type(value, struct frag4_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_prefilter_frag4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prefilter_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_prefilter_budget SEC(".maps");
#endif

#endif
