/* pal_endpoints: which pods on this node are enforced, keyed by host veth.
 *
 * Key: the ifindex of the pod's HOST-SIDE veth, i.e. skb->ifindex on both of
 * its hooks (tc ingress and tc egress report the same device). There is no
 * wildcard: a device without an entry is not a Palisade endpoint and its
 * packets pass (PASS_UNSELECTED). `endpoint_id` is the node-local number
 * that keys the pod's entries in pal_policy and pal_policy_cidr; `identity`
 * is the pod's cluster-wide security identity. The default rules name the
 * rule that a DROP_POLICY in each direction is attributed to (a
 * DROP_POLICY_DENY is attributed to the deny rule that matched).
 *
 * The structs are shared with user space (the test runner); the map itself
 * is only defined when compiling for BPF. Layout: docs/adr/0001-datapath-maps.md.
 */
#ifndef PAL_ENDPOINTS_H
#define PAL_ENDPOINTS_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_ENDPOINTS_MAX
#define PAL_ENDPOINTS_MAX 1024
#endif

/* flags: two lanes of eight bits, the ALLOW lane in bits 0..7 and the DENY
 * lane (ADR 0010) in bits 8..15, the same layout shifted by
 * PAL_DENY_FLAGS_SHIFT. In each lane, bit = <base> << direction:
 *
 *   bit  allow lane                      bit  deny lane
 *   0/1  ingress/egress ENFORCED:        8/9  ingress/egress DENY: the pod has
 *        some policy selects the pod          deny entries in that direction
 *        (absent: PASS_UNSELECTED)            (probe the identity class)
 *   2/3  CIDR: pal_policy_cidr has       10/11 DENY_CIDR: pal_policy_cidr has
 *        entries (direction 0/1)               entries (direction 2/3)
 *   4/5  ANY: pal_policy has class-ANY   12/13 DENY_ANY: class-ANY deny entries
 *        entries
 *   6/7  CLUSTER: pal_policy has class-  14/15 DENY_CLUSTER: class-CLUSTER deny
 *        CLUSTER (3) entries                   entries
 *
 * Each gates its lookup, so a packet never probes for entries that cannot
 * exist: an endpoint without deny rules pays one flag test for them. The
 * CLUSTER class is probed only for peers whose identity is in the cluster
 * (ipcache.h pal_cluster_identity).
 *
 * Bits 16 and 17 are no lane's (docs/adr/0012-dns-redirect.md, dns.h):
 *
 *   16   DNS_REDIRECT: the pod's DNS queries (UDP and TCP to port 53 of an
 *        upstream in pal_dns_upstreams), once allowed by policy, go to the
 *        node's DNS proxy while its lease runs, else to the upstream
 *   17   DNS_NO_FALLBACK: with DNS_REDIRECT, while no proxy is alive the
 *        queries are dropped (DROP_DNS_NO_PROXY) instead of going to the
 *        upstream: for pods whose DNS rules the proxy enforces */
#define PAL_EP_INGRESS_ENFORCED (1u << 0)
#define PAL_EP_EGRESS_ENFORCED  (1u << 1)
#define PAL_EP_INGRESS_CIDR     (1u << 2)
#define PAL_EP_EGRESS_CIDR      (1u << 3)
#define PAL_EP_INGRESS_ANY      (1u << 4)
#define PAL_EP_EGRESS_ANY       (1u << 5)
#define PAL_EP_INGRESS_CLUSTER  (1u << 6)
#define PAL_EP_EGRESS_CLUSTER   (1u << 7)
#define PAL_EP_INGRESS_DENY     (1u << 8)
#define PAL_EP_EGRESS_DENY      (1u << 9)
#define PAL_EP_INGRESS_DENY_CIDR (1u << 10)
#define PAL_EP_EGRESS_DENY_CIDR  (1u << 11)
#define PAL_EP_INGRESS_DENY_ANY  (1u << 12)
#define PAL_EP_EGRESS_DENY_ANY   (1u << 13)
#define PAL_EP_INGRESS_DENY_CLUSTER (1u << 14)
#define PAL_EP_EGRESS_DENY_CLUSTER  (1u << 15)
#define PAL_EP_DNS_REDIRECT     (1u << 16)
#define PAL_EP_DNS_NO_FALLBACK  (1u << 17)
#define PAL_EP_ENFORCED(dir)    (PAL_EP_INGRESS_ENFORCED << (dir))
#define PAL_EP_CIDR(dir)        (PAL_EP_INGRESS_CIDR << (dir))
#define PAL_EP_ANY(dir)         (PAL_EP_INGRESS_ANY << (dir))
#define PAL_EP_CLUSTER(dir)     (PAL_EP_INGRESS_CLUSTER << (dir))
#define PAL_EP_DENY(dir)        (PAL_EP_INGRESS_DENY << (dir))

/* The deny lane's flags are the allow lane's shifted by this many bits:
 * (flags >> PAL_DENY_FLAGS_SHIFT) reads the deny lane with the allow lane's
 * names (ENFORCED meaning "has deny entries"). */
#define PAL_DENY_FLAGS_SHIFT 8

struct endpoint_info {
	__u32 endpoint_id;
	__u32 identity;
	__u32 flags;
	__u32 ingress_default_rule;
	__u32 egress_default_rule;
	__u32 ipv4; /* network byte order */
};
_Static_assert(sizeof(struct endpoint_info) == 24, "endpoint_info is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_endpoints SEC(".maps");
#endif

#endif
