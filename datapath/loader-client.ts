// Client of build/bin/palisade-loader, the libbpf process that loads, pins
// and attaches the eBPF datapath and edits its maps. The agent keeps one
// running as a child and talks to it over stdin/stdout in a compact binary
// protocol. The protocol is specified at the top of
// datapath/loader/palisade-loader.c; this file mirrors it and must stay in
// sync with it (datapath/loader.test.ts drives every op).
//
// The loader serves requests in order, one at a time; calls may be issued
// concurrently (they are pipelined and matched by request id). When the
// loader dies, pending calls reject with its exit status and last stderr
// lines, and every later call rejects at once: start a new Loader. Pins and
// tc attachments outlive the process, so a new loader LOADs the same objects
// with the same pin directory (maps keep their contents) and re-ATTACHes.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const DEFAULT_LOADER_BINARY = fileURLToPath(new URL('../build/bin/palisade-loader', import.meta.url));
export const PROTOCOL_VERSION = 2;
/** Largest request frame the loader accepts (its MAX_FRAME). */
export const MAX_FRAME = 64 * 1024 * 1024;

export const OPS = {
  LOAD: 1,
  ATTACH: 2,
  DETACH: 3,
  UPDATE: 4,
  DELETE: 5,
  DUMP: 6,
  TEST_RUN: 7,
  LAYOUT: 8,
  STATUS: 9,
  DUMP_PINNED: 10,
  XDP_ATTACH: 11,
  XDP_DETACH: 12,
} as const;
export type OpName = keyof typeof OPS;
/** What LoaderError.op says for a raw request (Loader.request) with a code that is not an op. */
type ErrorOp = OpName | 'RAW';

const STATUS_OK = 0;
const STATUS_BATCH = 2;

/** A tc hook of a device (not a policy direction: tc ingress sees what the device receives). */
export type Hook = 'ingress' | 'egress';
const HOOKS: readonly Hook[] = ['ingress', 'egress'];

/** How an XDP program runs on a device: in its driver (native), or on the generic path after the skb is built. */
export type XdpMode = 'native' | 'generic';

export interface MapEntry {
  key: Buffer;
  value: Buffer;
}

export interface LoadedProgram {
  name: string;
  id: number;
  /** enum bpf_prog_type */
  type: number;
}

export interface LoadedMap {
  name: string;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  /** Size of the C value; a per-CPU map's dumps and updates carry it rounded up to 8, once per possible CPU. */
  valueSize: number;
  maxEntries: number;
  pinned: boolean;
}

export interface LoadedObject {
  path: string;
  pinDir: string;
  programs: LoadedProgram[];
  maps: LoadedMap[];
}

export interface Attachment {
  ifindex: number;
  hook: Hook;
  program: string;
  programId: number;
}

export interface LoaderStatus {
  protocolVersion: number;
  possibleCpus: number;
  objects: LoadedObject[];
  /** Attachments made by this loader process (not ones inherited from a previous one). */
  attachments: Attachment[];
}

export interface StructLayout {
  name: string;
  size: number;
  members: Array<{ name: string; offset: number; size: number }>;
}

export interface TestRunResult {
  /** The program's return value (a TC_ACT_* code for tc programs). */
  retval: number;
  /** Nanoseconds per run, averaged over `repeat` runs by the kernel. */
  durationNs: number;
  /** The packet as the program left it. */
  data: Buffer;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Where a batch stopped: entry `index` failed; the entries before it were processed, none after it. */
export interface BatchFailure {
  index: number;
  errno: number;
  /** Entries before `index` that changed the map (for DELETE, absent keys do not count). */
  applied: number;
}

export class LoaderError extends Error {
  readonly op: ErrorOp;
  readonly map: string | undefined;
  /** The loader's own message (or the client's, when the loader never answered). */
  readonly loaderMessage: string;
  readonly batch: BatchFailure | undefined;
  constructor(
    op: ErrorOp,
    loaderMessage: string,
    options: { map?: string | undefined; batch?: BatchFailure; cause?: unknown } = {},
  ) {
    super(`palisade-loader ${op}: ${loaderMessage}`, { cause: options.cause });
    this.name = 'LoaderError';
    this.op = op;
    this.map = options.map;
    this.loaderMessage = loaderMessage;
    this.batch = options.batch;
  }
}

export interface LoaderOptions {
  /** The loader executable; default build/bin/palisade-loader of this repository. */
  binary?: string;
  /** Network namespace to run in, as a path (/var/run/netns/NAME); default: the caller's. */
  netns?: string;
  /** Pass -v: libbpf's debug output too. Default false. */
  verbose?: boolean;
  /** Receives each stderr line of the loader; default: written to our stderr with a prefix. */
  onLog?: (line: string) => void;
}

/** Builds a request payload, little-endian. */
export class Writer {
  private readonly parts: Buffer[] = [];
  u8(v: number): this {
    return this.raw(Buffer.of(v));
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return this.raw(b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return this.raw(b);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 0xffff) throw new RangeError(`string of ${b.length} bytes does not fit a u16 length`);
    return this.u16(b.length).raw(b);
  }
  blob(b: Buffer): this {
    return this.u32(b.length).raw(b);
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Reads a response payload; throws on a short read. */
class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  raw(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new Error(`response truncated at byte ${this.pos} (wanted ${n} more)`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u8(): number {
    return this.raw(1).readUInt8(0);
  }
  u16(): number {
    return this.raw(2).readUInt16LE(0);
  }
  u32(): number {
    return this.raw(4).readUInt32LE(0);
  }
  str(): string {
    return this.raw(this.u16()).toString('utf8');
  }
  blob(): Buffer {
    return this.raw(this.u32());
  }
  rest(): Buffer {
    return this.raw(this.buf.length - this.pos);
  }
  list<T>(count: number, item: () => T): T[] {
    return Array.from({ length: count }, item);
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new Error(`${this.buf.length - this.pos} unexpected bytes at the end of a response`);
  }
}

/** Cuts a byte stream into frames (`u32 length | body`), copying each byte about once. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Returns the bodies of the frames that `chunk` completed. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const first = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten();
      const need = 4 + first.readUInt32LE(0);
      if (this.buffered < need) break;
      const all = this.flatten();
      frames.push(all.subarray(4, need));
      const rest = all.subarray(need);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
    return frames;
  }
  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}

/** `u32 length | u32 id | u8 op | payload`, length counting what follows it. */
export function encodeRequest(id: number, op: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32LE(5 + payload.length, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt8(op, 8);
  return Buffer.concat([head, payload]);
}

interface Pending {
  op: ErrorOp;
  map: string | undefined;
  decode: (r: Reader) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: LoaderError) => void;
}

function readObject(r: Reader): LoadedObject {
  return {
    path: r.str(),
    pinDir: r.str(),
    programs: r.list(r.u16(), () => ({ name: r.str(), id: r.u32(), type: r.u32() })),
    maps: r.list(r.u16(), () => ({
      name: r.str(),
      type: r.u32(),
      keySize: r.u32(),
      valueSize: r.u32(),
      maxEntries: r.u32(),
      pinned: r.u8() !== 0,
    })),
  };
}

function hookCode(hook: Hook): number {
  const code = HOOKS.indexOf(hook);
  if (code < 0) throw new TypeError(`hook must be ingress or egress, not ${String(hook)}`);
  return code;
}

/** Same-sized buffers, concatenated; throws when sizes differ. */
function sameSize(buffers: Buffer[], what: string): number {
  const size = buffers[0]?.length ?? 0;
  const odd = buffers.findIndex((b) => b.length !== size);
  if (odd >= 0) throw new RangeError(`${what} ${odd} is ${buffers[odd]!.length} bytes, ${what} 0 is ${size}`);
  return size;
}

export class Loader {
  /** Settles when the loader process has exited (and its output is drained). */
  readonly exited: Promise<ExitInfo>;
  readonly pid: number | undefined;
  private readonly child: ChildProcess;
  private readonly frames = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private readonly stderrTail: string[] = [];
  private nextId = 1;
  /** Set once the process is gone or unusable; every later call rejects with it. */
  private broken: { message: string; cause: unknown } | undefined;

  /** Why every call now fails (the process is gone or unusable), or undefined while it serves. */
  get failure(): string | undefined {
    return this.broken?.message;
  }

  /** Spawns a loader and checks that it speaks this client's protocol version. */
  static async start(options: LoaderOptions = {}): Promise<Loader> {
    const loader = new Loader(options);
    try {
      const { protocolVersion } = await loader.status();
      if (protocolVersion !== PROTOCOL_VERSION) {
        throw new LoaderError('STATUS', `loader speaks protocol ${protocolVersion}, this client ${PROTOCOL_VERSION}`);
      }
      return loader;
    } catch (error) {
      await loader.close();
      throw error;
    }
  }

  private constructor(options: LoaderOptions) {
    const binary = options.binary ?? DEFAULT_LOADER_BINARY;
    const args = options.verbose ? ['-v'] : [];
    const [file, argv] = options.netns ? ['nsenter', [`--net=${options.netns}`, '--', binary, ...args]] : [binary, args];
    this.child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    const onLog = options.onLog ?? ((line: string) => process.stderr.write(`[palisade-loader ${this.pid}] ${line}\n`));

    this.child.stdout!.on('data', (chunk: Buffer) => {
      for (const frame of this.frames.push(chunk)) this.onFrame(frame);
    });
    let partial = '';
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        this.stderrTail.push(line);
        if (this.stderrTail.length > 20) this.stderrTail.shift();
        onLog(line);
      }
    });
    // A write to a dead loader fails with EPIPE; the exit handler reports it.
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('error', (error) => {
        this.breakDown(`cannot run ${file}: ${error.message}`, error);
        resolve({ code: null, signal: null });
      });
      this.child.on('close', (code, signal) => {
        const tail = this.stderrTail.length > 0 ? `; its last words: ${this.stderrTail.join(' | ')}` : '';
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        this.breakDown(`loader process ${this.pid} ${how}${tail}`, { code, signal });
        resolve({ code, signal });
      });
    });
  }

  /**
   * Opens the object, sets its load-time globals (`const volatile` values in
   * .rodata, e.g. pal_host_reaches_pods, encoded to their C size), loads it
   * with maps pinned by name under `pinDir` (existing pins are reused, so
   * their contents survive; a pin the map cannot reuse, of another layout
   * or size, is moved to `pinDir/migrate/NAME` for datapath/pin-migration.ts)
   * and pins programs at `pinDir/progs/NAME`.
   * `mapSizes` sets the max_entries of maps by name before the load (a ring buffer: its bytes, a power of 2 pages).
   */
  load(objectPath: string, pinDir: string, options: { globals?: Record<string, Buffer>; mapSizes?: Record<string, number> } = {}): Promise<LoadedObject> {
    const globals = Object.entries(options.globals ?? {});
    const sizes = Object.entries(options.mapSizes ?? {});
    const w = new Writer().str(objectPath).str(pinDir).u16(globals.length);
    for (const [name, value] of globals) w.str(name).blob(value);
    w.u16(sizes.length);
    for (const [map, maxEntries] of sizes) w.str(map).u32(maxEntries);
    return this.call('LOAD', w.finish(), readObject);
  }

  /** Attaches (or atomically replaces) our filter on a tc hook; returns the program id. */
  attach(ifindex: number, program: string, hook: Hook): Promise<number> {
    const payload = new Writer().u32(ifindex).str(program).u8(hookCode(hook)).finish();
    return this.call('ATTACH', payload, (r) => r.u32());
  }

  /** Removes our filter; false when there was none (or no such device). */
  detach(ifindex: number, hook: Hook): Promise<boolean> {
    return this.call('DETACH', new Writer().u32(ifindex).u8(hookCode(hook)).finish(), (r) => r.u8() !== 0);
  }

  /**
   * Attaches an XDP program to a device: `auto` (the default) in the driver's native mode where the device has it,
   * else generic; or only `native` or only `generic`. A program of the same name already there (ours, from an earlier
   * loader) is replaced atomically; another's program is never replaced (rejects). Resolves with the program id and
   * the mode it runs in.
   */
  xdpAttach(ifindex: number, program: string, mode: 'auto' | XdpMode = 'auto'): Promise<{ programId: number; mode: XdpMode }> {
    const code = ['auto', 'native', 'generic'].indexOf(mode);
    if (code < 0) throw new TypeError(`XDP mode must be auto, native or generic, not ${String(mode)}`);
    const payload = new Writer().u32(ifindex).str(program).u8(code).finish();
    return this.call('XDP_ATTACH', payload, (r) => ({ programId: r.u32(), mode: r.u8() === 1 ? 'native' : 'generic' }));
  }

  /** Detaches the device's XDP program if it is named `program`; false when there was none of ours (or no such device). */
  xdpDetach(ifindex: number, program: string): Promise<boolean> {
    return this.call('XDP_DETACH', new Writer().u32(ifindex).str(program).finish(), (r) => r.u8() !== 0);
  }

  /**
   * Creates or replaces the entries in order, in one request. Resolves with
   * the number applied (all of them). On failure the LoaderError's `batch`
   * says which entry failed: those before it are applied, those after it
   * were not attempted.
   */
  update(map: string, entries: MapEntry[]): Promise<number> {
    const ks = sameSize(entries.map((e) => e.key), 'key');
    const vs = sameSize(entries.map((e) => e.value), 'value');
    const head = new Writer().str(map).u32(entries.length).u32(ks).u32(vs).finish();
    const payload = Buffer.allocUnsafe(head.length + entries.length * (ks + vs));
    head.copy(payload);
    let at = head.length;
    for (const { key, value } of entries) {
      at += key.copy(payload, at);
      at += value.copy(payload, at);
    }
    return this.call('UPDATE', payload, (r) => r.u32(), map);
  }

  /**
   * Deletes the keys in order, in one request; absent keys are skipped.
   * Resolves with the number deleted. Failure semantics as for update().
   */
  delete(map: string, keys: Buffer[]): Promise<number> {
    const ks = sameSize(keys, 'key');
    const payload = Buffer.concat([new Writer().str(map).u32(keys.length).u32(ks).finish(), ...keys]);
    return this.call('DELETE', payload, (r) => r.u32(), map);
  }

  /** Every entry of the map (keys and values are views into one response buffer). */
  dump(map: string): Promise<MapEntry[]> {
    return this.call(
      'DUMP',
      new Writer().str(map).finish(),
      (r) => {
        const [count, ks, vs] = [r.u32(), r.u32(), r.u32()];
        return r.list(count, () => {
          const key = r.raw(ks);
          return { key, value: r.raw(vs) };
        });
      },
      map,
    );
  }

  /** Every entry of the map pinned at `path`, loaded or not (a pin LOAD set aside in `<pinDir>/migrate/`). */
  dumpPinned(path: string): Promise<{ keySize: number; valueSize: number; entries: MapEntry[] }> {
    return this.call('DUMP_PINNED', new Writer().str(path).finish(), (r) => {
      const [count, keySize, valueSize] = [r.u32(), r.u32(), r.u32()];
      return { keySize, valueSize, entries: r.list(count, () => ({ key: r.raw(keySize), value: r.raw(valueSize) })) };
    });
  }

  /**
   * Runs a program on a packet with BPF_PROG_TEST_RUN. `ctx` is (a prefix
   * of) struct __sk_buff; `ifindex` sets its ifindex field and must name a
   * device in the loader's network namespace.
   */
  testRun(program: string, packet: Buffer, options: { repeat?: number; ctx?: Buffer; ifindex?: number } = {}): Promise<TestRunResult> {
    const payload = new Writer()
      .str(program)
      .u32(options.repeat ?? 1)
      .blob(packet)
      .blob(options.ctx ?? Buffer.alloc(0))
      .u32(options.ifindex ?? 0)
      .finish();
    return this.call('TEST_RUN', payload, (r) => ({ retval: r.u32() | 0, durationNs: r.u32(), data: r.blob() }));
  }

  /** Sizes and member offsets of structs, from the BTF of the loaded objects; undefined when absent. */
  layout(structs: string[]): Promise<Map<string, StructLayout | undefined>> {
    const w = new Writer().u16(structs.length);
    for (const name of structs) w.str(name);
    return this.call('LAYOUT', w.finish(), (r) => {
      const result = new Map<string, StructLayout | undefined>();
      for (let n = r.u16(); n > 0; n--) {
        const name = r.str();
        if (r.u8() === 0) {
          result.set(name, undefined);
          continue;
        }
        const size = r.u32();
        result.set(name, { name, size, members: r.list(r.u16(), () => ({ name: r.str(), offset: r.u32(), size: r.u32() })) });
      }
      return result;
    });
  }

  status(): Promise<LoaderStatus> {
    return this.call('STATUS', Buffer.alloc(0), (r) => ({
      protocolVersion: r.u16(),
      possibleCpus: r.u32(),
      objects: r.list(r.u16(), () => readObject(r)),
      attachments: r.list(r.u16(), () => ({ ifindex: r.u32(), hook: HOOKS[r.u8()]!, program: r.str(), programId: r.u32() })),
    }));
  }

  /**
   * Sends a raw request, for ops and payloads the typed methods do not make
   * (tests of the loader's robustness); resolves with the ok payload.
   */
  request(op: number, payload: Buffer): Promise<Buffer> {
    const name = (Object.keys(OPS) as OpName[]).find((k) => OPS[k] === op);
    return this.send(name ?? 'RAW', op, payload, (r) => r.rest(), undefined);
  }

  /**
   * Closes the loader's stdin; it finishes the requests it has and exits
   * (leaving pins and attachments in place). Killed after `timeoutMs`.
   */
  async close(timeoutMs = 5000): Promise<ExitInfo> {
    this.broken ??= { message: 'the loader was closed', cause: undefined };
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private call<T>(op: OpName, payload: Buffer, decode: (r: Reader) => T, map?: string): Promise<T> {
    return this.send(op, OPS[op], payload, decode, map);
  }

  private send<T>(op: ErrorOp, code: number, payload: Buffer, decode: (r: Reader) => T, map: string | undefined): Promise<T> {
    if (this.broken) return Promise.reject(new LoaderError(op, this.broken.message, { map, cause: this.broken.cause }));
    if (5 + payload.length > MAX_FRAME) {
      return Promise.reject(new LoaderError(op, `request of ${5 + payload.length} bytes exceeds the loader's limit of ${MAX_FRAME}`, { map }));
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1; // 0 is the loader's "unknown request"
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { op, map, decode, resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(encodeRequest(id, code, payload));
    });
  }

  private onFrame(frame: Buffer): void {
    if (frame.length < 5) return this.fatal(`response frame of ${frame.length} bytes`);
    const id = frame.readUInt32LE(0);
    const status = frame.readUInt8(4);
    const payload = frame.subarray(5);
    const p = this.pending.get(id);
    if (!p) return this.fatal(`response to request ${id}, which is not pending: ${payload.toString('utf8')}`);
    this.pending.delete(id);
    try {
      if (status === STATUS_OK) {
        const r = new Reader(payload);
        const value = p.decode(r);
        r.end();
        p.resolve(value);
      } else if (status === STATUS_BATCH) {
        const r = new Reader(payload);
        const batch = { index: r.u32(), errno: r.u32(), applied: r.u32() };
        p.reject(new LoaderError(p.op, r.rest().toString('utf8'), { map: p.map, batch }));
      } else {
        p.reject(new LoaderError(p.op, payload.toString('utf8'), { map: p.map }));
      }
    } catch (error) {
      p.reject(new LoaderError(p.op, `malformed response: ${(error as Error).message}`, { map: p.map, cause: error }));
    }
  }

  /** The stream can no longer be trusted: fail everything and end the process. */
  private fatal(message: string): void {
    this.breakDown(`protocol error: ${message}`, undefined);
    this.child.kill('SIGKILL');
  }

  private breakDown(message: string, cause: unknown): void {
    // A close() in progress still reports why the process ended.
    if (!this.broken || this.broken.message === 'the loader was closed') this.broken = { message, cause };
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new LoaderError(p.op, message, { map: p.map, cause }));
    }
  }
}
