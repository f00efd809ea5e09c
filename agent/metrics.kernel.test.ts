// /metrics of the agent over the real datapath counters: a dropped packet
// shows in palisade_packets_total under its reason, a flow in
// palisade_flows_total, a realization in the histogram, and the maps' fill.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ENDPOINT_FLAG, endpointInfo, ipv4Key, u32Key } from '../datapath/abi.ts';
import { ipv4Packet, TCP_SYN } from '../datapath/packet.ts';
import { PREFILTER_FLAG, PREFILTER_OBJECT, PREFILTER_PROGRAM, prefilter4Key, prefilterConfig, prefilterDst, prefilterValue } from '../datapath/prefilter.ts';
import { scratchDatapath, type ScratchDatapath } from '../datapath/scratch-datapath.ts';
import type { Flow } from '../lib/flow.ts';
import { AgentMetrics } from './metrics.ts';

let datapath: ScratchDatapath;
let metrics: AgentMetrics;
let server: Awaited<ReturnType<AgentMetrics['serve']>>;
const health: { live: string | undefined; ready: string | undefined } = { live: undefined, ready: 'starting' };

before(async () => {
  datapath = await scratchDatapath('metrics');
  metrics = new AgentMetrics();
  metrics.attach({ loader: datapath.loader, maps: () => ({ pal_policy: { entries: 3, capacity: 1000 }, pal_ipcache: { entries: 1, capacity: null } }), flowLoss: () => ({ decoder: 2, consumer: 0 }) });
  server = await metrics.serve({ host: '127.0.0.1', port: 0 }, { live: () => health.live, ready: () => health.ready });
});

after(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await datapath?.dispose();
});

function scrape(path = '/metrics'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
    }).on('error', reject);
  });
}

test('the datapath\'s counters, the agent\'s flows and realizations, and map fill are exported in Prometheus text', async () => {
  await datapath.loader.update('pal_endpoints', [{ key: u32Key.encode(1), value: endpointInfo.encode({ endpointId: 7, identity: 300, flags: ENDPOINT_FLAG.INGRESS_ENFORCED, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4: '10.0.1.5' }) }]);
  for (let i = 0; i < 3; i++) await datapath.loader.testRun('pal_to_pod', ipv4Packet({ saddr: '10.0.2.9', daddr: '10.0.1.5', protocol: 'TCP', sport: 1000 + i, dport: 80, tcpFlags: TCP_SYN }));
  // The XDP prefilter counts its drops in the same pal_metrics (ADR 0013).
  await datapath.loader.load(PREFILTER_OBJECT, datapath.pinDir);
  await datapath.loader.update('pal_prefilter4', [{ key: prefilter4Key.encode('203.0.113.0/24'), value: prefilterValue.encode({ ruleId: 9 }) }]);
  await datapath.loader.update('pal_prefilter_dst4', [{ key: ipv4Key.encode('10.0.1.5'), value: prefilterDst.encode({ ifindex: 1 }) }]);
  await datapath.loader.update('pal_prefilter_config', [{ key: u32Key.encode(0), value: prefilterConfig.encode({ flags: PREFILTER_FLAG.ACTIVE, worldRule: 0 }) }]);
  for (let i = 0; i < 2; i++) assert.equal((await datapath.loader.testRun(PREFILTER_PROGRAM, ipv4Packet({ saddr: '203.0.113.9', daddr: '10.0.1.5', protocol: 'UDP', sport: 1000 + i, dport: 53 }))).retval, 1, 'XDP_DROP');
  metrics.flows([{ verdict: 'dropped', direction: 'ingress', type: 'drop' } as Flow]);
  metrics.realized(0.004);
  metrics.datapathError('attach');
  const { status, text } = await scrape();
  assert.equal(status, 200);
  const lines = text.split('\n');
  for (const wanted of [
    'palisade_packets_total{verdict="dropped",reason="DROP_POLICY"} 3',
    'palisade_packets_total{verdict="dropped",reason="DROP_PREFILTER"} 2',
    'palisade_flows_total{verdict="dropped",direction="ingress",type="drop"} 1',
    'palisade_policy_realization_seconds_bucket{le="0.005"} 1',
    'palisade_policy_realization_seconds_count 1',
    'palisade_datapath_errors_total{operation="attach"} 1',
    'palisade_flows_lost_total{stage="decoder",type=""} 2',
    'palisade_map_entries{map="pal_policy"} 3',
    'palisade_map_capacity{map="pal_policy"} 1000',
  ]) assert.ok(lines.includes(wanted), `missing: ${wanted}`);
  assert.ok(lines.some((l) => l.startsWith('palisade_agent_process_resident_memory_bytes ')), 'the process\'s own metrics');
  assert.equal((await scrape('/other')).status, 404);
});

test('/healthz and /readyz answer the kubelet\'s probes: 503 with why until ready, 200 once, 503 again when the datapath loader is gone', async () => {
  assert.deepEqual(await scrape('/readyz'), { status: 503, text: 'starting\n' });
  assert.deepEqual(await scrape('/healthz'), { status: 200, text: 'ok\n' });
  health.ready = undefined;
  assert.deepEqual(await scrape('/readyz'), { status: 200, text: 'ok\n' });
  health.live = health.ready = 'the datapath loader exited (code 1)';
  assert.deepEqual(await scrape('/healthz'), { status: 503, text: 'the datapath loader exited (code 1)\n' });
  assert.equal((await scrape('/readyz')).status, 503);
});
