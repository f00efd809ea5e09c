/* A tiny object for the loader's own tests, independent of bpf/: one map of
 * each kind the loader treats differently (hash and array with kernel batch
 * ops, an LPM trie without them, a per-CPU array) and a tc program whose
 * verdict depends on map contents, so a test run proves the maps are live.
 *
 * test_tc drops (TC_ACT_SHOT) an IPv4 packet whose destination is in
 * test_lpm, passes (TC_ACT_OK) everything else, and counts packets per
 * verdict in test_counters[verdict]. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct test_key {
	__u32 id;
	__u16 port;
	__u8 proto;
	__u8 dir;
};

struct test_value {
	__u64 stamp;
	__u32 rule;
#ifdef TEST_V2
	__u64 flags; /* a field appended by the next version: zero is "none" */
#endif
};

struct test_lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct test_counter {
	__u64 packets;
	__u64 bytes;
#ifdef TEST_V2
	__u64 drops;
#endif
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 20000);
	__type(key, struct test_key);
	__type(value, struct test_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} test_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 20000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct test_lpm_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} test_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} test_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct test_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} test_counters SEC(".maps");

static __always_inline int verdict(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct test_lpm_key key = { .prefixlen = 32 };
	__builtin_memcpy(key.addr, &ip->daddr, sizeof(key.addr));
	return bpf_map_lookup_elem(&test_lpm, &key) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int test_tc(struct __sk_buff *skb)
{
	__u32 v = verdict(skb);
	struct test_counter *c = bpf_map_lookup_elem(&test_counters, &v);

	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
	return v;
}

char LICENSE[] SEC("license") = "GPL";
