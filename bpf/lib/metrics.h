/* pal_metrics: packet and byte counters per verdict reason.
 *
 * Key: the reason code of reasons.h (no wildcards). PERCPU_ARRAY, so the
 * datapath increments without atomics; readers sum over the possible CPUs.
 * Every packet a program sees is counted exactly once.
 */
#ifndef PAL_METRICS_H
#define PAL_METRICS_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif
#include "reasons.h"

#define PAL_METRICS_MAX 256 /* reason codes are below 256 (reasons.h) */

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct metrics_value) == 16, "metrics_value is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_METRICS_MAX);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_metrics SEC(".maps");
#endif

#endif
