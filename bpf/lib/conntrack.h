/* pal_ct4: IPv4 connections admitted by a hook, so that later packets and
 * replies skip policy.
 *
 * Key: the tuple of the connection's ORIGINAL direction exactly as the hook
 * that admitted it saw it (addresses in network byte order, ports in host
 * byte order, 0 for protocols without ports such as ICMP), plus that hook's
 * direction (0 to-pod, 1 from-pod). No wildcards. A packet of the same
 * direction finds the entry under its own tuple; a reply finds it under its
 * reversed tuple with the opposite direction. The endpoint is not part of
 * the key: one of the two addresses is the endpoint's own.
 *
 * Value: `revision` is pal_config.policy_revision as read before the policy
 * decision; an entry whose revision is behind is re-evaluated (and deleted
 * if revoked). `rule_id` is the rule that admitted the connection (0: the
 * host rule, or a direction no policy enforces). `last_seen_ns` is CLOCK_MONOTONIC (bpf_ktime_get_ns at
 * creation, refreshed at most about once a second), for the agent's garbage
 * collection; the LRU evicts the oldest entries when the map is full.
 */
#ifndef PAL_CONNTRACK_H
#define PAL_CONNTRACK_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_CT_MAX
#define PAL_CT_MAX (1 << 18)
#endif

struct ct4_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 direction;
	__u16 pad;
};
_Static_assert(sizeof(struct ct4_key) == 16, "ct4_key is ABI");

struct ct_value {
	__u64 last_seen_ns;
	__u32 revision;
	__u32 rule_id;
};
_Static_assert(sizeof(struct ct_value) == 16, "ct_value is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_CT_MAX);
	__type(key, struct ct4_key);
	__type(value, struct ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ct4 SEC(".maps");
#endif

#endif
