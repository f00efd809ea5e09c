// `npm run demo` as a newcomer runs it (e2e/demo.ts, on real nodes through
// the Helm chart): the story it tells, in order, and that it leaves nothing
// behind, both when it runs to its end (--once) and when Ctrl-C comes while
// `helm install` runs (the signal goes to the demo's whole process group,
// as a terminal sends it, so helm and kubectl get it too).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { cgroupMounts } from '../cluster/cgroups.ts';
import { listNetns } from '../cluster/netns.ts';
import { REPO_ROOT } from '../cluster/paths.ts';

const DEMO = `${REPO_ROOT}e2e/demo.ts`;

/** No namespace, mount, process, cgroup or run directory of the run whose names start with `prefix`. */
async function assertNothingLeft(prefix: string): Promise<void> {
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), [], 'network namespaces');
  assert.deepEqual((await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(prefix)), [], 'mounts');
  const { stdout } = await execa('ps', ['-eo', 'pid,args']);
  assert.deepEqual(String(stdout).split('\n').filter((l) => l.includes(prefix) && !l.includes(' ps -eo')), [], 'processes');
  for (const mount of await cgroupMounts()) {
    assert.deepEqual((await readdir(mount)).filter((name) => name.startsWith(prefix)), [], `cgroups in ${mount}`);
  }
  assert.deepEqual((await readdir(tmpdir())).filter((name) => name.startsWith(prefix)), [], 'run directory');
}

/** Indexes of each pattern in `out`, which must appear in this order. */
function assertInOrder(out: string, patterns: RegExp[]): void {
  let from = 0;
  for (const pattern of patterns) {
    const match = new RegExp(pattern.source, pattern.flags.replace('g', '') + 'g');
    match.lastIndex = from;
    const found = match.exec(out);
    assert.ok(found, `${pattern} after offset ${from} of the output:\n${out}`);
    from = found.index + found[0].length;
  }
}

describe('npm run demo', { timeout: 180_000 }, () => {
  it('installs Palisade with helm on real nodes and shows pods, policies, the matrix before and after, flows and a trace', async () => {
    const t = performance.now();
    const child = execa(process.execPath, [DEMO, '--once'], { reject: false, all: true, timeout: 150_000 });
    const run = await child;
    const out = String(run.all);
    console.log(`demo --once: ${Math.round(performance.now() - t)} ms`);
    assert.equal(run.exitCode, 0, out);
    assertInOrder(out, [
      /up in [\d.]+ s/,
      /node-1 +NotReady/,
      /NetworkPluginNotReady/,
      /\$ helm install palisade \.\/helm\/palisade -n kube-system --wait/,
      /\+[\d.]+ s {2}node-\d Ready/,
      /\| STATUS: deployed/,
      /\| NOTES:/,
      /\| +kubectl palisade observe -A -f/,
      /palisade-agent-\w+ +\d\/\d +Running/,
      /node-1 +Ready/,
      /all four Running and Ready/,
      /data +db +1\/1 +Running/,
      // Before: everything connects (no X in the matrix).
      /Reachability, TCP port 80[^\n]*\n(?:[^X\n]*\n){5}\n/,
      /name: default-deny, namespace: data/,
      /enforced on both nodes \d+ ms/,
      // After: web cannot reach db, api can; nobody reaches cache.
      /Reachability after:\n[^\n]*\nshop\/web +\. +\. +X +X\s*\nshop\/api +\. +\. +\. +X\s*\n/,
      /\$ kubectl palisade observe -n shop -n data -f/,
      /drop dropped ingress \S+ -> data\/\w+:80 TCP DROP_POLICY \[NetworkPolicy data\/default-deny/,
      /\$ kubectl palisade observe -n data --verdict dropped --last 8/,
      /DROP_POLICY +NetworkPolicy data\/(db-from-api, NetworkPolicy data\/)?default-deny \(default deny\)/,
      /\$ kubectl palisade policy trace --from shop\/web --to data\/db/,
      /verdict: denied at the ingress of data\/db/,
      /node-1 +\d+ +\d+ +True/,
      /10\.244\.\d+\.0\/24/,
      /The demo took [\d.]+ s/,
      /Removing the cluster/,
    ]);
    await assertNothingLeft(`pal-${child.pid}-`);
  });

  it('removes everything when Ctrl-C comes during helm install', async () => {
    const child = execa(process.execPath, [DEMO], { reject: false, all: true, detached: true, timeout: 120_000 });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.all!.on('data', (chunk: Buffer) => {
        seen += String(chunk);
        if (seen.includes('$ helm install')) resolve();
      });
      void child.then(() => reject(new Error(`the demo ended before helm install:\n${seen}`)));
    });
    const t = performance.now();
    process.kill(-child.pid!, 'SIGINT'); // the terminal's Ctrl-C: the whole foreground process group
    const run = await child;
    console.log(`Ctrl-C during helm install: exited ${Math.round(performance.now() - t)} ms later`);
    assert.equal(run.exitCode, 0, String(run.all));
    assert.match(String(run.all), /Interrupted: removing the cluster/);
    await assertNothingLeft(`pal-${child.pid}-`);
  });
});
