/* An object the verifier refuses, for the loader's tests: its error must
 * reach the LOAD error message (the tail of a long verifier log), and the
 * map pin libbpf made for it must be gone after the failed load.
 *
 * The bounded loop makes the verifier walk (and log) many instructions
 * before it reaches the packet read that has no bounds check. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rejected_map SEC(".maps");

SEC("tc")
int rejected(struct __sk_buff *skb)
{
	__u32 acc = skb->mark;

#pragma clang loop unroll(disable)
	for (int i = 0; i < 64; i++)
		acc = (acc << 1) ^ (acc >> 3) ^ i;
	return *(__u8 *)(long)skb->data + (acc & 1);
}

char LICENSE[] SEC("license") = "GPL";
