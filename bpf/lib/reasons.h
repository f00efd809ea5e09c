/* Verdict reasons: the index of pal_metrics and, later, of flow events.
 *
 * APPEND-ONLY. A number, once released, is never reused or renumbered, even
 * after its reason is retired: dashboards, stored flow logs and the
 * TypeScript mirror of this table read the numbers, not the names.
 * Codes below 128 let the packet continue (TC_ACT_OK), codes from 128 drop
 * it (TC_ACT_SHOT); all stay below 256, the size of pal_metrics.
 * Source of truth: docs/adr/0001-datapath-maps.md.
 */
#ifndef PAL_REASONS_H
#define PAL_REASONS_H

#define PAL_ALLOW_POLICY      1   /* a new connection allowed by a policy entry (or the host rule) */
#define PAL_ALLOW_ESTABLISHED 2   /* a packet of a connection this hook admitted */
#define PAL_ALLOW_REPLY       3   /* a reply to a connection this endpoint's other hook admitted */
#define PAL_PASS_UNSELECTED   4   /* no endpoint, or no policy selects the pod in this direction */
#define PAL_PASS_NON_IP       5   /* ARP for the pod's own address (until issue 7: any non-IPv4) */
#define PAL_ALLOW_RELATED     6   /* an ICMP error about a live connection of this endpoint */
#define PAL_PASS_DNS_REDIRECT 7   /* a DNS query the policy let out, sent to the node's DNS proxy instead of its upstream */

#define PAL_DROP_FIRST        128
#define PAL_DROP_POLICY       128 /* no policy entry allows the new connection (the default deny) */
#define PAL_DROP_MALFORMED    129 /* a header is truncated or invalid */
#define PAL_DROP_FRAGMENT     130 /* a non-first fragment whose first fragment did not pass here */
#define PAL_DROP_REVOKED      131 /* an established connection the current policy no longer allows */
#define PAL_DROP_SPOOFED      132 /* from a pod, with a source address that is not the pod's (IPv4 or ARP) */
#define PAL_DROP_VLAN         133 /* an 802.1Q or 802.1ad tag, in the frame or in the skb's metadata */
#define PAL_DROP_NOT_IPV4     134 /* neither IPv4 nor ARP for the pod's own address (IPv6 included) */
#define PAL_DROP_ICMP_ERROR   135 /* an ICMP error about no live connection of this endpoint */
#define PAL_DROP_CT_FULL      136 /* a new connection over the endpoint's conntrack budget */
#define PAL_DROP_NO_ENDPOINT  137 /* a device with the programs but no pal_endpoints entry (a pod being torn down) */
#define PAL_DROP_NO_BACKEND   138 /* to a Service frontend that has no backend (or whose backends are being rewritten) */
#define PAL_DROP_NAT          139 /* a packet of a Service connection that could not be translated */
#define PAL_DROP_POLICY_DENY  140 /* a deny rule matches the new connection (whatever allows it) */
#define PAL_DROP_DNS_NO_PROXY 141 /* a DNS query of an endpoint that must not bypass the DNS proxy, while none is alive */
#define PAL_DROP_PREFILTER    142 /* the XDP prefilter: from a source every pod of the node denies, to one of its pods (ADR 0013) */

#define PAL_REASON_IS_DROP(r) ((r) >= PAL_DROP_FIRST)

#endif
