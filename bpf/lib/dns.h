/* pal_dns_upstreams and pal_dns_proxy: the redirect of pods' DNS queries to
 * the node's DNS proxy (docs/adr/0012-dns-redirect.md).
 *
 * The agent runs a DNS proxy on each node (a plain UDP/TCP server: Node.js
 * cannot open transparent sockets), so the redirect is a NAT done on the
 * pod's veth. For an endpoint with PAL_EP_DNS_REDIRECT (endpoints.h), a UDP
 * or TCP packet to port 53 of an upstream listed in pal_dns_upstreams,
 * once its connection was decided by policy against that upstream (after
 * any Service translation), gets its destination rewritten to
 * pal_dns_proxy.addr and the upstream's proxy_port, while the proxy's lease
 * runs. The proxy tells upstreams apart by the port it is reached on. A
 * conntrack entry of kind PAL_NAT_DNS (conntrack.h), keyed by the flow as
 * it leaves the pod's veth (pod address and port, proxy address and port),
 * names the upstream; the proxy's replies on that flow get their source
 * rewritten back to it before conntrack judges them.
 *
 * pal_dns_upstreams (HASH): key an upstream's IPv4 address (network byte
 * order); value the port of the proxy that stands in for it (network byte
 * order). No wildcards: an address not listed is never redirected.
 *
 * pal_dns_proxy (ARRAY, key 0): the proxy's address (network byte order)
 * and its lease: the proxy is alive while bpf_jiffies64() < alive_until.
 * alive_until is the whole 64-bit jiffies (pal_clock writes it into its
 * packet for user space, which adds the lease in ticks of the kernel's HZ);
 * 0, or an address of 0, means no proxy. While no proxy is alive, queries
 * go to their upstream untouched, unless the endpoint has
 * PAL_EP_DNS_NO_FALLBACK (its DNS rules must not be bypassed): then they
 * are dropped (DROP_DNS_NO_PROXY). A TCP connection keeps the path its SYN
 * took: redirected to the end when it was, never redirected mid-stream.
 */
#ifndef PAL_DNS_H
#define PAL_DNS_H

#include <linux/types.h>
#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef PAL_DNS_UPSTREAMS_MAX
#define PAL_DNS_UPSTREAMS_MAX 256
#endif

#define PAL_DNS_PORT 53

struct dns_upstream {
	__be16 proxy_port; /* network byte order */
	__u16 pad;
};
_Static_assert(sizeof(struct dns_upstream) == 4, "dns_upstream is ABI");

struct dns_proxy {
	__be32 addr;        /* network byte order; 0: no proxy */
	__u32 pad;
	__u64 alive_until;  /* jiffies (64 bits); the proxy is alive before it; 0: not alive */
};
_Static_assert(sizeof(struct dns_proxy) == 16, "dns_proxy is ABI");

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_DNS_UPSTREAMS_MAX);
	__type(key, __u32);
	__type(value, struct dns_upstream);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_dns_upstreams SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_proxy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_dns_proxy SEC(".maps");
#endif

#endif
