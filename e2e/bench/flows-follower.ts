// The `flows` benchmark's follower (e2e/bench/flows.ts): one client of the
// agent's flow API following flows (GET /v1/flows?follow=true over HTTPS,
// as flows-api follows each agent), in a process of its own.
//
// mode `count`: reads and discards the stream, counting lines and what the
// agent said it missed. mode `latency`: also parses every line and notes,
// for each flow, its source address and port and when its line arrived
// (process.hrtime, CLOCK_MONOTONIC: comparable with the benchmark's own
// stamps in another process).
//
// IPC: {ready} once the request is sent; {cmd: 'counts'} -> counts and, in
// latency mode, the arrivals since the last ask; {closed, why} if the agent
// ends the stream (a follower cut off for falling behind).
import { request } from 'node:https';
import { readFileSync } from 'node:fs';

export interface FollowerArgs {
  port: number;
  token: string;
  ca: string;
  criteria: object;
  /** Only flows from this time on (ms since the epoch), as `observe --follow` asks. */
  sinceMs?: number;
  mode: 'count' | 'latency';
}

export interface FollowerCounts {
  lines: number;
  flows: number;
  missed: number;
  bytes: number;
  /** latency mode: [source ip, source port, arrival ns (hrtime)] */
  arrivals: Array<[string, number, string]>;
}

const args = JSON.parse(process.argv[2]!) as FollowerArgs;
const counts: FollowerCounts = { lines: 0, flows: 0, missed: 0, bytes: 0, arrivals: [] };
const NEWLINE = 0x0a;
let missedLines = 0;
const MISSED = Buffer.from('{"missed":');

const q = new URLSearchParams({ follow: 'true', criteria: JSON.stringify(args.criteria) });
if (args.sinceMs !== undefined) q.set('since', String(args.sinceMs));
let stopping = false;
const tell = (body: object) => {
  if (!stopping && process.connected) process.send!(body);
};
const req = request({ host: '127.0.0.1', port: args.port, path: `/v1/flows?${q}`, ca: readFileSync(args.ca), headers: { authorization: `Bearer ${args.token}` } }, (res) => {
  if (res.statusCode !== 200) {
    tell({ closed: true, why: `status ${res.statusCode}` });
    return;
  }
  let partial = '';
  res.on('data', (chunk: Buffer) => {
    counts.bytes += chunk.length;
    if (args.mode === 'count') {
      // Every line is a flow but the (rare, short) {"missed":N} ones.
      for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) counts.lines++;
      for (let at = chunk.indexOf(MISSED); at !== -1; at = chunk.indexOf(MISSED, at + 1)) {
        const n = /^\d+/.exec(chunk.subarray(at + MISSED.length, at + MISSED.length + 20).toString('latin1'));
        counts.missed += n ? Number(n[0]) : 0;
        missedLines++;
      }
      counts.flows = counts.lines - missedLines;
      return;
    }
    const now = process.hrtime.bigint().toString();
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line) continue;
      counts.lines++;
      const parsed = JSON.parse(line) as { flow?: { source: { ip: string; port?: number } }; missed?: number };
      if (parsed.missed) counts.missed += parsed.missed;
      if (parsed.flow) {
        counts.flows++;
        counts.arrivals.push([parsed.flow.source.ip, parsed.flow.source.port ?? 0, now]);
      }
    }
  });
  res.on('close', () => tell({ closed: true, why: 'the agent ended the stream' }));
});
req.on('error', (error) => tell({ closed: true, why: error.message }));
// The agent sends its response head with the first flow: the benchmark sees the follower registered in the agent's store instead.
req.on('finish', () => tell({ ready: true }));
req.end();

process.on('message', (message: { id: number; cmd: string }) => {
  if (message.cmd === 'counts') {
    process.send!({ id: message.id, ...counts });
    counts.arrivals = [];
  } else if (message.cmd === 'stop') {
    stopping = true;
    req.destroy();
    process.exit(0);
  }
});
