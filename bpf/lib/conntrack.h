/* pal_ct4: the IPv4 connections of this node's endpoints, so that their
 * later packets and their replies skip policy.
 *
 * Key: the connection as ONE endpoint sees it: the endpoint's own address
 * and port, the peer's address and port, the protocol. Both hooks of the
 * endpoint build the same key for both directions of a connection (to-pod:
 * own = destination; from-pod: own = source), so a reply is found by the
 * same single lookup as any other packet. A connection between two pods of
 * this node has an entry for each pod. Addresses in network byte order,
 * ports in host byte order, 0 for protocols without ports (ICMP). No
 * wildcards.
 *
 * Value: `origin` is the direction the connection was opened in (0: into the
 * pod, 1: out of it): packets in that direction are ALLOW_ESTABLISHED, the
 * others ALLOW_REPLY. `revision` is pal_config.policy_revision as read
 * before the policy decision; an entry behind it is decided again by the
 * policy of its origin direction. `revoked` marks an entry whose connection
 * that decision denied (PAL_CT_REVOKED_DEFAULT, or PAL_CT_REVOKED_DENY when
 * a deny rule matched it; rule_id then names that rule, else the default
 * rule of its origin direction): its packets, both ways, are dropped until a later
 * revision allows it again or a SYN replaces it. The entry is kept rather
 * than deleted so that the connection keeps its direction: were it gone, a
 * reply still on its way out of the pod would be recorded as a connection
 * the pod opened (where its egress is not enforced), and the peer's packets
 * would pass as the replies to it. `rule_id` is the
 * rule that admitted the connection (0: the host rule, or a direction no
 * policy enforces). `last_seen` is the low 32 bits of jiffies, written at
 * creation and refreshed once it is PAL_CT_REFRESH_JIFFIES behind, for a
 * garbage collector of idle entries (bpf_jiffies64 is inlined; the clock
 * helpers cost a call per packet; pal_clock gives user space the same
 * clock). Every packet of the connection refreshes it, a revoked one's
 * (dropped) included, so a revoked entry outlives the connection's last
 * attempt by a whole timeout and the flow stays cut. `closing` marks a TCP
 * connection that has seen a FIN or RST. `ifindex` is the endpoint's host
 * veth: a packet on another device (a pod spoofing this endpoint's address,
 * or a new pod that got the address of a deleted one) is not trusted with
 * the entry and is decided as new, where the source check and the policy
 * apply. `nat` and its address and port tie the two entries of a
 * connection to a Service together (docs/adr/0005-service-egress.md): the
 * SERVICE entry, keyed by the tuple the pod sent (to the frontend), names
 * the backend its packets are translated to; the REVERSE entry, keyed by
 * the translated tuple (to the backend), is an ordinary entry of the pod's
 * egress, judged and revoked like any other, that names the frontend its
 * replies are translated back from. A DNS entry (PAL_NAT_DNS), keyed by
 * a pod's DNS query as redirected to the node's DNS proxy, names the
 * upstream the proxy's replies are translated back from
 * (docs/adr/0012-dns-redirect.md); like a SERVICE entry it holds no
 * verdict (the connection to the upstream has its own entry), but it is
 * counted, bound to its device and collected as any. `packets`, `bytes` and `last_report`
 * serve flow events (flows.h): a connection's counts, reported when it
 * ends and every pal_flow_update_units while it lives.
 *
 * pal_ct4 is a plain preallocated HASH: nothing is ever evicted, so no pod
 * can push another pod's connections (revoked ones included) out of the
 * table (docs/adr/0003-conntrack-budget.md). Entries leave only through the
 * agent's garbage collector (agent/conntrack-gc.ts), which removes those
 * idle longer than their protocol's timeout through pal_ct_forget, so that
 * pal_ct_budget stays exact; a SYN replaces its own entry.
 *
 * pal_ct_budget: how many pal_ct4 entries each device holds (key: the
 * ifindex of the entry's `ifindex`), and under key 0 how many there are in
 * all. The datapath counts an entry when it creates it, pal_ct_forget when
 * it deletes it. A new connection is refused (DROP_CT_FULL) when its
 * endpoint would hold more than pal_ct_endpoint_max entries, or more than
 * PAL_CT_RESERVED while the node would hold more than PAL_CT_SHARED. So
 * each endpoint is guaranteed its PAL_CT_RESERVED entries (as long as no
 * more than PAL_ENDPOINTS_MAX devices hold entries), whatever the others
 * do, and the table never fills: beyond its reserve an endpoint draws on
 * a shared part that it cannot take from anyone's reserve.
 */
#ifndef PAL_CONNTRACK_H
#define PAL_CONNTRACK_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#include "endpoints.h"

#ifndef PAL_CT_MAX
#define PAL_CT_MAX (1 << 18)
#endif

/* Entries each endpoint can always open, whatever the others hold. */
#ifndef PAL_CT_RESERVED
#define PAL_CT_RESERVED 32
#endif

/* The part of the table beyond every endpoint's reserve. */
#define PAL_CT_SHARED (PAL_CT_MAX - PAL_ENDPOINTS_MAX * PAL_CT_RESERVED)
_Static_assert(PAL_CT_MAX > PAL_ENDPOINTS_MAX * PAL_CT_RESERVED, "the reserves fit the table");

/* Records per run of pal_ct_forget. */
#define PAL_CT_FORGET_BATCH 128

/* A quarter of a second at HZ=1000, 2.5 s at HZ=100: fine enough for idle
 * timeouts of tens of seconds, rare enough to leave the line unwritten. */
#define PAL_CT_REFRESH_JIFFIES 256

struct ct4_key {
	__u32 addr;      /* the endpoint's own address */
	__u32 peer_addr;
	__u16 port;      /* the endpoint's own port */
	__u16 peer_port;
	__u8 protocol;
	__u8 pad[3];
};
_Static_assert(sizeof(struct ct4_key) == 16, "ct4_key is ABI");

/* ct_value.nat: what an entry says about Service translation (lb.h). */
#define PAL_NAT_NONE    0
#define PAL_NAT_SERVICE 1 /* keyed by the pod's tuple to a Service frontend: its packets go to
                           * nat_addr:nat_port, the backend chosen; holds no verdict */
#define PAL_NAT_REVERSE 2 /* the connection to that backend: replies come back from
                           * nat_addr:nat_port, the frontend the pod addressed */
#define PAL_NAT_DNS     3 /* keyed by a DNS query's flow as redirected (the pod's address and port, the
                           * DNS proxy's address and port: dns.h): the proxy's replies come back from
                           * nat_addr:nat_port, the upstream the query was for; holds no verdict */

/* ct_value.revoked: why the connection was denied at its revision. */
#define PAL_CT_REVOKED_DEFAULT 1 /* no rule allows it any more (the default deny; rule_id: the default rule) */
#define PAL_CT_REVOKED_DENY    2 /* a deny rule matches it (rule_id: that rule) */

struct ct_value {
	__u32 revision;
	__u32 rule_id;
	__u32 last_seen; /* jiffies, low 32 bits */
	__u32 ifindex;   /* the endpoint's host veth */
	__u8 origin;     /* PAL_DIR_INGRESS or PAL_DIR_EGRESS */
	__u8 revoked;    /* PAL_CT_REVOKED_*: denied at `revision` (0: live) */
	__u8 closing;    /* 1: a TCP FIN or RST was seen (a shorter idle timeout) */
	__u8 nat;        /* PAL_NAT_* */
	__u32 nat_addr;  /* network byte order; with nat only */
	__u16 nat_port;  /* host byte order; with nat only */
	__u16 pad;
	__u32 last_report; /* when the connection last wrote a flow event, in 2^20 ns units (flows.h) */
	__u64 packets;   /* packets of the connection, both ways, that passed this entry */
	__u64 bytes;
};
_Static_assert(sizeof(struct ct_value) == 48, "ct_value is ABI");

struct ct_budget {
	__u32 entries;
};
_Static_assert(sizeof(struct ct_budget) == 4, "ct_budget is ABI");

/* One record of pal_ct_forget's input: delete the entry of `key` if its
 * last_seen is still `last_seen` (it was not refreshed since the agent
 * judged it idle). */
struct ct_forget {
	struct ct4_key key;
	__u32 last_seen;
};
_Static_assert(sizeof(struct ct_forget) == 20, "ct_forget is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_CT_MAX);
	__type(key, struct ct4_key);
	__type(value, struct ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * PAL_ENDPOINTS_MAX + 1);
	__type(key, __u32);
	__type(value, struct ct_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ct_budget SEC(".maps");

/* One struct ct_value per CPU, where a global function builds a new
 * entry's value off its stack (dns_redirect: pal_from_pod's stack and
 * that function's together must stay within 512 bytes). A tc program is
 * not interrupted on its CPU by another one, so each run has it to itself
 * between filling it and handing it to ct_open(). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ct_scratch SEC(".maps");

/* The most entries one endpoint may hold (load-time; default: no limit
 * but the shared part). Name is ABI for the loader. */
const volatile __u32 pal_ct_endpoint_max = PAL_CT_MAX;
#endif

#endif
