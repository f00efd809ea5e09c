// The agent's Prefilter on a real node (datapath/prefilter-lab.ts): it takes
// over the maps it finds, attaches pal_prefilter to the uplink only while a
// rule qualifies, drops the denied source there once widened, narrows its
// maps before the policy maps would change, and detaches when nothing
// qualifies any more and when the agent stops. Namespaces, pins and the
// attachment are this run's, removed at the end, also on failure.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { execa } from 'execa';
import { netnsPath } from '../e2e/cluster/netns.ts';
import { PREFILTER_OBJECT, prefilterConfig } from '../datapath/prefilter.ts';
import { LAB, prefilterLab, type PrefilterLab } from '../datapath/prefilter-lab.ts';
import { validatePalisadePolicy } from '../policy/palisade-policy.ts';
import type { PalisadePolicyInput } from '../policy/types.ts';
import { Prefilter } from './prefilter.ts';

let lab: PrefilterLab | undefined;
after(() => lab?.dispose());

function pcnp(name: string, ingressDeny: unknown[]): PalisadePolicyInput {
  const v = validatePalisadePolicy({ kind: 'PalisadeClusterNetworkPolicy', spec: { endpointSelector: {}, ingressDeny, enableDefaultDeny: { ingress: false, egress: false } } });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name, spec: v.spec };
}

test('attached while a rule qualifies, narrowed before and widened after the policy maps, detached when none does and at stop', { skip: !existsSync(PREFILTER_OBJECT) && 'make -s all first', timeout: 60_000 }, async () => {
  const deny = pcnp('deny-doc', [{ fromCIDR: ['203.0.113.0/24'] }]);
  // The node's tc maps deny 203.0.113.0/24 to the pod, as they would with the policy written; the prefilter's are the lab's, ACTIVE.
  lab = await prefilterLab([deny]);
  const l = lab;
  const log: string[] = [];
  const prefilter = new Prefilter({ loader: l.loader, objectPath: PREFILTER_OBJECT, pinDir: l.pinDir, mapSizes: { pal_flows: 1 << 22 }, nodeAddresses: () => [LAB.uplinkAddress], netns: { kind: 'path', path: netnsPath(l.node) }, log: (line) => log.push(line) });
  const endpoints = [{ ip: LAB.pod.ip, ifindex: l.podIfindex }];
  const xdp = async () => {
    const [link] = JSON.parse(String((await execa('ip', ['-n', l.node, '-j', '-d', 'link', 'show', 'dev', LAB.uplink])).stdout)) as Array<{ xdp?: { mode: number; prog?: { name: string } } }>;
    return link!.xdp && `${link!.xdp.prog?.name} mode ${link!.xdp.mode}`;
  };
  const config = async () => prefilterConfig.decode((await l.loader.dump('pal_prefilter_config'))[0]!.value);
  const send = async (count: number) => {
    const before = (await l.metrics()).get('DROP_PREFILTER') ?? 0n;
    const script = `const s = require('node:dgram').createSocket('udp4'); s.bind({ address: '${LAB.denied}' }, async () => { for (let i = 0; i < ${count}; i++) await new Promise((d) => s.send('x', 7000, '${LAB.pod.ip}', d)); s.close(); });`;
    await l.exec(l.sender, process.execPath, ['-e', script]);
    await sleep(200);
    return Number(((await l.metrics()).get('DROP_PREFILTER') ?? 0n) - before);
  };

  await prefilter.load();
  // No policy yet: its maps go empty and nothing is attached (an earlier agent's would be detached).
  let s = prefilter.snapshot(endpoints);
  await prefilter.narrow(s);
  await prefilter.widen(s);
  assert.equal((await config()).flags, 0);
  assert.deepEqual(await l.loader.dump('pal_prefilter4'), []);
  assert.equal(await xdp(), undefined);
  assert.deepEqual(prefilter.attachments(), []);

  // The policy arrives: widened after the (here unchanged) policy maps, attached, dropping the denied source.
  prefilter.setPolicy(deny);
  s = prefilter.snapshot(endpoints);
  await prefilter.narrow(s);
  assert.equal((await config()).flags, 0, 'narrowing adds nothing');
  await prefilter.widen(s);
  assert.deepEqual(prefilter.attachments(), [{ device: LAB.uplink, mode: 'native' }]);
  assert.equal(await xdp(), 'pal_prefilter mode 1');
  assert.equal(await send(5), 5);
  assert.ok(log.some((line) => /prefilter: 1 denied prefixes from 1 deny rules \(pcnp:deny-doc\/ingressDeny\/0\)/.test(line)), log.join('\n'));

  // It goes: narrowed before the policy maps would change (nothing dropped any more), detached after.
  prefilter.deletePolicy('PalisadeClusterNetworkPolicy', '', 'deny-doc');
  s = prefilter.snapshot(endpoints);
  await prefilter.narrow(s);
  assert.deepEqual(await l.loader.dump('pal_prefilter4'), []);
  assert.equal(await send(3), 0, 'attached still, it drops nothing');
  await prefilter.widen(s);
  assert.equal(await xdp(), undefined);

  // Back, then the agent stops: detached.
  prefilter.setPolicy(deny);
  s = prefilter.snapshot(endpoints);
  await prefilter.narrow(s);
  await prefilter.widen(s);
  assert.equal(await xdp(), 'pal_prefilter mode 1');
  await prefilter.detach();
  assert.equal(await xdp(), undefined);
  assert.equal((await config()).flags & 1, 1, 'the maps stay for the next agent to take over');
});
