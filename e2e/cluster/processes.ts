/**
 * Managed child processes for the e2e cluster: etcd, kube-apiserver, tunnels, node
 * agents, pod servers.
 *
 * - Each process leads its own process group (spawned detached), so stop() also reaches
 *   whatever it forked (socat's per-connection children, shells' children).
 * - stdout and stderr go straight to the log file through an inherited descriptor, not
 *   through a pipe into this process: a busy or blocked test process (e.g. inside a
 *   synchronous call) can never stall a child on a full pipe. Readiness lines are found
 *   by tailing that file.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export type ProcessOptions = {
  /** Names the process in errors. */
  name: string;
  command: string;
  args: readonly string[];
  /**
   * Run inside this network namespace, through `nsenter --net`, which execs the command in place.
   * Unlike `ip netns exec` it keeps the machine's mounts, so a node's bpffs mount stays visible.
   */
  netns?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** If given, startProcess resolves only once an output line matches it. */
  readyLine?: RegExp;
  /** How long to wait for readyLine; 30 s if not given. */
  readyTimeoutMs?: number;
};

export type Exit = { exitCode: number | undefined; signal: string | undefined };

export type ManagedProcess = {
  name: string;
  pid: number;
  /** The output line that matched readyLine, with its capture groups. */
  readyMatch: RegExpExecArray | undefined;
  /** Settles (never rejects) when the process has exited. */
  exited: Promise<Exit>;
  /** SIGTERM to the process group, SIGKILL after 5 s; idempotent. */
  stop(): Promise<void>;
  /** The last lines this process wrote to its log. */
  logTail(lines?: number): string;
};

const STOP_GRACE_MS = 5_000;
const POLL_MS = 25;

// Safety net for a test process that exits without stopping what it started
// (uncaught error, process.exit): detached children would otherwise outlive it.
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
});

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

/** Reads a file from `offset` to its end (at most the last `limit` bytes of that). */
function readFrom(file: string, offset: number, limit = Infinity): Buffer {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const start = Math.max(offset, size - limit);
    const buf = Buffer.alloc(Math.max(0, size - start));
    const n = readSync(fd, buf, 0, buf.length, start);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function describeExit({ exitCode, signal }: Exit): string {
  return signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
}

export async function startProcess(opts: ProcessOptions): Promise<ManagedProcess> {
  const [command, args]: [string, readonly string[]] = opts.netns
    ? ['nsenter', [`--net=/var/run/netns/${opts.netns}`, opts.command, ...opts.args]]
    : [opts.command, opts.args];
  // execa hands any descriptor number straight to spawn, though its types list only 3-9.
  const logFd = openSync(opts.logFile, 'a') as 3;
  const logStart = statSync(opts.logFile).size;
  const child = execa(command, args, {
    detached: true,
    stdin: 'ignore',
    stdout: logFd,
    stderr: logFd,
    env: opts.env,
    reject: false,
  });
  closeSync(logFd); // the child holds its own copy

  let exit: Exit | undefined;
  const exited = child.then((result) => (exit = { exitCode: result.exitCode, signal: result.signal }));
  if (child.pid === undefined) {
    const result = await child; // spawning itself failed, e.g. ENOENT
    throw new Error(`${opts.name}: could not start ${command}: ${result.message}`);
  }
  const pid = child.pid;
  liveGroups.add(pid);
  void exited.then(() => liveGroups.delete(pid));

  let stopping: Promise<void> | undefined;
  const proc: ManagedProcess = {
    name: opts.name,
    pid,
    readyMatch: undefined,
    exited,
    stop: () =>
      (stopping ??= (async () => {
        signalGroup(pid, 'SIGTERM');
        await Promise.race([exited, sleep(STOP_GRACE_MS, undefined, { ref: false })]);
        // Also ends group members that outlived the leader.
        signalGroup(pid, 'SIGKILL');
        await exited;
      })()),
    logTail: (lines = 20) => {
      const text = readFrom(opts.logFile, logStart, 64 * 1024).toString().trimEnd();
      return `last lines of ${opts.logFile}:\n${text.split('\n').slice(-lines).join('\n')}`;
    },
  };
  if (!opts.readyLine) return proc;

  const readyLine = opts.readyLine;
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const decoder = new StringDecoder('utf8');
  let offset = logStart;
  let partial = '';
  for (;;) {
    // Taken before reading, so a ready line printed just before exiting still counts.
    const exitedBeforeRead = exit;
    const chunk = readFrom(opts.logFile, offset);
    offset += chunk.length;
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const match = readyLine.exec(line);
      if (match) {
        proc.readyMatch = match;
        return proc;
      }
    }
    const failure = exitedBeforeRead
      ? `${describeExit(exitedBeforeRead)} before printing a line matching ${readyLine}`
      : Date.now() > deadline
        ? `printed no line matching ${readyLine} within ${timeoutMs} ms`
        : undefined;
    if (failure) {
      await proc.stop();
      throw new Error(`${opts.name} ${failure}; ${proc.logTail()}`);
    }
    await sleep(POLL_MS);
  }
}

export type WaitOptions = {
  timeoutMs: number;
  intervalMs?: number;
  /** Give up at once if one of these exits while waiting. */
  watch?: readonly ManagedProcess[];
  /** Whose log tail to add to a timeout error: the process that should have become ready. */
  explainTimeoutWith?: ManagedProcess;
};

/**
 * Retries `probe` until it resolves. Rejects after timeoutMs with the probe's last error,
 * or as soon as a watched process exits, with that process's log tail.
 */
export async function waitFor(what: string, probe: () => Promise<unknown>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const exits = (opts.watch ?? []).map((p) => p.exited.then((exit) => ({ p, exit })));
  let dead: { p: ManagedProcess; exit: Exit } | undefined;
  void Promise.race(exits).then((d) => (dead = d));
  for (;;) {
    let lastError: unknown;
    try {
      await probe();
      return;
    } catch (err) {
      lastError = err;
    }
    if (dead) throw new Error(`waiting for ${what}: ${dead.p.name} ${describeExit(dead.exit)}; ${dead.p.logTail()}`);
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? lastError.message : String(lastError);
      const tail = opts.explainTimeoutWith ? `; ${opts.explainTimeoutWith.name} ${opts.explainTimeoutWith.logTail()}` : '';
      throw new Error(`${what} not ready after ${opts.timeoutMs} ms; last attempt: ${reason}${tail}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

export type TlsClient = { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };

/** Probe: resolves if a GET of `url` answers 2xx within timeoutMs, else throws with the status and body. */
export function probeHttps(url: string, tls: TlsClient = {}, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else reject(new Error(`GET ${url}: HTTP ${status}: ${body.slice(0, 2_000)}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Probe: resolves if a TCP connection to host:port is accepted within timeoutMs. */
export function probeTcp(host: string, port: number, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, timeout: timeoutMs });
    socket.on('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.on('timeout', () => socket.destroy(new Error(`connect ${host}:${port}: timed out after ${timeoutMs} ms`)));
    socket.on('error', reject);
  });
}
