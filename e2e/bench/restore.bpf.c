/* The restore harness of `npm run bench -- packet` (e2e/bench/packet.ts): the
 * Service cases' frame written back before every test_run repeat, then a tail
 * call into a copy of the hook. Compiled at run time like fresh.bpf.c. */
/* Bytes restored; packet.ts (FRAME_LEN) checks every case's frame has this length. */
#define RESTORE_FRAME_LEN 54

#define pal_from_pod restore_pal_from_pod
#define pal_to_pod restore_pal_to_pod
#include "endpoint.bpf.c"
#undef pal_from_pod
#undef pal_to_pod

struct frame {
	__u8 bytes[RESTORE_FRAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct frame);
} restore_frame SEC(".maps");

SEC("tc")
int restore_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} restore_targets SEC(".maps") = {
	.values = { [0] = (void *)&restore_pal_from_pod, [1] = (void *)&restore_pal_to_pod, [2] = (void *)&restore_empty },
};

static __always_inline int restore(struct __sk_buff *skb, __u32 target)
{
	__u32 zero = 0;
	struct frame *f = bpf_map_lookup_elem(&restore_frame, &zero);

	if (!f || bpf_skb_store_bytes(skb, 0, f->bytes, sizeof(f->bytes), 0))
		return TC_ACT_UNSPEC;
	bpf_tail_call(skb, &restore_targets, target);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int restore_from_pod(struct __sk_buff *skb)
{
	return restore(skb, 0);
}

SEC("tc")
int restore_to_pod(struct __sk_buff *skb)
{
	return restore(skb, 1);
}

SEC("tc")
int restore_baseline(struct __sk_buff *skb)
{
	return restore(skb, 2);
}
