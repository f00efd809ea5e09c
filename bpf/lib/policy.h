/* pal_policy and pal_policy_cidr: what each endpoint allows, per peer class.
 *
 * pal_policy (HASH) is keyed by (endpoint_id, peer class, direction,
 * protocol, dport). The class is a peer identity, ANY (0: every peer) or a
 * CIDR-region pseudo identity (2^31 | h), or CLUSTER (3: every peer whose
 * identity is in the cluster). Direction 0 is ingress (to the pod), 1
 * egress (from the pod); 2 and 3 are the DENY lanes of ingress and egress
 * (ADR 0010): the same layout and lookups in all three maps, but what they
 * match is dropped (DROP_POLICY_DENY) before the allow lane is looked at.
 * Protocol 0 and port 0 are wildcards, ports
 * are in host byte order. For each (endpoint, class, direction) the compiler
 * writes a SUMMARY entry with protocol 0 and port 0 whose flags say which
 * other entries exist, so a lookup never probes for entries that are absent:
 *   ALL             everything is allowed, rule_id of the summary decides;
 *   <P>_ANY_PORT    (E, X, D, P, 0) exists: every port of protocol P;
 *   <P>_PORTS       (E, X, D, P, port) exists for some single ports;
 *   <P>_RANGES      pal_policy_ports has port-prefix entries of (E, X, D, P).
 * Only TCP, UDP and SCTP have port flags; any other protocol (ICMP...) is
 * allowed by ALL only.
 *
 * pal_policy_ports (LPM_TRIE) holds the port ranges (endPort) of (E, X, D,
 * P), each split into at most 2 x 15 aligned port prefixes, as Cilium does
 * since 1.16: a range costs a few entries whatever its width, so no range is
 * expanded port by port and none is refused. Its prefixlen counts the 80
 * fixed bits (endpoint_id, identity, direction, protocol) first, then the
 * high bits of the port (network byte order, so prefixes match). The planner
 * writes the ranges of one class as disjoint prefixes, each with the rule
 * that is first for those ports, so the longest match is the only match.
 * Lookup order in a class: ALL, the exact port, a range, every port.
 *
 * pal_policy_cidr (LPM_TRIE) maps (endpoint_id, direction, family, peer
 * address) to the CIDR-region class that the endpoint's ipBlock rules for
 * that address were compiled to; its prefixlen counts the 64 fixed bits
 * (endpoint_id, direction, family, pad) first, then address bits. It is
 * looked up only when the endpoint's PAL_EP_CIDR(dir) flag is set, and by
 * address, whatever the peer's identity, so ipBlocks match pod IPs too.
 *
 * pal_policy is not preallocated: a hash lookup costs the same either way,
 * and preallocating PAL_POLICY_MAX entries would pin ~90 MB on every node.
 */
#ifndef PAL_POLICY_H
#define PAL_POLICY_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_POLICY_MAX
#define PAL_POLICY_MAX (1 << 20)
#endif
#ifndef PAL_POLICY_PORTS_MAX
#define PAL_POLICY_PORTS_MAX (1 << 18)
#endif
#ifndef PAL_POLICY_CIDR_MAX
#define PAL_POLICY_CIDR_MAX (1 << 16)
#endif

#define PAL_DIR_INGRESS 0
#define PAL_DIR_EGRESS  1
/* The lane of deny rules of a direction in policy keys: direction + 2. Never a hook's direction. */
#define PAL_DIR_INGRESS_DENY 2
#define PAL_DIR_EGRESS_DENY  3
#define PAL_DENY_LANE(dir) ((dir) + PAL_DIR_INGRESS_DENY)

/* summary entry flags */
#define PAL_POL_ALL            (1u << 0)
#define PAL_POL_TCP_ANY_PORT   (1u << 1)
#define PAL_POL_UDP_ANY_PORT   (1u << 2)
#define PAL_POL_SCTP_ANY_PORT  (1u << 3)
#define PAL_POL_TCP_PORTS      (1u << 4)
#define PAL_POL_UDP_PORTS      (1u << 5)
#define PAL_POL_SCTP_PORTS     (1u << 6)
#define PAL_POL_TCP_RANGES     (1u << 7)
#define PAL_POL_UDP_RANGES     (1u << 8)
#define PAL_POL_SCTP_RANGES    (1u << 9)

/* prefixlen of an exact IPv4 lookup in pal_policy_cidr: 64 fixed bits, /32 */
#define PAL_POLICY_CIDR_V4_FULL (64 + 32)

struct policy_key {
	__u32 endpoint_id;
	__u32 identity; /* the peer class */
	__u8 direction;
	__u8 protocol;
	__u16 dport;
};
_Static_assert(sizeof(struct policy_key) == 12, "policy_key is ABI");

struct policy_value {
	__u32 rule_id;
	__u32 flags; /* summary entries only */
};
_Static_assert(sizeof(struct policy_value) == 8, "policy_value is ABI");

/* prefixlen of an exact port lookup in pal_policy_ports: 80 fixed bits, 16 port bits */
#define PAL_POLICY_PORTS_FULL (80 + 16)

struct policy_port_key {
	__u32 prefixlen;
	__u32 endpoint_id;
	__u32 identity; /* the peer class */
	__u8 direction;
	__u8 protocol;
	__be16 dport;   /* network byte order: its high bits are the prefix */
};
_Static_assert(sizeof(struct policy_port_key) == 16, "policy_port_key is ABI");

struct policy_cidr_key {
	__u32 prefixlen;
	__u32 endpoint_id;
	__u8 direction;
	__u8 family;
	__u8 pad[2];
	__u8 addr[16]; /* network byte order; IPv4 in the first 4 bytes */
};
_Static_assert(sizeof(struct policy_cidr_key) == 28, "policy_cidr_key is ABI");

struct policy_cidr_value {
	__u32 identity; /* 2^31 | h */
};
_Static_assert(sizeof(struct policy_cidr_value) == 4, "policy_cidr_value is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_POLICY_MAX);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_POLICY_PORTS_MAX);
	__type(key, struct policy_port_key);
	__type(value, struct policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_policy_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_POLICY_CIDR_MAX);
	__type(key, struct policy_cidr_key);
	__type(value, struct policy_cidr_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_policy_cidr SEC(".maps");
#endif

#endif
