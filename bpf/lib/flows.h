/* pal_flows: flow events, from the endpoint programs to the agent through a
 * BPF ring buffer (issue 8).
 *
 * An event is written for every new connection, allowed or dropped
 * (FLOW_NEW, FLOW_DROP), for every other drop (FLOW_DROP), for a
 * connection's end (FLOW_END: its first TCP FIN or RST, or its conntrack
 * entry collected idle), and every pal_flow_update_units for a connection
 * that lives on (FLOW_UPDATE), with its packet and byte counts so far.
 * Established packets write nothing: they add to their entry's counters.
 *
 * Drops are summarised per key (device, peer, destination port, protocol,
 * reason, direction) in
 * pal_drop_agg: each key counts its drops (`total`), and a drop writes its
 * event only if its key wrote none in the last PAL_FLOW_DROP_WINDOW_NS; the
 * event carries the key's running total in `packets`. So a flood of one
 * kind costs one event per key per window, the events of other traffic
 * keep flowing, and the agent, which remembers the last total it saw per
 * key, knows how many drops each event stands for. The drops after a
 * key's last event are in the map: the agent reads it every window and
 * reports those tails itself (as summaries). A key the LRU pushes out takes
 * its tail with it; the agent finds such gaps by comparing the drops
 * pal_metrics counts (exactly) with those the events account for.
 *
 * An event the ring cannot take is counted in pal_flow_lost (per CPU,
 * indexed by event type): never silent loss.
 *
 * Times are CLOCK_BOOTTIME nanoseconds (the reader turns them into wall
 * time). Addresses network order, ports and identities host order.
 */
#ifndef PAL_FLOWS_H
#define PAL_FLOWS_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

/* flow_event.type */
#define PAL_FLOW_NEW          1 /* a new connection passed (ALLOW_POLICY, PASS_UNSELECTED) */
#define PAL_FLOW_DROP         2 /* a packet was dropped (the first of its key in a window) */
#define PAL_FLOW_END          3 /* a connection ended: first FIN or RST, or collected idle */
#define PAL_FLOW_UPDATE       4 /* a long-lived connection's counts so far */
#define PAL_FLOW_DROP_SUMMARY 5 /* written by the agent, never the kernel: drops of a key after its last event */
#define PAL_FLOW_TYPES        8 /* size of pal_flow_lost */

/* flow_event.flags */
#define PAL_FLOWF_DEFAULT_DENY (1u << 0) /* DROP_POLICY, or DROP_REVOKED by the default deny: no rule allowed it;
                                          * rule_id is the default rule (never with DROP_POLICY_DENY: a deny rule decided) */
#define PAL_FLOWF_SERVICE      (1u << 1) /* to a Service: nat_addr:nat_port is the frontend the pod addressed */
#define PAL_FLOWF_IDLE         (1u << 2) /* END: collected idle, not closed */
#define PAL_FLOWF_RUNNING_TOTAL (1u << 3) /* DROP: `packets` is its key's running total in pal_drop_agg */
#define PAL_FLOWF_DNS_PROXY    (1u << 4) /* NEW: a DNS query sent to the node's DNS proxy; daddr is still the upstream */

#ifndef PAL_FLOW_RING_BYTES
#define PAL_FLOW_RING_BYTES (16u << 20)
#endif
#ifndef PAL_FLOW_DROP_AGG_MAX
#define PAL_FLOW_DROP_AGG_MAX 16384
#endif
#define PAL_FLOW_DROP_WINDOW_NS 250000000ull /* 250 ms */

struct flow_event {
	__u64 time_ns;      /* CLOCK_BOOTTIME */
	__u64 packets;      /* END, UPDATE: the connection's so far, both ways; DROP: see PAL_FLOWF_RUNNING_TOTAL */
	__u64 bytes;
	__u32 ifindex;      /* the endpoint's host veth */
	__u32 saddr;        /* NEW, END, UPDATE: the connection as opened; DROP: the packet */
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 src_identity; /* 0: not known (a drop before the peer was looked up) */
	__u32 dst_identity;
	__u32 rule_id;      /* the rule that allowed (NEW), admitted (END, UPDATE) or denied (DROP: the deny rule, or the default rule) */
	__u32 nat_addr;     /* PAL_FLOWF_SERVICE: the frontend */
	__u16 nat_port;
	__u8 protocol;
	__u8 direction;     /* NEW, END, UPDATE: the direction the connection was opened in; DROP: the hook's */
	__u8 type;          /* PAL_FLOW_* */
	__u8 reason;        /* reasons.h */
	__u8 tcp_flags;     /* of the packet (NEW, DROP, END by FIN/RST) */
	__u8 flags;         /* PAL_FLOWF_* */
};
_Static_assert(sizeof(struct flow_event) == 64, "flow_event is ABI");

/* The key drops are summarised under. */
struct drop_agg_key {
	__u32 ifindex;
	__u32 peer;         /* the peer address, network order */
	__u16 dport;        /* the packet's destination port (host order), 0 without ports */
	__u8 protocol;
	__u8 reason;
	__u8 direction;
	__u8 pad[3];
};
_Static_assert(sizeof(struct drop_agg_key) == 16, "drop_agg_key is ABI");

/* The value of pal_drop_agg. */
struct drop_agg {
	__u64 total;        /* drops of the key since it entered the map */
	__u64 last_event;   /* CLOCK_MONOTONIC_COARSE of its last event (only compared with itself) */
};
_Static_assert(sizeof(struct drop_agg) == 16, "drop_agg is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PAL_FLOW_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_FLOW_TYPES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_flow_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_FLOW_DROP_AGG_MAX);
	__type(key, struct drop_agg_key);
	__type(value, struct drop_agg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_drop_agg SEC(".maps");

/* Whether the programs write flow events at all (load-time; 0 for the
 * benchmark's baseline). Name is ABI for the loader. */
const volatile __u32 pal_flow_events = 1;

/* How often a long-lived connection reports its counts, in units of 2^20 ns
 * (about a millisecond); default about 60 s. Name is ABI for the loader. */
const volatile __u32 pal_flow_update_units = 57220;

static __always_inline void flow_lost(__u32 type)
{
	__u64 *n = bpf_map_lookup_elem(&pal_flow_lost, &type);

	if (n)
		*n += 1;
}

/* Writes one event, or counts it lost. A global function: checked once by
 * the verifier, and the reason struct flow_event is in the object's BTF
 * (what datapath/abi.test.ts compares the TypeScript mirror with). */
__noinline int flow_emit(struct flow_event *e)
{
	if (!e)
		return 0;
	if (bpf_ringbuf_output(&pal_flows, e, sizeof(*e), 0))
		flow_lost(e->type);
	return 0;
}

/* The fast path of a drop (report() takes it before building the event):
 * true when its key wrote an event within the window, after counting it. */
static __always_inline bool flow_drop_counted(__u32 ifindex, __u32 peer, __u16 dport, __u8 protocol, __u8 reason,
					      __u8 direction)
{
	struct drop_agg_key k = {
		.ifindex = ifindex, .peer = peer, .dport = dport, .protocol = protocol,
		.reason = reason, .direction = direction,
	};
	struct drop_agg *agg = bpf_map_lookup_elem(&pal_drop_agg, &k);

	if (!agg || !agg->last_event || bpf_ktime_get_coarse_ns() - agg->last_event >= PAL_FLOW_DROP_WINDOW_NS)
		return false;
	__sync_fetch_and_add(&agg->total, 1);
	return true;
}

/* A drop: counted under its key, and its event written (with the key's
 * running total) unless the key wrote one within the window. */
static __always_inline void flow_drop(struct flow_event *e, __u32 peer)
{
	struct drop_agg_key k = {
		.ifindex = e->ifindex, .peer = peer, .dport = e->dport, .protocol = e->protocol,
		.reason = e->reason, .direction = e->direction,
	};
	struct drop_agg *agg = bpf_map_lookup_elem(&pal_drop_agg, &k);
	__u64 now;

	if (!agg) {
		struct drop_agg fresh = { 0 };

		bpf_map_update_elem(&pal_drop_agg, &k, &fresh, BPF_NOEXIST); /* or another CPU did */
		agg = bpf_map_lookup_elem(&pal_drop_agg, &k);
		if (!agg) {
			flow_emit(e); /* no room to summarise: the event itself, standing for itself */
			return;
		}
	}
	e->packets = __sync_fetch_and_add(&agg->total, 1) + 1;
	now = bpf_ktime_get_coarse_ns();
	if (agg->last_event && now - agg->last_event < PAL_FLOW_DROP_WINDOW_NS)
		return;
	agg->last_event = now;
	e->flags |= PAL_FLOWF_RUNNING_TOTAL;
	flow_emit(e);
}
#endif

#endif
