// Pure: the order in which a sync writes its changes to the kernel maps, so
// that every map fits its max_entries at every moment and no endpoint is
// ever open with a policy that is neither its old one nor its new one.
//
// When the maps have room for the old and the new entries together, the
// order is make-before-break: every new entry first (endpoint flags last, so
// an endpoint is never enforced before its entries exist), then the stale
// ones. An endpoint open meanwhile sees the union of its old and its new
// entries, which allows only what one of the two policies allows.
//
// When they do not (replacing most of a full map), make-before-break would
// need both at once and the kernel would refuse the overflow (E2BIG) on every
// retry. Then each changing endpoint is swapped alone: closed (its
// pal_endpoints entry points at endpoint id 0, which has no entries: deny
// all), its stale entries deleted, its new ones written, then opened again.
// Shrinking endpoints go first, so the maps' fill moves from the old total to
// the new one without ever exceeding the larger of the two. Stale ipcache
// entries are deleted before new ones are written (they are the final state).
import { endpointInfo } from '../datapath/abi.ts';
import { closedEndpointInfo, ENDPOINT_MAPS, LB_MAPS, PLANNED_MAPS, type EndpointMap, type MapChanges, type MapContents, type PlannedMap } from './datapath-plan.ts';

export interface WriteStep {
  map: PlannedMap;
  op: 'update' | 'delete';
  /** Key hex -> value hex for updates; values are ignored for deletes. */
  entries: Array<{ key: string; value: string }>;
}

export type Capacity = Partial<Record<PlannedMap, number>>;

/** The endpoint id a policy-map key belongs to (first field of policy_key; after prefixlen in the LPM keys). */
export function endpointIdOfKey(map: EndpointMap, keyHex: string): number {
  return Buffer.from(keyHex, 'hex').readUInt32LE(map === 'pal_policy' ? 0 : 4);
}

/** Whether writing every new key before deleting any stale one fits every map (of `maps`). */
export function fitsMakeBeforeBreak(changes: MapChanges, applied: MapContents, capacity: Capacity, maps: readonly PlannedMap[] = PLANNED_MAPS): boolean {
  return maps.every((map) => {
    const have = applied.get(map) ?? new Map<string, string>();
    let peak = have.size;
    for (const { key } of changes.updates.get(map) ?? []) if (!have.has(key)) peak++;
    return peak <= (capacity[map] ?? Infinity);
  });
}

/** The steps that apply `changes` (the writes from `applied` to the state wanted) in a safe order. */
export function orderWrites(changes: MapChanges, applied: MapContents, capacity: Capacity): WriteStep[] {
  const steps: WriteStep[] = [];
  const push = (map: PlannedMap, op: WriteStep['op'], entries: WriteStep['entries']) => {
    if (entries.length > 0) steps.push({ map, op, entries });
  };
  const deletes = (map: PlannedMap) => (changes.deletes.get(map) ?? []).map((key) => ({ key, value: '' }));

  if (fitsMakeBeforeBreak(changes, applied, capacity)) {
    for (const map of PLANNED_MAPS) push(map, 'update', changes.updates.get(map) ?? []);
    for (const map of [...PLANNED_MAPS].reverse()) push(map, 'delete', deletes(map));
    return steps;
  }

  for (const map of ['pal_ipcache4', 'pal_ipcache'] as const) {
    push(map, 'delete', deletes(map));
    push(map, 'update', changes.updates.get(map) ?? []);
  }
  // The Service maps: make-before-break if they have room for it. If not,
  // stale backend slots go first (a frontend that still counts one drops
  // the packet that picks it: fail closed), then the frontends that left.
  if (fitsMakeBeforeBreak(changes, applied, capacity, LB_MAPS)) {
    for (const map of LB_MAPS) push(map, 'update', changes.updates.get(map) ?? []);
    for (const map of [...LB_MAPS].reverse()) push(map, 'delete', deletes(map));
  } else {
    for (const map of LB_MAPS) {
      push(map, 'delete', deletes(map));
      push(map, 'update', changes.updates.get(map) ?? []);
    }
  }

  // The policy-map changes of each endpoint id.
  const byEndpoint = new Map<number, { updates: Map<PlannedMap, WriteStep['entries']>; deletes: Map<PlannedMap, WriteStep['entries']>; net: number }>();
  const of = (id: number) => {
    let e = byEndpoint.get(id);
    if (!e) byEndpoint.set(id, (e = { updates: new Map(), deletes: new Map(), net: 0 }));
    return e;
  };
  for (const map of ENDPOINT_MAPS) {
    const have = applied.get(map) ?? new Map<string, string>();
    const listOf = (lists: Map<PlannedMap, WriteStep['entries']>) => {
      let list = lists.get(map);
      if (!list) lists.set(map, (list = []));
      return list;
    };
    for (const u of changes.updates.get(map) ?? []) {
      const e = of(endpointIdOfKey(map, u.key));
      listOf(e.updates).push(u);
      if (!have.has(u.key)) e.net++;
    }
    for (const key of changes.deletes.get(map) ?? []) {
      const e = of(endpointIdOfKey(map, key));
      listOf(e.deletes).push({ key, value: '' });
      e.net--;
    }
  }

  // pal_endpoints as written so far, and its keys by endpoint id, before and after.
  const endpoints = new Map(applied.get('pal_endpoints') ?? []);
  const wantEndpoints = new Map(endpoints);
  for (const { key, value } of changes.updates.get('pal_endpoints') ?? []) wantEndpoints.set(key, value);
  for (const key of changes.deletes.get('pal_endpoints') ?? []) wantEndpoints.delete(key);
  const byId = (entries: Iterable<[string, string]>) => {
    const keys = new Map<number, string[]>();
    for (const [key, value] of entries) {
      const id = endpointInfo.decode(Buffer.from(value, 'hex')).endpointId;
      keys.set(id, [...(keys.get(id) ?? []), key]);
    }
    return keys;
  };
  const appliedKeys = byId(endpoints);
  const desiredKeys = byId(wantEndpoints);
  const closedValue = (valueHex: string) => endpointInfo.encode(closedEndpointInfo(endpointInfo.decode(Buffer.from(valueHex, 'hex')).ipv4)).toString('hex');

  // Endpoints that leave go first, closed before they are removed.
  const leaving = deletes('pal_endpoints').map(({ key }) => ({ key, value: closedValue(endpoints.get(key)!) }));
  push('pal_endpoints', 'update', leaving);
  push('pal_endpoints', 'delete', leaving);
  for (const { key } of leaving) endpoints.delete(key);

  for (const [id, e] of [...byEndpoint].sort((a, b) => a[1].net - b[1].net)) {
    if (id !== 0) {
      const close = (appliedKeys.get(id) ?? []).filter((key) => endpoints.has(key)).map((key) => ({ key, value: closedValue(endpoints.get(key)!) }));
      push('pal_endpoints', 'update', close);
      for (const c of close) endpoints.set(c.key, c.value);
    }
    for (const map of ENDPOINT_MAPS) push(map, 'delete', e.deletes.get(map) ?? []);
    for (const map of ENDPOINT_MAPS) push(map, 'update', e.updates.get(map) ?? []);
    const open = (desiredKeys.get(id) ?? []).filter((key) => endpoints.get(key) !== wantEndpoints.get(key)).map((key) => ({ key, value: wantEndpoints.get(key)! }));
    push('pal_endpoints', 'update', open);
    for (const o of open) endpoints.set(o.key, o.value);
  }
  push('pal_endpoints', 'update', [...wantEndpoints].filter(([key, v]) => endpoints.get(key) !== v).map(([key, value]) => ({ key, value })));
  if (PLANNED_MAPS.every((map) => peakFill(applied, steps, map) <= (capacity[map] ?? Infinity))) return steps;
  return swapAllAtOnce(steps);
}

/**
 * The same writes with every changing endpoint closed for the whole batch:
 * all closings, all deletes, all new entries, all openings. Each map's fill
 * then never exceeds the larger of its old and new totals. Used only when
 * the per-endpoint order would overflow a map (endpoints that grow in one
 * map and shrink in the other).
 */
function swapAllAtOnce(perEndpoint: WriteStep[]): WriteStep[] {
  const isClosing = (s: WriteStep) => s.map === 'pal_endpoints' && s.op === 'update' && s.entries.every((e) => endpointInfo.decode(Buffer.from(e.value, 'hex')).endpointId === 0);
  const ipcache = perEndpoint.filter((s) => s.map === 'pal_ipcache4' || s.map === 'pal_ipcache' || (LB_MAPS as readonly string[]).includes(s.map));
  const rest = perEndpoint.filter((s) => !ipcache.includes(s));
  return [
    ...ipcache,
    ...rest.filter(isClosing),
    ...rest.filter((s) => s.map !== 'pal_endpoints' && s.op === 'delete'),
    ...rest.filter((s) => s.map !== 'pal_endpoints' && s.op === 'update'),
    ...rest.filter((s) => s.map === 'pal_endpoints' && !isClosing(s)),
  ];
}

/** The most entries `map` holds at any moment while `steps` are applied to `applied`. */
export function peakFill(applied: MapContents, steps: readonly WriteStep[], map: PlannedMap): number {
  const keys = new Set((applied.get(map) ?? new Map<string, string>()).keys());
  let peak = keys.size;
  for (const step of steps) {
    if (step.map !== map) continue;
    for (const { key } of step.entries) step.op === 'update' ? keys.add(key) : keys.delete(key);
    peak = Math.max(peak, keys.size);
  }
  return peak;
}
