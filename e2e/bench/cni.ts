// Benchmark `cni`: the latency of a pod's network setup and teardown through
// Palisade (CNI binary -> agent -> IPAM + veth + routes), beside the bare
// kernel work it cannot avoid (one `ip link add` of a veth pair into the pod
// namespace, and its `ip link del`), interleaved in one run.
import { execa } from 'execa';
import { startCluster } from '../cluster/cluster.ts';
import { callCni } from '../cluster/kubelet.ts';
import { createNetns, deleteNetns } from '../cluster/netns.ts';
import { median, percentile } from './stats.ts';

export async function benchCni(rounds = 200): Promise<void> {
  const cluster = await startCluster({ nodes: 1 });
  const node = cluster.nodes[0]!;
  const netns = `${cluster.runId}-bench`;
  try {
    await createNetns(netns);
    const target = { containerId: `bench${cluster.runId.replaceAll('-', '')}`, netns, namespace: 'default', name: 'bench' };
    const samples = { add: [] as number[], del: [] as number[], baseAdd: [] as number[], baseDel: [] as number[] };
    const time = async (list: number[], work: () => Promise<unknown>) => {
      const start = performance.now();
      await work();
      list.push(performance.now() - start);
    };
    for (let i = 0; i < rounds; i++) {
      await time(samples.add, () => callCni(node, 'ADD', target));
      await time(samples.del, () => callCni(node, 'DEL', target));
      await time(samples.baseAdd, () =>
        execa('ip', ['-n', node.netns, 'link', 'add', 'benchveth', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]),
      );
      await time(samples.baseDel, () => execa('ip', ['-n', node.netns, 'link', 'del', 'benchveth']));
    }
    const row = (name: string, s: number[], base: number[]) =>
      `${name.padEnd(6)} median ${median(s).toFixed(1).padStart(6)} ms  p99 ${percentile(s, 99).toFixed(1).padStart(6)} ms  ` +
      `| bare veth ${median(base).toFixed(1).padStart(5)} ms  | ratio ${(median(s) / median(base)).toFixed(2)}`;
    console.log(`cni: ${rounds} rounds, interleaved with the bare kernel operation`);
    console.log(row('ADD', samples.add, samples.baseAdd));
    console.log(row('DEL', samples.del, samples.baseDel));
  } finally {
    await deleteNetns(netns);
    await cluster.stop();
  }
}
