// Entry point of the operator: `node operator/main.ts [--kubeconfig PATH] [--health-listen HOST:PORT]`.
// One replica leads (Lease `palisade-operator` in the given namespace) and
// runs the controllers; the others wait to take over. A leader that steps
// down (renew deadline passed, lease taken) stops its controllers at once and
// competes again; SIGTERM releases the lease, so a follower takes over at its
// next retry.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startIdentityController } from './identities.ts';
import { kubeLeaseClient, LeaderElector } from './leader.ts';
import { loadKubeConfig } from './kube.ts';
import { startPolicyValidator } from './policy-validator.ts';
import { startPalisadePolicyController } from './palisade-policies.ts';
import { serveHealth } from '../lib/health.ts';
import { parseListen } from '../lib/listen.ts';

const config = z
  .object({
    /** Kubeconfig; default: in-cluster service account. */
    kubeconfig: z.string().optional(),
    /** Namespace of the leader-election Lease. Default kube-system. */
    namespace: z.string().default('kube-system'),
    /** This replica's name in the Lease. Default: the host name and pid. */
    identity: z.string().default(`${hostname()}-${process.pid}`),
    /** Seconds an identity no pod uses is kept before it is deleted. Default 30. */
    identityGraceSeconds: z.coerce.number().min(0).default(30),
    /** Seconds followers wait without seeing the Lease change before taking over. Default 15. */
    leaseDurationSeconds: z.coerce.number().positive().default(15),
    /** Seconds after its last successful renewal at which a leader steps down. Default 10 (< lease duration). */
    renewDeadlineSeconds: z.coerce.number().positive().default(10),
    /** Seconds between attempts to acquire or renew. Default 2. */
    retryPeriodSeconds: z.coerce.number().positive().default(2),
    /** host:port of /healthz and /readyz for the kubelet's probes. Default: none. */
    healthListen: z.string().optional(),
  })
  .refine((c) => c.renewDeadlineSeconds < c.leaseDurationSeconds, 'the renew deadline must be shorter than the lease duration')
  .parse(
    (({ 'identity-grace-seconds': identityGraceSeconds, 'lease-duration-seconds': leaseDurationSeconds, 'renew-deadline-seconds': renewDeadlineSeconds, 'retry-period-seconds': retryPeriodSeconds, 'health-listen': healthListen, ...rest }) => ({
      ...rest,
      healthListen,
      identityGraceSeconds,
      leaseDurationSeconds,
      renewDeadlineSeconds,
      retryPeriodSeconds,
    }))(
      parseArgs({
        options: {
          kubeconfig: { type: 'string' },
          namespace: { type: 'string' },
          identity: { type: 'string' },
          'identity-grace-seconds': { type: 'string' },
          'lease-duration-seconds': { type: 'string' },
          'renew-deadline-seconds': { type: 'string' },
          'retry-period-seconds': { type: 'string' },
          'health-listen': { type: 'string' },
        },
      }).values,
    ),
  );

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

try {
  const healthListen = config.healthListen === undefined ? undefined : parseListen(config.healthListen);
  const kubeconfig = loadKubeConfig(config.kubeconfig);
  const LEASE = 'palisade-operator';
  const renewDeadlineMs = config.renewDeadlineSeconds * 1000;
  let controllers: Array<{ stop(): Promise<void> }> = [];
  // Starting and stopping the controllers are serialized: a step-down during a
  // start stops what that start built.
  let lifecycle = Promise.resolve();
  const serially = (step: () => Promise<void>) => {
    lifecycle = lifecycle.then(step).catch((error: unknown) => void log(`controllers: ${(error as Error).message}`));
    return lifecycle;
  };
  const stopControllers = async () => {
    const stopping = controllers;
    controllers = [];
    await Promise.all(stopping.map((c) => c.stop()));
  };

  const startControllers = async (): Promise<void> => {
    if (!elector.isLeading() || controllers.length > 0) return;
    const isLeading = () => elector.isLeading();
    try {
      controllers.push(await startIdentityController(kubeconfig, { graceMs: config.identityGraceSeconds * 1000, log, isLeading, writer: config.identity }));
      controllers.push(await startPolicyValidator(kubeconfig, log));
      controllers.push(await startPalisadePolicyController(kubeconfig, { log, isLeading }));
    } catch (error) {
      // E.g. the API server went away while the informers listed: try again while we lead.
      log(`controllers: could not start, retrying: ${(error as Error).message}`);
      await stopControllers();
      setTimeout(() => void serially(startControllers), 1_000);
      return;
    }
    log(`ready: leading as ${config.identity}`);
  };

  const elector: LeaderElector = new LeaderElector(
    kubeLeaseClient(kubeconfig, LEASE, config.namespace),
    { identity: config.identity, name: LEASE, namespace: config.namespace },
    {
      timings: {
        leaseDurationMs: config.leaseDurationSeconds * 1000,
        renewDeadlineMs,
        retryPeriodMs: config.retryPeriodSeconds * 1000,
        callTimeoutMs: Math.min(4_000, renewDeadlineMs / 2),
      },
      log,
      callbacks: {
        onStartedLeading: () => void serially(startControllers),
        onStoppedLeading: (reason) => {
          // Writes are already fenced (every write checks isLeading()); this stops the watches.
          log(`stepped down: ${reason}; no more identity writes from ${config.identity}`);
          void serially(stopControllers);
        },
      },
    },
  );
  // Live while this loop answers; ready as a follower (it can take over), or as a leader once its controllers run.
  if (healthListen) {
    await serveHealth(healthListen, {
      live: () => undefined,
      ready: () => (elector.isLeading() && controllers.length === 0 ? 'leading, starting the controllers' : undefined),
    });
  }
  elector.start();
  log(`candidate: ${config.identity} competing for lease ${config.namespace}/${LEASE}`);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      // release() fences our writes at once (it steps down), then clears the Lease's holder.
      const exit = elector
        .release()
        .catch((error: unknown) => log(`could not release the lease: ${(error as Error).message}`))
        .then(() => serially(stopControllers))
        .then(() => process.exit(0));
      void exit;
    });
  }
} catch (error) {
  process.stderr.write(`palisade-operator: ${(error as Error).message}\n`);
  process.exit(1);
}
