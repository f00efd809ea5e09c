// The agent's side of a CNI call: decides what ADD, DEL, CHECK, VERSION,
// STATUS and GC mean for this node, using the IPAM allocator and the pod-link
// datapath. Every failure leaves nothing half-done: a failed ADD releases the
// address and removes the link it created.
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import { RangeExhaustedError, type IpAllocator } from '../ipam/allocator.ts';
import { createPodLink, deletePodLink, inspectPodLink, linkIndex, POD_GATEWAY, type PodLink } from '../../datapath/pod-link.ts';
import { CniCode, CniError } from './errors.ts';
import { parseInvocation, SUPPORTED_VERSIONS, type Invocation } from './input.ts';
import type { CniReply, CniRequest } from './protocol.ts';

/** Where the agent learns about endpoints coming and going (the policy datapath hooks in here). */
export interface EndpointEvents {
  added(endpoint: Endpoint): Promise<void>;
  removed(endpoint: Pick<Endpoint, 'containerId' | 'ifName' | 'hostIfName'>): Promise<void>;
}

export interface Endpoint {
  containerId: string;
  ifName: string;
  hostIfName: string;
  /** Kernel index of the host-side veth: where the programs attach, and the key of pal_endpoints. */
  ifindex: number;
  ip: string;
  podNamespace: string | undefined;
  podName: string | undefined;
  /** The pod's network namespace (CNI_NETNS), where the veth's peer lives; absent in files of older agents. */
  netns?: string;
}

export interface CniHandlerDeps {
  allocator: IpAllocator;
  endpoints?: EndpointEvents;
}

export function createCniHandler(deps: CniHandlerDeps): (request: CniRequest) => Promise<CniReply> {
  return answering((invocation) => dispatch(invocation, deps));
}

/**
 * The handler while the agent starts (waiting for the API server, its pod
 * CIDR, its datapath): input is still checked, VERSION answered, STATUS
 * says not ready (50, "plugin not available") and every other command
 * "try again later" (11). `reason` says what the agent is waiting for.
 */
export function createStartingHandler(reason: () => string): (request: CniRequest) => Promise<CniReply> {
  return answering(async (inv) => {
    if (inv.command === 'VERSION') return versionResult(inv);
    if (inv.command === 'STATUS') throw new CniError(CniCode.pluginNotAvailable, 'palisade agent is not ready', reason());
    throw new CniError(CniCode.tryAgainLater, `palisade agent is starting, cannot ${inv.command} yet`, reason());
  });
}

/** Parses the request, runs `work` on it, and turns its result or error into the reply. */
function answering(work: (invocation: Invocation) => Promise<unknown>): (request: CniRequest) => Promise<CniReply> {
  return async (request) => {
    let version = '1.1.0';
    try {
      const invocation = parseInvocation(request.env, request.stdin);
      version = invocation.config.cniVersion;
      const result = await work(invocation);
      return { exitCode: 0, stdout: result === undefined ? '' : JSON.stringify(result) };
    } catch (error) {
      const cniError =
        error instanceof CniError
          ? error
          : new CniError(CniCode.datapathFailure, 'palisade agent failed', String((error as Error)?.message ?? error), {
              cause: error,
            });
      return { exitCode: 1, stdout: JSON.stringify(cniError.toJSON(version)) };
    }
  };
}

async function dispatch(inv: Invocation, deps: CniHandlerDeps): Promise<unknown> {
  switch (inv.command) {
    case 'VERSION':
      return versionResult(inv);
    case 'ADD':
      return add(inv, deps);
    case 'DEL':
      return del(inv, deps);
    case 'CHECK':
      return check(inv, deps);
    case 'STATUS':
      // Ready as soon as this handler is serving: the agent swaps it in for
      // the starting handler only once its pod CIDR, IPAM store and
      // datapath are in place.
      return undefined;
    case 'GC':
      return gc(inv, deps);
  }
}

function versionResult(inv: Invocation): unknown {
  return { cniVersion: inv.config.cniVersion, supportedVersions: SUPPORTED_VERSIONS };
}

async function add(inv: Invocation, deps: CniHandlerDeps): Promise<unknown> {
  await requireNetns(inv.netns);
  const owner = { containerId: inv.containerId, ifName: inv.ifName };
  let ip: string;
  try {
    ip = await deps.allocator.allocate(owner);
  } catch (error) {
    if (error instanceof RangeExhaustedError) throw new CniError(CniCode.rangeExhausted, error.message);
    throw error;
  }
  const link = podLinkFor(inv, ip);
  try {
    await createPodLink(link);
    await deps.endpoints?.added({
      containerId: inv.containerId,
      ifName: inv.ifName,
      hostIfName: link.hostIfName,
      ifindex: await linkIndex(link.hostIfName),
      ip,
      podNamespace: inv.args.K8S_POD_NAMESPACE,
      podName: inv.args.K8S_POD_NAME,
      netns: inv.netns,
    });
  } catch (error) {
    await deletePodLink(link.hostIfName).catch(() => undefined);
    await deps.allocator.release(owner);
    throw new CniError(CniCode.datapathFailure, `could not wire ${inv.ifName} in ${inv.netns}`, (error as Error).message, {
      cause: error,
    });
  }
  return {
    cniVersion: inv.config.cniVersion,
    interfaces: [
      { name: link.hostIfName, mac: link.hostMac },
      { name: link.podIfName, mac: link.podMac, sandbox: link.netnsPath },
    ],
    ips: [{ address: `${ip}/32`, gateway: POD_GATEWAY, interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: POD_GATEWAY }],
    dns: {},
  };
}

/** DEL is idempotent: whatever is already gone is simply not removed again. */
async function del(inv: Invocation, deps: CniHandlerDeps): Promise<undefined> {
  const hostIfName = hostIfNameFor(inv.containerId, inv.ifName);
  await deps.endpoints?.removed({ containerId: inv.containerId, ifName: inv.ifName, hostIfName });
  await deletePodLink(hostIfName);
  await deps.allocator.release({ containerId: inv.containerId, ifName: inv.ifName });
  return undefined;
}

async function check(inv: Invocation, deps: CniHandlerDeps): Promise<undefined> {
  await requireNetns(inv.netns);
  const ip = deps.allocator.find({ containerId: inv.containerId, ifName: inv.ifName });
  if (!ip) {
    throw new CniError(CniCode.containerUnknown, `no address is allocated to container ${inv.containerId} interface ${inv.ifName}`);
  }
  const problems = await inspectPodLink(podLinkFor(inv, ip));
  if (problems.length > 0) throw new CniError(CniCode.checkFailed, problems.join('; '));
  return undefined;
}

/** Releases every attachment the runtime no longer lists as valid. */
async function gc(inv: Invocation, deps: CniHandlerDeps): Promise<undefined> {
  const valid = new Set((inv.config['cni.dev/valid-attachments'] ?? []).map((a) => `${a.containerID}/${a.ifname}`));
  for (const { owner } of deps.allocator.allocations()) {
    if (valid.has(`${owner.containerId}/${owner.ifName}`)) continue;
    await del({ ...inv, command: 'DEL', containerId: owner.containerId, ifName: owner.ifName }, deps);
  }
  return undefined;
}

async function requireNetns(path: string): Promise<void> {
  try {
    await access(path);
  } catch {
    throw new CniError(CniCode.containerUnknown, `network namespace ${path} does not exist`);
  }
}

function podLinkFor(inv: Invocation, ip: string): PodLink {
  const digest = attachmentDigest(inv.containerId, inv.ifName);
  return {
    hostIfName: hostIfNameFor(inv.containerId, inv.ifName),
    // Locally administered unicast MACs, stable per attachment.
    hostMac: mac(0x02, digest.subarray(0, 5)),
    podIfName: inv.ifName,
    podMac: mac(0x0a, digest.subarray(5, 10)),
    netnsPath: inv.netns,
    podIp: ip,
  };
}

/** "pal" + 11 hex digits: unique per attachment and within IFNAMSIZ (15). */
export function hostIfNameFor(containerId: string, ifName: string): string {
  return `pal${attachmentDigest(containerId, ifName).toString('hex').slice(0, 11)}`;
}

function attachmentDigest(containerId: string, ifName: string): Buffer {
  return createHash('sha256').update(`${containerId}/${ifName}`).digest();
}

function mac(first: number, rest: Buffer): string {
  return [first, ...rest].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
