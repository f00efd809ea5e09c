/* The benchmark baseline: a tc program that does nothing but let the packet
 * continue, so that measuring it gives the fixed cost of running any tc
 * program, to subtract from pal_from_pod's and pal_to_pod's. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int pal_passthrough(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Apache-2.0";
