/* The `flows` benchmark's event source (e2e/bench/flows.ts).
 *
 * Every run is a connection never seen, opened through the real ingress
 * program: the driver rewrites the benchmark's SYN (source address and port
 * from a run counter, over flows_peers consecutive peers that pal_ipcache4
 * maps to an allowed identity), runs pal_to_pod's own code on it
 * (handle(), compiled here from bpf/endpoint.bpf.c, on the benchmark's
 * pinned maps: pal_flows is the ring the agent reads), then forgets the
 * connection's conntrack entry as the agent's garbage collector would
 * (delete, then the budget given back), so that the table never fills
 * however many millions of connections a run opens. So each run is one
 * NEW flow event: a tuple repeats only after 16,384 x flows_peers runs.
 *
 * The datapath's programs are renamed so that their pins do not replace
 * those of the object under test. Compiled by the benchmark at run time.
 */
#define pal_from_pod flows_pal_from_pod
#define pal_to_pod flows_pal_to_pod
#include "endpoint.bpf.c"
#undef pal_from_pod
#undef pal_to_pod

/* Set by the benchmark: the first peer address (network order) and how many
 * consecutive addresses follow it, all allowed to the endpoint. */
const volatile __u32 flows_first_peer = 0;
const volatile __u32 flows_peers = 1;

__u32 flows_counter;

SEC("tc")
int flows_new(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 n = flows_counter++;
	struct ct4_key key = { 0 };
	__u16 sport = 1024 + (n & 0x3fff);
	int verdict;

	if ((void *)(tcp + 1) > end)
		return TC_ACT_UNSPEC;
	tcp->source = bpf_htons(sport);
	ip->saddr = bpf_htonl(bpf_ntohl(flows_first_peer) + (n >> 14) % flows_peers);
	/* ct_key_of() of this packet at the ingress hook. */
	key.addr = ip->daddr;
	key.peer_addr = ip->saddr;
	key.port = bpf_ntohs(tcp->dest);
	key.peer_port = sport;
	key.protocol = IPPROTO_TCP;
	verdict = handle(skb, PAL_DIR_INGRESS);
	if (!bpf_map_delete_elem(&pal_ct4, &key))
		ct_release(skb->ifindex);
	return verdict;
}
