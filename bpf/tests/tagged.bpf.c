/* Test-only (bpf/tests/run-tests.c): BPF_PROG_TEST_RUN cannot give its skb
 * VLAN metadata (ctx_in's vlan fields must be zero), yet that is where the
 * kernel's receive path puts a frame's first tag before tc runs, leaving
 * a plain frame behind. tagged_run pushes an 802.1Q tag (VID 0) into the
 * metadata (bpf_skb_vlan_push on an untagged skb only sets skb->vlan_*)
 * and tail-calls the program the runner put in slot 0 of tagged_target.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tagged_target SEC(".maps");

SEC("tc")
int tagged_run(struct __sk_buff *skb)
{
	if (bpf_skb_vlan_push(skb, bpf_htons(0x8100), 0) || !skb->vlan_present)
		return 100; /* neither TC_ACT_OK nor TC_ACT_SHOT: the step fails */
	bpf_tail_call(skb, &tagged_target, 0);
	return 101;
}

char LICENSE[] SEC("license") = "Apache-2.0";
