// The local protocol between the thin CNI binary (cni/palisade-cni.c) and the
// agent, version 1. The binary forwards exactly what the runtime gave it:
//
//   request  = "PALISADE-CNI/1\n" { NAME "=" VALUE "\0" } "\0" stdin-bytes
//   response = exit-code "\n" stdout-bytes
//
// Only CNI_* variables are forwarded. Keep this in sync with the C side.

export const PROTOCOL_MAGIC = 'PALISADE-CNI/1\n';

export interface CniRequest {
  env: Record<string, string>;
  /** The network configuration JSON, exactly as the runtime wrote it. */
  stdin: string;
}

export interface CniReply {
  exitCode: number;
  stdout: string;
}

export function decodeRequest(bytes: Buffer): CniRequest {
  const magic = Buffer.from(PROTOCOL_MAGIC);
  if (!bytes.subarray(0, magic.length).equals(magic)) {
    throw new Error(`not a ${PROTOCOL_MAGIC.trim()} request`);
  }
  const env: Record<string, string> = {};
  let at = magic.length;
  for (;;) {
    const end = bytes.indexOf(0, at);
    if (end < 0) throw new Error('truncated request: environment not terminated');
    if (end === at) return { env, stdin: bytes.subarray(end + 1).toString('utf8') };
    const entry = bytes.subarray(at, end).toString('utf8');
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new Error(`malformed environment entry "${entry}"`);
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
    at = end + 1;
  }
}

export function encodeRequest(request: CniRequest): Buffer {
  const env = Object.entries(request.env).map(([k, v]) => `${k}=${v}\0`).join('');
  return Buffer.from(`${PROTOCOL_MAGIC}${env}\0${request.stdin}`);
}

export function encodeReply(reply: CniReply): Buffer {
  return Buffer.from(`${reply.exitCode}\n${reply.stdout}`);
}
