/* pal_config: node-wide datapath state the agent changes at run time, and
 * the load-time configuration of the programs.
 *
 * pal_config is an ARRAY with the single key 0. `policy_revision` is bumped
 * by the agent after every batch of policy, ipcache or endpoint changes;
 * conntrack entries recorded under an older revision are re-evaluated at
 * their next packet. `flags` is reserved (the datapath reads none yet).
 *
 * Load-time configuration lives in .rodata (`const volatile`): the loader
 * sets it between open and load; .rodata is then frozen, and the verifier
 * reads these as constants and does not explore the branches they switch off.
 */
#ifndef PAL_CONFIG_H
#define PAL_CONFIG_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

struct datapath_config {
	__u32 policy_revision;
	__u32 flags;
};
_Static_assert(sizeof(struct datapath_config) == 8, "datapath_config is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datapath_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_config SEC(".maps");

/* Whether the host (identity 1) may always open connections to its local
 * pods, whatever their ingress policy: kubelet's probes come from the host,
 * and Kubernetes expects them to work. Name is ABI for the loader. */
const volatile __u32 pal_host_reaches_pods = 1;
#endif

#endif
