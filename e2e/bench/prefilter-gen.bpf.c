/* The prefilter benchmark's traffic generator (e2e/bench/prefilter.ts):
 * run by BPF_PROG_TEST_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES,
 * as xdp-trafficgen does), it writes the headers of gen_config[0] into each
 * frame (live frames are recycled pages: a frame the stack forwarded comes
 * back with the next hop's MAC and a lower TTL), gives it a new UDP source
 * port and redirects it out of gen_config[0]'s device: a veth, which hands
 * the frame to its peer (the node's uplink) as an XDP frame, without
 * building an skb. Nothing else. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define GEN_HDR 42 /* Ethernet, IPv4, UDP */

struct gen_config {
	__u32 ifindex;
	__u8 hdr[GEN_HDR];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_config);
} gen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gen_port SEC(".maps");

SEC("xdp")
int pal_bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u32 zero = 0, *port = bpf_map_lookup_elem(&gen_port, &zero);
	struct gen_config *cfg = bpf_map_lookup_elem(&gen_config, &zero);

	if (data + GEN_HDR > end || (void *)(udp + 1) > end || !port || !cfg)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->hdr, GEN_HDR);
	*port = *port >= 64511 ? 0 : *port + 1;
	udp->source = bpf_htons(1024 + *port);
	return bpf_redirect(cfg->ifindex, 0);
}

char LICENSE[] SEC("license") = "Apache-2.0";
