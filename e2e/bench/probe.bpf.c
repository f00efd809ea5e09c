/* Diagnosis probes of the `packet` benchmark (e2e/bench/packet.ts): each tc
 * program does ONE of the operations pal_to_pod is made of, on the very maps
 * of a filled benchmark copy (the datapath's headers define them, pinned by
 * name: loaded into that copy's pin directory, libbpf reuses its pins). The
 * cost of an operation is its probe's time minus probe_empty's. Compiled by
 * the benchmark at run time into a temporary directory; not part of the
 * datapath. Keys come from load-time constants set by the benchmark. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "conntrack.h"
#include "endpoints.h"
#include "ipcache.h"
#include "metrics.h"
#include "parse.h"
#include "policy.h"

const volatile __u32 probe_ep_id = 0;
const volatile __u32 probe_pod = 0;          /* network order */
const volatile __u32 probe_peer_allowed = 0; /* network order */
const volatile __u32 probe_peer_denied = 0;
const volatile __u32 probe_peer_world = 0;
const volatile __u32 probe_id_allowed = 0;
const volatile __u32 probe_id_denied = 0;
const volatile __u16 probe_sport = 0;
const volatile __u16 probe_dport = 0;

/* Alternatives to pal_ct4 for the insert, same key, value and size. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_CT_MAX);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct ct4_key);
	__type(value, struct ct_value);
} probe_ct_percpu_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_CT_MAX);
	__type(key, struct ct4_key);
	__type(value, struct ct_value);
} probe_ct_hash SEC(".maps");

/* Same definition as pal_ct4 (common LRU), but the probes' own: fresh tuples go here. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_CT_MAX);
	__type(key, struct ct4_key);
	__type(value, struct ct_value);
} probe_ct_fresh SEC(".maps");

__u32 probe_counter;

static __always_inline struct ct4_key ct_key(void)
{
	struct ct4_key k = {
		.addr = probe_pod,
		.peer_addr = probe_peer_allowed,
		.port = probe_dport,
		.peer_port = probe_sport,
		.protocol = IPPROTO_TCP,
	};
	return k;
}

static __always_inline int used(const void *p)
{
	return p ? TC_ACT_OK : TC_ACT_UNSPEC;
}

SEC("tc")
int probe_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int probe_parse(struct __sk_buff *skb)
{
	struct pal_pkt pkt;

	return pal_parse(skb, &pkt) == PAL_PARSE_OK ? TC_ACT_OK : TC_ACT_UNSPEC;
}

SEC("tc")
int probe_endpoint(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	return used(bpf_map_lookup_elem(&pal_endpoints, &ifindex));
}

SEC("tc")
int probe_metrics(struct __sk_buff *skb)
{
	__u32 reason = 1;
	struct metrics_value *m = bpf_map_lookup_elem(&pal_metrics, &reason);

	if (m) {
		m->packets++;
		m->bytes += skb->len;
	}
	return TC_ACT_OK;
}

SEC("tc")
int probe_config(struct __sk_buff *skb)
{
	__u32 zero = 0;

	return used(bpf_map_lookup_elem(&pal_config, &zero));
}

SEC("tc")
int probe_ipcache4_hit(struct __sk_buff *skb)
{
	__u32 addr = probe_peer_allowed;

	return used(bpf_map_lookup_elem(&pal_ipcache4, &addr));
}

SEC("tc")
int probe_ipcache4_miss(struct __sk_buff *skb)
{
	__u32 addr = probe_peer_world;

	return bpf_map_lookup_elem(&pal_ipcache4, &addr) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

SEC("tc")
int probe_lpm_ipcache_miss(struct __sk_buff *skb)
{
	struct ipcache_key k = { .prefixlen = PAL_IPCACHE_V4_FULL, .family = PAL_AF_INET };
	__u32 addr = probe_peer_world;

	__builtin_memcpy(k.addr, &addr, sizeof(addr));
	return bpf_map_lookup_elem(&pal_ipcache, &k) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

SEC("tc")
int probe_policy_hit(struct __sk_buff *skb)
{
	struct policy_key k = { .endpoint_id = probe_ep_id, .identity = probe_id_allowed };

	return used(bpf_map_lookup_elem(&pal_policy, &k));
}

SEC("tc")
int probe_policy_miss(struct __sk_buff *skb)
{
	struct policy_key k = { .endpoint_id = probe_ep_id, .identity = probe_id_denied };

	return bpf_map_lookup_elem(&pal_policy, &k) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

SEC("tc")
int probe_ct_hit(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();

	return used(bpf_map_lookup_elem(&pal_ct4, &k));
}

SEC("tc")
int probe_ct_miss(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();

	k.peer_port++;
	return bpf_map_lookup_elem(&pal_ct4, &k) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

/* What a SYN does: replace the entry of an existing tuple (BPF_ANY). */
SEC("tc")
int probe_ct_update(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();
	struct ct_value v = { .revision = 1, .rule_id = 1, .last_seen = 1 };

	return bpf_map_update_elem(&pal_ct4, &k, &v, BPF_ANY) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

/* The alternative for an existing tuple: write the value in place. */
SEC("tc")
int probe_ct_lookup_write(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();
	struct ct_value *v = bpf_map_lookup_elem(&pal_ct4, &k);

	if (!v)
		return TC_ACT_UNSPEC;
	v->last_seen = 1;
	v->revision = 1;
	v->rule_id = 1;
	return TC_ACT_OK;
}

SEC("tc")
int probe_ct_update_percpu_lru(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();
	struct ct_value v = { .revision = 1, .rule_id = 1, .last_seen = 1 };

	return bpf_map_update_elem(&probe_ct_percpu_lru, &k, &v, BPF_ANY) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

SEC("tc")
int probe_ct_update_hash(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();
	struct ct_value v = { .revision = 1, .rule_id = 1, .last_seen = 1 };

	return bpf_map_update_elem(&probe_ct_hash, &k, &v, BPF_ANY) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

/* A new tuple on every run (a connection that was never seen): the LRU pops a
 * free node, or evicts once the table is full. */
SEC("tc")
int probe_ct_insert_fresh(struct __sk_buff *skb)
{
	struct ct4_key k = ct_key();
	struct ct_value v = { .revision = 1, .rule_id = 1, .last_seen = 1 };
	__u32 n = probe_counter++;

	k.peer_port = n;
	k.peer_addr ^= n >> 16;
	return bpf_map_update_elem(&probe_ct_fresh, &k, &v, BPF_ANY) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

/* The floor of a helper call that does almost nothing (not inlined). */
SEC("tc")
int probe_helper_call(struct __sk_buff *skb)
{
	return bpf_get_prandom_u32() == 0xffffffff ? TC_ACT_UNSPEC : TC_ACT_OK;
}

/* Eight BPF-to-BPF calls of a trivial function: call + return, per call. */
static __attribute__((noinline)) __u32 probe_step(__u32 x)
{
	return x * 3 + 1;
}

SEC("tc")
int probe_call8(struct __sk_buff *skb)
{
	__u32 x = skb->len;

	x = probe_step(x); x = probe_step(x); x = probe_step(x); x = probe_step(x);
	x = probe_step(x); x = probe_step(x); x = probe_step(x); x = probe_step(x);
	return x == 0 ? TC_ACT_UNSPEC : TC_ACT_OK;
}

/* jiffies: inlined by the verifier on 64-bit hosts (a load). */
SEC("tc")
int probe_jiffies(struct __sk_buff *skb)
{
	return bpf_jiffies64() ? TC_ACT_OK : TC_ACT_UNSPEC;
}

SEC("tc")
int probe_ktime(struct __sk_buff *skb)
{
	return bpf_ktime_get_ns() ? TC_ACT_OK : TC_ACT_UNSPEC;
}

SEC("tc")
int probe_ktime_coarse(struct __sk_buff *skb)
{
	return bpf_ktime_get_coarse_ns() ? TC_ACT_OK : TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Apache-2.0";
