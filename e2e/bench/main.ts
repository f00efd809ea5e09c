// `npm run bench -- NAME`: runs one benchmark and prints its figures, each
// beside a baseline measured in the same run.
import { benchApplyLatency } from './apply-latency.ts';
import { benchCni } from './cni.ts';
import { benchCompile } from './compile.ts';
import { benchDns } from './dns.ts';
import { benchDnsFirst } from './dns-first.ts';
import { benchFlows } from './flows.ts';
import { benchPacket } from './packet.ts';
import { benchPrefilter } from './prefilter.ts';
import { benchSync } from './sync.ts';
import { benchThroughput } from './throughput.ts';

const benchmarks: Record<string, { about: string; run: () => Promise<void> }> = {
  cni: { about: 'pod network setup/teardown latency through the CNI plugin vs. a bare veth', run: () => benchCni() },
  packet: { about: 'per-packet cost of pal_to_pod (BPF_PROG_TEST_RUN) at 10/1k/100k map entries vs. pass-through', run: () => benchPacket() },
  compile: { about: 'policy compile time: 10k NetworkPolicies over 5k pods, full and incremental', run: () => benchCompile() },
  'apply-latency': { about: 'NetworkPolicy write accepted -> datapath verdict seen by a 1 kHz prober, by stage', run: () => benchApplyLatency() },
  sync: { about: "the agent's sync at ~1M policy entries: a no-op event, a one-policy change, a new pod, vs. the whole-node plan", run: () => benchSync() },
  flows: { about: 'flow events from pal_to_pod through palisade-flow-reader into the agent pipeline: events/s with no loss (and with a follower), per-packet cost vs events off, memory, packet-to-follower latency', run: () => benchFlows() },
  dns: { about: 'DNS latency the proxy adds (p50/p99 vs direct, known and fresh names), and memory/time of 100k learned names with 10k FQDN-selected pods', run: () => benchDns() },
  'dns-first': { about: 'first TCP connection right after resolving each of 1,000 fresh names through the DNS proxy (toFQDNs-only egress): success rate, resolve/connect p50/p99, vs. 100 addresses no rule allows', run: () => benchDnsFirst() },
  throughput: { about: 'pod-to-pod TCP and 64-byte UDP on one node with 10k policy entries vs. no programs attached', run: () => benchThroughput() },
  prefilter: { about: 'a UDP flood from a denied range to a pod through the uplink: packets/s dropped by the XDP prefilter vs. by the tc programs alone', run: () => benchPrefilter() },
};

const name = process.argv[2];
const bench = name ? benchmarks[name] : undefined;
if (!bench) {
  console.error(`usage: npm run bench -- NAME\n${Object.entries(benchmarks).map(([n, b]) => `  ${n.padEnd(8)} ${b.about}`).join('\n')}`);
  process.exit(2);
}
await bench.run();
