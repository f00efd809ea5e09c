// The images as a node gets them: scripts/build-images.sh builds the Dockerfile
// (and the pause and test pod images) here without a registry, cached; then
// the palisade image is checked by running it with buildah as a user would
// notice it (Node 24, the agent refusing a missing --node, the operator not
// root, kubectl-palisade, the CNI plugin, no compilers, its size), and every
// archive is imported into a throwaway containerd v2.4.2 with `ctr images
// import` and run from there, as a real node runs it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink, writeFile, mkdir, access } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { REPO_ROOT } from '../cluster/paths.ts';

const SCRIPT = join(REPO_ROOT, 'scripts/build-images.sh');
const VERSION = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const IMAGE = `docker.io/palisade/palisade:${VERSION}`;
const PAUSE = 'registry.k8s.io/pause:3.10.2';
const TESTPOD = 'docker.io/palisade/testpod:dev';
/** Measured 281 MB (Node 24 108 MB, npm modules 75 MB, Debian 78 MB); a compiler or dev modules would add hundreds. */
const MAX_IMAGE_MB = 330;

const buildah = (args: string[], input?: string) => execa('bash', [SCRIPT, 'buildah', ...args], { reject: false, input });

let container: string | undefined; // a working container of the palisade image, for buildah run
const archives: Record<'palisade' | 'pause' | 'testpod', string> = { palisade: '', pause: '', testpod: '' };

before(async () => {
  await execa('bash', [SCRIPT, 'all'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (const name of ['palisade', 'pause', 'testpod'] as const) {
    archives[name] = String((await execa('bash', [SCRIPT, 'archive', name])).stdout).trim();
  }
  const from = await buildah(['from', '--pull=never', IMAGE]);
  assert.equal(from.exitCode, 0, String(from.stderr));
  container = String(from.stdout).trim();
});

after(async () => {
  if (container) await buildah(['rm', container]);
});

/** Runs a command in the image, without a network, as its default user unless `user` is given. */
async function run(cmd: string[], options: { user?: string; env?: Record<string, string>; input?: string } = {}) {
  const flags = ['--network', 'none'];
  if (options.user) flags.push('--user', options.user);
  for (const [k, v] of Object.entries(options.env ?? {})) flags.push('--env', `${k}=${v}`);
  const result = await buildah(['run', ...flags, container!, '--', ...cmd], options.input);
  return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

test('a second build of an unchanged tree builds nothing and returns fast', async () => {
  const start = performance.now();
  const again = await execa('bash', [SCRIPT, 'archive', 'palisade']);
  const ms = performance.now() - start;
  assert.equal(String(again.stdout).trim(), archives.palisade);
  assert.equal(String(again.stderr), '', 'a no-op build says nothing');
  assert.ok(ms < 5000, `no-op build took ${Math.round(ms)} ms`);
});

test('the image is configured as the chart expects: user 65532, WORKDIR /opt/palisade, both tags', async () => {
  const inspect = await buildah(['inspect', '--type', 'image', '--format', '{{.OCIv1.Config.User}} {{.OCIv1.Config.WorkingDir}}', IMAGE]);
  assert.equal(String(inspect.stdout).trim(), '65532:65532 /opt/palisade');
  const dev = await buildah(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'docker.io/palisade/palisade:dev']);
  const ver = await buildah(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', IMAGE]);
  assert.equal(String(dev.stdout).trim(), String(ver.stdout).trim(), ':dev and :VERSION are the same image');
});

test('node on PATH is Node 24, the pinned version', async () => {
  const pinned = (JSON.parse(await readFile(join(REPO_ROOT, 'node_modules/node/package.json'), 'utf8')) as { version: string }).version;
  const r = await run(['node', '--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `v${pinned}`);
  assert.match(r.stdout, /^v24\./);
});

test('the agent starts and refuses a missing --node by name', async () => {
  const r = await run(['node', 'agent/main.ts'], { user: '0' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /palisade-agent: agent configuration: --node/);
});

test('the operator runs as user 65532, not root', async () => {
  // A kubeconfig naming a closed port: the operator starts and keeps competing for its lease.
  const kubeconfig = [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
    'users: [{name: u, user: {token: t}}]',
    'contexts: [{name: c, context: {cluster: c, user: u}}]',
  ].join('\n');
  const r = await run(['sh', '-c',
    'cat > /tmp/kubeconfig; node operator/main.ts --kubeconfig /tmp/kubeconfig & pid=$!; sleep 2; ' +
    'grep -E "^(Uid|Gid):" /proc/$pid/status; kill $pid; wait $pid; exit 0'], { input: kubeconfig });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
  assert.match(r.stdout, /^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
  assert.match(r.stdout + r.stderr, /palisade-operator/, 'the operator said what it does');
});

test('the flow API server starts and names its first missing flag', async () => {
  const r = await run(['node', 'flows-api/main.ts']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /palisade-flows-api: --[a-z-]+: /);
});

test('kubectl-palisade is on PATH and answers --help', async () => {
  const r = await run(['kubectl-palisade', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Usage: kubectl palisade/);
  const where = await run(['sh', '-c', 'command -v kubectl-palisade']);
  assert.equal(where.stdout.trim(), '/usr/local/bin/kubectl-palisade');
});

test('the CNI plugin is at /opt/palisade/cni/palisade-cni and runs: with no agent it answers error 11', async () => {
  const r = await run(['/opt/palisade/cni/palisade-cni'], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.1.0"}' });
  assert.equal(r.code, 1, r.stderr);
  const answer = JSON.parse(r.stdout) as { code: number; msg: string };
  assert.equal(answer.code, 11, r.stdout);
  assert.match(answer.msg, /agent is not reachable/);
});

test('the datapath programs are where the agent looks for them by default', async () => {
  const r = await run(['sh', '-c', 'for f in build/bpf/endpoint.bpf.o build/bin/palisade-loader build/bin/palisade-flow-reader; do test -s $f || echo "missing $f"; done; ' +
    'for f in build/bin/palisade-loader build/bin/palisade-flow-reader; do test -x $f || echo "not executable $f"; ldd $f | grep "not found"; done; exit 0']);
  assert.equal(r.stdout + r.stderr, '');
});

test('no compilers, no dev modules and no tests in the runtime image', async () => {
  const r = await run(['sh', '-c',
    'for c in clang gcc cc c++ g++ llc ld as make tsc; do command -v $c; done; ls /usr/lib | grep -i llvm; ' +
    'ls node_modules | grep -xE "node|typescript|fast-check"; ' +
    'find /opt/palisade -path /opt/palisade/node_modules -prune -o \\( -name "*.test.ts" -o -name "*.c" \\) -print; exit 0']);
  assert.equal(r.stdout, '', `found in the image:\n${r.stdout}`);
});

test(`the image is under ${MAX_IMAGE_MB} MB`, async () => {
  const r = await buildah(['images', '--format', '{{.Size}}', IMAGE]);
  const m = /^([\d.]+)\s*(kB|MB|GB)$/.exec(String(r.stdout).trim().split('\n')[0]!);
  assert.ok(m, `size ${String(r.stdout)}`);
  const mb = Number(m[1]) * { kB: 1e-3, MB: 1, GB: 1e3 }[m[2] as 'kB' | 'MB' | 'GB'];
  process.stderr.write(`palisade image: ${mb} MB\n`);
  assert.ok(mb < MAX_IMAGE_MB, `${mb} MB`);
});

// The archives in a node's containerd: the same binaries the real-node cluster runs.
const CACHE_BIN = join(process.env.PALISADE_CACHE ?? join(homedir(), '.cache/palisade'), 'bin');
const CONTAINERD = join(CACHE_BIN, 'containerd-v2.4.2');
const CTR = join(CACHE_BIN, 'ctr-v2.4.2');
const SHIM = join(CACHE_BIN, 'containerd-shim-runc-v2-v2.4.2');
const haveContainerd = await Promise.all([CONTAINERD, CTR, SHIM].map((f) => access(f))).then(() => true, () => false);

test('every archive imports into containerd with ctr and runs', { skip: haveContainerd ? false : 'containerd v2.4.2 is not built (scripts/build-cluster-tools.sh real-nodes)' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-image-test-'));
  const ns = 'k8s.io'; // as on a node: the namespace the kubelet's CRI uses
  const id = (name: string) => `palisade-image-test-${process.pid}-${name}`;
  const hadRunContainerd = await access('/run/containerd').then(() => true, () => false);
  let daemon: ResultPromise | undefined;
  const running: ResultPromise[] = [];
  t.after(async () => {
    for (const p of running) p.kill('SIGKILL');
    await Promise.allSettled(running);
    if (daemon) {
      daemon.kill('SIGTERM');
      await daemon.catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
    // The shim and runc keep state under /run/containerd whatever the daemon's
    // state dir: remove what this test made there, and nothing still in use.
    await execa('rmdir', [`/run/containerd/runc/${ns}`], { reject: false }); // only if empty
    if (!hadRunContainerd) {
      for (const d of ['runc', 's', 'fifo', '']) await execa('rmdir', [`/run/containerd/${d}`], { reject: false });
    }
  });
  await mkdir(join(dir, 'bin'));
  await symlink(SHIM, join(dir, 'bin/containerd-shim-runc-v2'));
  const sock = join(dir, 'containerd.sock');
  await writeFile(join(dir, 'config.toml'), [
    'version = 3',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    '[grpc]',
    `  address = "${sock}"`,
    "[plugins.'io.containerd.cri.v1.runtime']",
    '  restrict_oom_score_adj = true',
  ].join('\n'));
  const env = { PATH: `${dir}/bin:${process.env.PATH}` };
  daemon = execa(CONTAINERD, ['--config', join(dir, 'config.toml')], { env, stdio: 'ignore', reject: false });
  const ctr = (args: string[], input?: string) => execa(CTR, ['-a', sock, '-n', ns, ...args], { env, reject: false, input });
  for (let i = 0; (await ctr(['version'])).exitCode !== 0; i++) {
    assert.ok(i < 100, 'containerd did not start');
    await sleep(100);
  }

  for (const archive of Object.values(archives)) {
    const r = await ctr(['images', 'import', archive]);
    assert.equal(r.exitCode, 0, String(r.stderr));
  }
  const listed = String((await ctr(['images', 'ls', '-q'])).stdout).split('\n');
  for (const name of [IMAGE, PAUSE, TESTPOD]) assert.ok(listed.includes(name), `${name} imported (have ${listed.join(' ')})`);
  // The pause image carries containerd's default sandbox image name, so its CRI pins it.
  const pauseRow = String((await ctr(['images', 'ls'])).stdout).split('\n').find((l) => l.startsWith(`${PAUSE} `));
  assert.match(pauseRow ?? '', /io\.cri-containerd\.pinned=pinned/);

  const version = await ctr(['run', '--rm', IMAGE, id('node'), 'node', '--version']);
  assert.equal(String(version.stdout).trim(), (await run(['node', '--version'])).stdout.trim());

  // Started in the foreground, stopped by the signal a kubelet sends.
  const until = async (task: string) => {
    for (let i = 0; !String((await ctr(['task', 'ls'])).stdout).includes(`${task} `); i++) {
      assert.ok(i < 100, `${task} did not start`);
      await sleep(100);
    }
  };
  const pause = ctr(['run', '--rm', PAUSE, id('pause')]);
  running.push(pause);
  await until(id('pause'));
  await ctr(['task', 'kill', '-s', 'SIGTERM', id('pause')]);
  assert.equal((await pause).exitCode, 0, 'pause exits 0 on SIGTERM');

  // The test pod: the echo server answers the prober in the pod's own network namespace.
  const server = ctr(['run', '--rm', '--privileged', TESTPOD, id('testpod'), '/usr/local/bin/palisade-podserver', '80']);
  running.push(server);
  await until(id('testpod'));
  let probed = '';
  for (let i = 0; i < 50 && !probed.startsWith('a ok'); i++) {
    const probe = await ctr(['task', 'exec', '--exec-id', `probe-${i}`, id('testpod'), '/usr/local/bin/palisade-prober'],
      'a /proc/self/ns/net tcp 127.0.0.1 80\nb /proc/self/ns/net udp 127.0.0.1 80\nc /proc/self/ns/net tcp 127.0.0.1 81\n');
    probed = String(probe.stdout);
    if (!probed.startsWith('a ok')) await sleep(100);
  }
  assert.equal(probed.trim(), 'a ok\nb ok\nc fail ECONNREFUSED');
  await ctr(['task', 'kill', '-s', 'SIGTERM', id('testpod')]);
  assert.equal((await server).exitCode, 0, 'the echo server exits 0 on SIGTERM');
  assert.equal(String((await ctr(['containers', 'ls', '-q'])).stdout).trim(), '', 'no container left');
});
