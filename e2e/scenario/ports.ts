// The port and protocol of a probe. Every test pod serves TCP, UDP and SCTP on
// ports 80 and 81 under fixed container port names, so a name resolves
// statically.

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
/** The ports every test pod serves, on every protocol (FORMAT.md). */
export const POD_PORTS = [80, 81] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** A probe's target: the number, the protocol and a label for reports (e.g. `81/UDP (serve-81-udp)`). */
export type ResolvedPort = { port: number; protocol: Protocol; portLabel: string };

/** The container port names of every test pod. */
export const PORT_NAMES: ReadonlyMap<string, { port: number; protocol: Protocol }> = new Map(
  POD_PORTS.flatMap((port) => PROTOCOLS.map((protocol) => [`serve-${port}-${protocol.toLowerCase()}`, { port, protocol }] as const)),
);

/**
 * Resolves a probe's `port` (a number or a port name) and optional `protocol`.
 * A number without protocol means TCP; a name fixes the protocol, and a given
 * protocol must then agree with it. Throws an Error saying what is wrong.
 */
export function resolvePort(port: number | string, protocol?: Protocol): ResolvedPort {
  if (typeof port === 'string' && !/^\d+$/.test(port)) {
    const named = PORT_NAMES.get(port);
    if (named === undefined) {
      throw new Error(`unknown port name "${port}", expected a number or one of ${[...PORT_NAMES.keys()].join(', ')}`);
    }
    if (protocol !== undefined && protocol !== named.protocol) {
      throw new Error(`protocol ${protocol} does not match port "${port}", which is ${named.protocol}`);
    }
    return { ...named, portLabel: `${named.port}/${named.protocol} (${port})` };
  }
  // A string of digits ("80") is read as the number it spells.
  const number = Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535) throw new Error(`port ${port} is not in 1-65535`);
  const proto = protocol ?? 'TCP';
  return { port: number, protocol: proto, portLabel: `${number}/${proto}` };
}
