// Benchmark `throughput`: pod-to-pod traffic on one node through Palisade's
// programs with about 10,000 policy entries loaded, as a ratio to the same
// traffic with no Palisade program attached, interleaved in one run.
//
// One node, pods `client` and `server`. Four NetworkPolicies select the
// server for Ingress and allow the client on TCP 100-9999 (three ranges of
// 3,300 ports) and UDP 5201-5300: the compiler expands ranges port by port,
// so the node's pal_policy holds 10,000 port entries plus a summary. The
// measured flows (iperf3 on port 5201) are therefore ALLOWED by policy and
// ENFORCED (the server is selected; a port outside the ranges is checked to
// be dropped), and the datapath's own counters (pal_metrics) show which
// verdicts the measured packets got.
//
// "Without" means the four tc filters of the two host veths (clsact,
// pref 1 handle 1, as palisade-loader attaches them) are deleted; "with"
// re-adds them from the programs pinned in the node's bpffs (`progs/`). Each
// round runs both, in alternating order, for:
//   - an iperf3 TCP stream (offloads as the veths come: TSO/GSO on);
//   - iperf3 UDP with 64-byte payloads at unlimited rate, GSO/GRO/TSO off on
//     all four veth ends (ethtool), reported as packets per second received.
// Targets: TCP ratio >= 0.95, UDP packets/s ratio >= 0.85.
import { loadavg } from 'node:os';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import type { SimNode } from '../cluster/node.ts';
import { probeAll } from '../cluster/probe.ts';
import { startProcess, type ManagedProcess } from '../cluster/processes.ts';
import { createNamespace } from '../cluster/workload.ts';
import { reasonName } from '../../datapath/abi.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';
import { KeepAliveApi } from './keepalive-api.ts';
import { median } from './stats.ts';

const NAMESPACE = 'bench-throughput';
const IPERF_PORT = 5201;
const TCP_RANGES: Array<[number, number]> = [[100, 3399], [3400, 6699], [6700, 9999]];
const UDP_RANGE: [number, number] = [5201, 5300];
/** Served by the pods' echo server but outside every allowed range: must be dropped. */
const DENIED_PORT = 80;
const TARGET_TCP_RATIO = 0.95;
const TARGET_UDP_RATIO = 0.85;
const UDP_PAYLOAD = 64;

type Variant = 'with' | 'without';
type Kind = 'tcp' | 'udp';

interface HostVeth {
  dev: string;
  ifindex: number;
}

interface RunResult {
  round: number;
  kind: Kind;
  variant: Variant;
  /** TCP: received bits/s. UDP: received packets/s. */
  value: number;
  /** UDP: sent packets/s. */
  sent?: number;
  /** pal_metrics packet counts by reason during the run. */
  verdicts: Map<string, number>;
}

export async function benchThroughput(rounds = 8, seconds = 4): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const cluster = await startCluster({ nodes: 1 });
  let iperfServer: ManagedProcess | undefined;
  let api: KeepAliveApi | undefined;
  try {
    const node = cluster.nodes[0]!;
    const enforcement = new EnforcementTracker();
    enforcement.note('Namespace', await createNamespace(cluster, NAMESPACE, { bench: 'throughput' }));
    const start = async (name: string) => {
      const pod = await cluster.kubelet.startPod({ namespace: NAMESPACE, name, labels: { app: name }, node });
      cluster.pods.set(`${NAMESPACE}/${name}`, pod);
      enforcement.note('Pod', pod.resourceVersion);
      return pod;
    };
    const client = await start('client');
    const server = await start('server');

    // The policy set: ~10,000 pal_policy entries for the server, all allowing the client.
    api = await KeepAliveApi.connect(cluster.kubeconfig);
    const policy = (name: string, protocol: 'TCP' | 'UDP', [port, endPort]: [number, number]) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name },
      spec: {
        podSelector: { matchLabels: { app: 'server' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ protocol, port, endPort }] }],
      },
    });
    const policies = [
      ...TCP_RANGES.map((range, i) => policy(`tcp-ports-${i}`, 'TCP', range)),
      policy('udp-ports', 'UDP', UDP_RANGE),
    ];
    for (const p of policies) {
      const written = await api.request('POST', `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/networkpolicies`, p);
      enforcement.note('NetworkPolicy', (written.body.metadata as { resourceVersion?: string }).resourceVersion);
    }
    await enforcement.wait(cluster.kubeconfig, [node.name], 60_000);

    const veths = { client: await hostVeth(node, client), server: await hostVeth(node, server) };
    const policyEntries = (await bpftoolDump(`${node.bpffs}/pal_policy`)).length;
    const endpoints = await bpftoolDump(`${node.bpffs}/pal_endpoints`);
    const serverFlags = endpointFlags(endpoints, veths.server.ifindex);
    const [deniedProbe] = await probeAll([{ from: client, to: server, port: DENIED_PORT, protocol: 'TCP' }], 500);
    const attached = await describeFilters(node, veths.server);

    const filters = new Filters(node, [veths.client, veths.server]);
    const offloads = new Offloads([
      { netns: node.netns, dev: veths.client.dev },
      { netns: node.netns, dev: veths.server.dev },
      { netns: client.netns, dev: 'eth0' },
      { netns: server.netns, dev: 'eth0' },
    ]);
    await offloads.record();

    iperfServer = await startProcess({
      name: 'iperf3 server',
      command: 'iperf3',
      args: ['-s', '-p', String(IPERF_PORT), '--forceflush'],
      netns: server.netns,
      logFile: `${cluster.runDir}/iperf3-server.log`,
      readyLine: /Server listening/,
    });

    const results: RunResult[] = [];
    for (let round = 0; round < rounds; round++) {
      const order: Variant[] = round % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
      for (const kind of ['tcp', 'udp'] as const) {
        await offloads.set(kind === 'tcp' ? 'default' : 'off');
        for (const variant of order) {
          await filters.set(variant);
          const before = await readMetrics(node);
          const measured = await iperf(client, server, kind, seconds);
          const after = await readMetrics(node);
          const verdicts = new Map<string, number>();
          for (const [reason, packets] of after) {
            const delta = packets - (before.get(reason) ?? 0);
            if (delta > 0) verdicts.set(reason, delta);
          }
          results.push({ round, kind, variant, ...measured, verdicts });
        }
      }
    }
    await filters.set('with');
    await offloads.set('default');

    const offloadInfo = offloads.available ? `veth offloads as they come: ${offloads.describeInitial()}` : 'ethtool unavailable: offloads were NOT turned off for UDP';
    report(results, { rounds, seconds, policyEntries, serverFlags, deniedProbe: deniedProbe?.verdict ?? '?', attached, offloadInfo, load: [loadBefore, loadavg()[0]!] });
  } finally {
    api?.close();
    await iperfServer?.stop();
    await cluster.stop();
  }
}

async function hostVeth(node: SimNode, pod: SimPod): Promise<HostVeth> {
  const [route] = JSON.parse(String((await execa('ip', ['-n', node.netns, '-j', 'route', 'get', pod.ip])).stdout)) as Array<{ dev: string }>;
  const [link] = JSON.parse(String((await execa('ip', ['-n', node.netns, '-j', 'link', 'show', 'dev', route!.dev])).stdout)) as Array<{ ifindex: number }>;
  return { dev: route!.dev, ifindex: link!.ifindex };
}

async function bpftoolDump(pin: string): Promise<Array<{ formatted?: { key: unknown; value?: unknown; values?: Array<{ cpu: number; value: unknown }> } }>> {
  return JSON.parse(String((await execa('bpftool', ['-j', 'map', 'dump', 'pinned', pin])).stdout)) as never;
}

function endpointFlags(dump: Awaited<ReturnType<typeof bpftoolDump>>, ifindex: number): number | undefined {
  const entry = dump.find((e) => e.formatted?.key === ifindex);
  return (entry?.formatted?.value as { flags?: number } | undefined)?.flags;
}

/** pal_metrics: packets per reason name, summed over CPUs. */
async function readMetrics(node: SimNode): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const entry of await bpftoolDump(`${node.bpffs}/pal_metrics`)) {
    const f = entry.formatted;
    if (!f) continue;
    const packets = (f.values ?? []).reduce((sum, v) => sum + Number((v.value as { packets: number }).packets), 0);
    if (packets > 0) counts.set(reasonName(Number(f.key)) ?? `reason ${String(f.key)}`, packets);
  }
  return counts;
}

async function describeFilters(node: SimNode, veth: HostVeth): Promise<string> {
  const lines = [];
  for (const hook of ['ingress', 'egress']) {
    const out = String((await execa('tc', ['-n', node.netns, 'filter', 'show', 'dev', veth.dev, hook])).stdout);
    const prog = / handle (\S+) (\S+):.* direct-action .*id (\d+)/.exec(out);
    lines.push(prog ? `${hook}: ${prog[2]} (prog id ${prog[3]}, handle ${prog[1]})` : `${hook}: none`);
  }
  return lines.join(', ');
}

/** The Palisade tc filters of the host veths: deleted for "without", re-added from the pinned programs for "with". */
class Filters {
  readonly #node: SimNode;
  readonly #veths: HostVeth[];
  #state: Variant = 'with';

  constructor(node: SimNode, veths: HostVeth[]) {
    this.#node = node;
    this.#veths = veths;
  }

  async set(variant: Variant): Promise<void> {
    if (variant === this.#state) return;
    const tc = (...args: string[]) => execa('tc', ['-n', this.#node.netns, 'filter', ...args]);
    for (const veth of this.#veths) {
      for (const [hook, program] of [['ingress', 'pal_from_pod'], ['egress', 'pal_to_pod']] as const) {
        if (variant === 'without') await tc('del', 'dev', veth.dev, hook, 'pref', '1');
        else await tc('add', 'dev', veth.dev, hook, 'pref', '1', 'handle', '1', 'bpf', 'da', 'pinned', `${this.#node.bpffs}/progs/${program}`);
        const shown = String((await tc('show', 'dev', veth.dev, hook)).stdout);
        if (shown.includes(program) !== (variant === 'with')) throw new Error(`tc filter on ${veth.dev} ${hook} is not ${variant} ${program}: ${shown}`);
      }
    }
    this.#state = variant;
  }
}

const OFFLOAD_FEATURES = { tso: 'tcp-segmentation-offload', gso: 'generic-segmentation-offload', gro: 'generic-receive-offload' } as const;

/** GSO/GRO/TSO of the veth ends: as they came ("default") or all off. */
class Offloads {
  readonly #links: Array<{ netns: string; dev: string; initial?: Record<string, string> }>;
  available = true;

  constructor(links: Array<{ netns: string; dev: string }>) {
    this.#links = links;
  }

  async record(): Promise<void> {
    for (const link of this.#links) {
      const result = await execa('ip', ['netns', 'exec', link.netns, 'ethtool', '-k', link.dev], { reject: false });
      if (result.exitCode !== 0) {
        this.available = false;
        return;
      }
      const text = String(result.stdout);
      link.initial = Object.fromEntries(
        Object.entries(OFFLOAD_FEATURES).map(([short, long]) => [short, new RegExp(`^${long}: (on|off)`, 'm').exec(text)?.[1] ?? 'on']),
      );
    }
  }

  describeInitial(): string {
    const first = this.#links[0]?.initial;
    return first ? Object.entries(first).map(([k, v]) => `${k} ${v}`).join(', ') : 'unknown';
  }

  async set(state: 'default' | 'off'): Promise<void> {
    if (!this.available) return;
    for (const link of this.#links) {
      const settings = Object.keys(OFFLOAD_FEATURES).flatMap((f) => [f, state === 'off' ? 'off' : link.initial![f]!]);
      await execa('ip', ['netns', 'exec', link.netns, 'ethtool', '-K', link.dev, ...settings]);
    }
  }
}

async function iperf(client: SimPod, server: SimPod, kind: Kind, seconds: number): Promise<{ value: number; sent?: number }> {
  const args = ['-c', server.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-O', '1', '-J'];
  if (kind === 'udp') args.push('-u', '-l', String(UDP_PAYLOAD), '-b', '0');
  const result = await execa('ip', ['netns', 'exec', client.netns, 'iperf3', ...args], {
    reject: false,
    timeout: (seconds + 20) * 1000,
    killSignal: 'SIGKILL',
  });
  let parsed: { error?: string; end?: Record<string, { bytes: number; seconds: number; packets?: number; bits_per_second: number }> };
  try {
    parsed = JSON.parse(String(result.stdout)) as typeof parsed;
  } catch {
    throw new Error(`iperf3 ${kind} printed no JSON (exit ${result.exitCode}): ${String(result.stderr).slice(0, 500)}`);
  }
  if (parsed.error || !parsed.end) throw new Error(`iperf3 ${kind} failed: ${parsed.error ?? 'no end section'}`);
  const received = parsed.end.sum_received!;
  if (kind === 'tcp') return { value: received.bits_per_second };
  const sent = parsed.end.sum_sent!;
  // Received packets from bytes: iperf3's lost_packets counts sequence gaps, which omitted seconds blur.
  return { value: received.bytes / UDP_PAYLOAD / received.seconds, sent: (sent.packets ?? 0) / sent.seconds };
}

function report(
  results: RunResult[],
  info: { rounds: number; seconds: number; policyEntries: number; serverFlags: number | undefined; deniedProbe: string; attached: string; offloadInfo: string; load: number[] },
): void {
  const of = (kind: Kind, variant: Variant) => results.filter((r) => r.kind === kind && r.variant === variant);
  const ratios = (kind: Kind, field: 'value' | 'sent' = 'value') =>
    Array.from({ length: info.rounds }, (_, round) => {
      const w = results.find((r) => r.round === round && r.kind === kind && r.variant === 'with');
      const wo = results.find((r) => r.round === round && r.kind === kind && r.variant === 'without');
      return w && wo ? (w[field] ?? NaN) / (wo[field] ?? NaN) : NaN;
    });
  const verdictsOf = (kind: Kind, variant: Variant) => {
    const sum = new Map<string, number>();
    for (const r of of(kind, variant)) for (const [k, v] of r.verdicts) sum.set(k, (sum.get(k) ?? 0) + v);
    return sum.size === 0 ? 'none' : [...sum].map(([k, v]) => `${k} ${v}`).join(', ');
  };

  console.log(`throughput: one node, client -> server, ${info.rounds} rounds of ${info.seconds} s runs (+1 s omitted), with/without alternating;`);
  console.log(`  iperf3 client and server not pinned (pinning to separate CPUs measured slower on this shared machine); 1-min load average ${info.load.map((l) => l.toFixed(2)).join(' before, ')} after`);
  console.log(
    `  policy: ${info.policyEntries} pal_policy entries on the node; server endpoint flags ${info.serverFlags} ` +
      `(bit0 = ingress enforced: ${(info.serverFlags ?? 0) & 1 ? 'yes' : 'NO'}); TCP ${DENIED_PORT} (not allowed) client -> server: ${info.deniedProbe === 'fail' ? 'dropped' : `NOT dropped (${info.deniedProbe})`}`,
  );
  console.log(`  server host veth filters as attached by the agent: ${info.attached}`);
  console.log(`  ${info.offloadInfo}`);
  console.log('');
  const line = (label: string, values: number[], unit: (v: number) => string) =>
    `  ${label.padEnd(26)} median ${unit(median(values)).padStart(14)}   runs: ${values.map(unit).join(', ')}`;
  const gbps = (v: number) => `${(v / 1e9).toFixed(2)} Gbit/s`;
  const kpps = (v: number) => `${(v / 1e3).toFixed(1)} kpps`;
  const verdictLines: string[] = [];
  const targets: string[] = [];
  for (const kind of ['tcp', 'udp'] as const) {
    const unit = kind === 'tcp' ? gbps : kpps;
    const title = kind === 'tcp' ? 'iperf3 TCP stream (offloads as they come)' : `iperf3 UDP ${UDP_PAYLOAD}-byte, -b 0, GSO/GRO/TSO off (received packets/s)`;
    console.log(title);
    console.log(line('with Palisade programs', of(kind, 'with').map((r) => r.value), unit));
    console.log(line('without (filters deleted)', of(kind, 'without').map((r) => r.value), unit));
    if (kind === 'udp') {
      console.log(line('  sent, with', of(kind, 'with').map((r) => r.sent ?? NaN), unit));
      console.log(line('  sent, without', of(kind, 'without').map((r) => r.sent ?? NaN), unit));
    }
    const perRound = ratios(kind);
    const ratioOfMedians = median(of(kind, 'with').map((r) => r.value)) / median(of(kind, 'without').map((r) => r.value));
    console.log(`  ratio with/without: median of per-round ratios ${median(perRound).toFixed(3)} (rounds: ${perRound.map((r) => r.toFixed(3)).join(', ')}); ratio of medians ${ratioOfMedians.toFixed(3)}`);
    if (kind === 'udp') {
      const sentRatios = ratios(kind, 'sent');
      console.log(`  sender-side ratio (packets/s the sender got through the path; receiver drops excluded): median ${median(sentRatios).toFixed(3)} (rounds: ${sentRatios.map((r) => r.toFixed(3)).join(', ')})`);
    }
    verdictLines.push(`  ${kind} with:    ${verdictsOf(kind, 'with')}`, `  ${kind} without: ${verdictsOf(kind, 'without')}`);
    const target = kind === 'tcp' ? TARGET_TCP_RATIO : TARGET_UDP_RATIO;
    const r = median(perRound);
    targets.push(`  target ${kind === 'tcp' ? 'TCP stream ratio' : 'UDP 64-byte packets/s ratio'} >= ${target}: ${r >= target ? 'PASS' : 'MISS'} (${r.toFixed(3)})`);
    console.log('');
  }
  console.log('datapath verdicts counted in pal_metrics during the runs (packets, both pods\' hooks):');
  for (const l of verdictLines) console.log(l);
  console.log('');
  console.log('targets:');
  for (const t of targets) console.log(t);
}
