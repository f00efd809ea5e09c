// Placeholders in applied objects: `${podIP:N/P}`, `${podNet:N/P/L}` and
// (version 2) `${hostIP:NAME}` of an external host, replaced in every string
// of an object tree (object keys are left alone).

// The closing brace is optional here so that an unterminated `${` is reported, not kept.
const PLACEHOLDER = /\$\{([^}]*)(\}?)/g;
const POD_IP = /^podIP:([^/\s]+\/[^/\s]+)$/;
const POD_NET = /^podNet:([^/\s]+\/[^/\s]+)\/(\d+)$/;
const HOST_IP = /^hostIP:([^/\s]+)$/;
const FORMS = '${podIP:N/P}, ${podNet:N/P/L} or ${hostIP:NAME}';

const isPrefix = (n: number) => Number.isInteger(n) && n >= 0 && n <= 32;

// Reads one placeholder (`text` is all of it, `body` what is between the braces); throws on any other form.
function parsePlaceholder(text: string, body: string, closed: boolean): { pod: string; prefix?: number } | { host: string } {
  if (!closed) throw new Error(`placeholder ${text}: missing closing "}"`);
  const ip = POD_IP.exec(body);
  if (ip) return { pod: ip[1] ?? '' };
  const host = HOST_IP.exec(body);
  if (host) return { host: host[1] ?? '' };
  const net = POD_NET.exec(body);
  if (!net) throw new Error(`placeholder ${text}: unknown form, expected ${FORMS}`);
  const prefix = Number(net[2]);
  if (!isPrefix(prefix)) throw new Error(`placeholder ${text}: prefix length must be 0-32`);
  return { pod: net[1] ?? '', prefix };
}

// Calls `fn` on every string of the tree and rebuilds it with the results.
function mapStrings(value: unknown, fn: (s: string) => string): unknown {
  if (typeof value === 'string') return fn(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, fn));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, fn)]));
  }
  return value;
}

/**
 * Replaces the placeholders of every string in `value`; `pods` maps `N/P` to an
 * IPv4 address, `hosts` an external host's NAME.
 */
export function substitute(value: unknown, pods: ReadonlyMap<string, string>, hosts: ReadonlyMap<string, string> = new Map()): unknown {
  return mapStrings(value, (s) =>
    s.replace(PLACEHOLDER, (text, body: string, close: string) => {
      const placeholder = parsePlaceholder(text, body, close === '}');
      if ('host' in placeholder) {
        const ip = hosts.get(placeholder.host);
        if (ip === undefined) {
          const known = hosts.size === 0 ? 'the cluster has none' : `the cluster has ${[...hosts.keys()].join(', ')}`;
          throw new Error(`placeholder ${text}: unknown external host "${placeholder.host}" (${known})`);
        }
        return ip;
      }
      const { pod, prefix } = placeholder;
      const ip = pods.get(pod);
      if (ip === undefined) throw new Error(`placeholder ${text}: unknown pod "${pod}"`);
      return prefix === undefined ? ip : podNet(ip, prefix);
    }),
  );
}

/** The network of prefix length `prefix` that contains `ip`, as CIDR `a.b.c.d/prefix`. */
export function podNet(ip: string, prefix: number): string {
  if (!isPrefix(prefix)) throw new Error(`prefix length ${prefix} is not 0-32`);
  // `<< 32` is a no-op in JavaScript, hence the special case for /0.
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return `${fromUint32((toUint32(ip) & mask) >>> 0)}/${prefix}`;
}

function toUint32(ip: string): number {
  const octets = ip.split('.');
  if (octets.length !== 4 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) {
    throw new Error(`"${ip}" is not an IPv4 address`);
  }
  return octets.reduce((acc, o) => acc * 256 + Number(o), 0);
}

function fromUint32(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
