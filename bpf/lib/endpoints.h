/* pal_endpoints: which pods on this node are enforced, keyed by host veth.
 *
 * Key: the ifindex of the pod's HOST-SIDE veth, i.e. skb->ifindex on both of
 * its hooks (tc ingress and tc egress report the same device). There is no
 * wildcard: a device without an entry is not a Palisade endpoint and its
 * packets pass (PASS_UNSELECTED). `endpoint_id` is the node-local number
 * that keys the pod's entries in pal_policy and pal_policy_cidr; `identity`
 * is the pod's cluster-wide security identity. The default rules name the
 * rule that a DROP_POLICY in each direction is attributed to.
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

/* flags: a direction is enforced when some policy selects the pod for it
 * (bit = 1 << direction); the CIDR bits say pal_policy_cidr has entries for
 * the pod in that direction (bit = 4 << direction), the ANY bits that
 * pal_policy has class-ANY entries for it (bit = 16 << direction). Each gates
 * its lookup, so a packet never probes for entries that cannot exist. */
#define PAL_EP_INGRESS_ENFORCED (1u << 0)
#define PAL_EP_EGRESS_ENFORCED  (1u << 1)
#define PAL_EP_INGRESS_CIDR     (1u << 2)
#define PAL_EP_EGRESS_CIDR      (1u << 3)
#define PAL_EP_INGRESS_ANY      (1u << 4)
#define PAL_EP_EGRESS_ANY       (1u << 5)
#define PAL_EP_ENFORCED(dir)    (PAL_EP_INGRESS_ENFORCED << (dir))
#define PAL_EP_CIDR(dir)        (PAL_EP_INGRESS_CIDR << (dir))
#define PAL_EP_ANY(dir)         (PAL_EP_INGRESS_ANY << (dir))

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
