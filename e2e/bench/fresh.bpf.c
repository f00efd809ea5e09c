/* The `packet` benchmark's NEW-connection harness (e2e/bench/packet.ts).
 *
 * BPF_PROG_TEST_RUN repeats one packet, so a repeated SYN measures a tuple
 * that is already tracked, not a connection never seen. Here a driver gives
 * every run a tuple of its own (source port and peer address from a
 * counter, peers that pal_ipcache4 maps to an allowed identity) and then
 * tail-calls the program under test: a copy of pal_to_pod compiled from
 * bpf/endpoint.bpf.c itself, on the benchmark copy's own pinned maps (loaded
 * into that copy's pin directory, libbpf reuses its pins). The baseline is
 * the same driver tail-calling an empty program, so the driver's own cost
 * cancels out of the difference.
 *
 * The datapath's programs are renamed here so that their pins do not
 * replace the copy's. Compiled by the benchmark at run time.
 */
#define pal_from_pod fresh_pal_from_pod
#define pal_to_pod fresh_pal_to_pod
#include "endpoint.bpf.c"
#undef pal_from_pod
#undef pal_to_pod

/* Set by the benchmark: the first peer address (network order) and how many
 * consecutive addresses follow it, all allowed to the endpoint's port. */
const volatile __u32 fresh_first_peer = 0;
const volatile __u32 fresh_peers = 1;

__u32 fresh_counter;

SEC("tc")
int fresh_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} fresh_targets SEC(".maps") = {
	.values = { [0] = (void *)&fresh_pal_to_pod, [1] = (void *)&fresh_empty },
};

/* Rewrites the TCP source port and the IPv4 source address of the benchmark's
 * SYN (Ethernet + 20-byte IPv4 + TCP) from the run counter: 16,384 ports per
 * peer address. Checksums are not fixed: nothing on this path reads them. */
static __always_inline int fresh(struct __sk_buff *skb, __u32 target)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 n = fresh_counter++;

	if ((void *)(tcp + 1) > end)
		return TC_ACT_UNSPEC;
	tcp->source = bpf_htons(1024 + (n & 0x3fff));
	ip->saddr = bpf_htonl(bpf_ntohl(fresh_first_peer) + (n >> 14) % fresh_peers);
	bpf_tail_call(skb, &fresh_targets, target);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int fresh_syn(struct __sk_buff *skb)
{
	return fresh(skb, 0);
}

SEC("tc")
int fresh_baseline(struct __sk_buff *skb)
{
	return fresh(skb, 1);
}
