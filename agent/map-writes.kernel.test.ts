// map-writes against the real kernel map at its real limit (issue 7, item
// 6): pal_policy holds 1,048,576 entries; replacing 777,000 entries by
// 777,000 others make-before-break needs 1,554,000 at the peak, and the
// kernel refuses the overflow (E2BIG) on every retry. The planned order must
// get through, and must end with exactly the new entries. Loads
// build/bpf/endpoint.bpf.o into a bpffs mounted for the test; runs as root.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { endpointInfo, policyKey, policyValue, u32Key } from '../datapath/abi.ts';
import type { Loader } from '../datapath/loader-client.ts';
import { scratchDatapath, type ScratchDatapath } from '../datapath/scratch-datapath.ts';
import { diffMaps, PLANNED_MAPS, type MapContents, type PlannedMap } from './datapath-plan.ts';
import { writeSteps } from './map-writer.ts';
import { fitsMakeBeforeBreak, orderWrites, type WriteStep } from './map-writes.ts';

const ENTRIES = 777_000;

let datapath: ScratchDatapath;
let loader: Loader;
let capacity = 0;

const hex = (b: Buffer) => b.toString('hex');
/** ENTRIES distinct pal_policy entries of endpoint 7, numbered from `first`. */
function policyEntries(first: number): Array<[string, string]> {
  const value = hex(policyValue.encode({ ruleId: 1, flags: 0 }));
  return Array.from({ length: ENTRIES }, (_, i) => {
    const n = first + i;
    return [hex(policyKey.encode({ endpointId: 7, identity: 1000 + Math.floor(n / 60_000), direction: 0, protocol: 6, dport: 1 + (n % 60_000) })), value];
  });
}
const endpoint: [string, string] = [
  hex(u32Key.encode(10)),
  hex(endpointInfo.encode({ endpointId: 7, identity: 300, flags: 1, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4: '10.0.1.5' })),
];
const contents = (policy: Array<[string, string]>): MapContents =>
  new Map(PLANNED_MAPS.map((m) => [m, new Map<string, string>(m === 'pal_policy' ? policy : m === 'pal_endpoints' ? [endpoint] : [])]));

const write = (steps: WriteStep[]) => writeSteps(loader, steps);

before(async () => {
  datapath = await scratchDatapath('map-writes');
  loader = datapath.loader;
  capacity = datapath.capacity('pal_policy');
});

after(async () => {
  await datapath?.dispose();
});

test('replacing 777,000 of 1,048,576 pal_policy entries by 777,000 others gets through, where make-before-break gets E2BIG', async () => {
  assert.equal(capacity, 1_048_576);
  const old = contents(policyEntries(0));
  const next = contents(policyEntries(ENTRIES));
  const limits: Partial<Record<PlannedMap, number>> = { pal_policy: capacity };
  await write(orderWrites(diffMaps(old, contents([])), contents([]), limits));
  assert.equal((await loader.dump('pal_policy')).length, ENTRIES);

  assert.equal(fitsMakeBeforeBreak(diffMaps(next, old), old, limits), false);
  const started = performance.now();
  await write(orderWrites(diffMaps(next, old), old, limits));
  const ms = performance.now() - started;
  const dumped = await loader.dump('pal_policy');
  assert.equal(dumped.length, ENTRIES);
  const want = next.get('pal_policy')!;
  assert.ok(dumped.every((e) => want.get(hex(e.key)) === hex(e.value)), 'the map holds exactly the new entries');
  const [info] = await loader.dump('pal_endpoints');
  assert.equal(endpointInfo.decode(info!.value).endpointId, 7, 'the endpoint is open again, on its own entries');
  console.log(`# swapped ${ENTRIES} entries for ${ENTRIES} others in ${ms.toFixed(0)} ms`);

  // What the old order did: every new key first. The kernel refuses the overflow.
  const third = contents(policyEntries(2 * ENTRIES));
  await assert.rejects(write([{ map: 'pal_policy', op: 'update', entries: [...third.get('pal_policy')!].map(([key, value]) => ({ key, value })) }]), /E2BIG|Argument list too long|errno 7/);
});
