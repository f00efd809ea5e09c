// `npm run bench -- NAME`: runs one benchmark and prints its figures, each
// beside a baseline measured in the same run.
import { benchCni } from './cni.ts';

const benchmarks: Record<string, { about: string; run: () => Promise<void> }> = {
  cni: { about: 'pod network setup/teardown latency through the CNI plugin vs. a bare veth', run: () => benchCni() },
};

const name = process.argv[2];
const bench = name ? benchmarks[name] : undefined;
if (!bench) {
  console.error(`usage: npm run bench -- NAME\n${Object.entries(benchmarks).map(([n, b]) => `  ${n.padEnd(8)} ${b.about}`).join('\n')}`);
  process.exit(2);
}
await bench.run();
