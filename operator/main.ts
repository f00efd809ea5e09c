// Entry point of the operator: `node operator/main.ts [--kubeconfig PATH]`.
// One replica leads (Lease `palisade-operator` in the given namespace) and
// runs the controllers; the others wait to take over.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startIdentityController } from './identities.ts';
import { loadKubeConfig } from './kube.ts';
import { acquireLeadership } from './leader.ts';
import { startPolicyValidator } from './policy-validator.ts';

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
  })
  .parse(
    (({ 'identity-grace-seconds': identityGraceSeconds, ...rest }) => ({ ...rest, identityGraceSeconds }))(
      parseArgs({
        options: { kubeconfig: { type: 'string' }, namespace: { type: 'string' }, identity: { type: 'string' }, 'identity-grace-seconds': { type: 'string' } },
      }).values,
    ),
  );

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

try {
  const kubeconfig = loadKubeConfig(config.kubeconfig);
  const leadership = await acquireLeadership(kubeconfig, { name: 'palisade-operator', namespace: config.namespace, identity: config.identity }, () => {
    log('leadership lost; exiting so a fresh replica takes over');
    process.exit(1);
  });
  const controllers = [await startIdentityController(kubeconfig, config.identityGraceSeconds * 1000, log), await startPolicyValidator(kubeconfig, log)];
  log(`ready: leading as ${config.identity}`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      leadership.stop();
      void Promise.all(controllers.map((c) => c.stop())).then(() => process.exit(0));
    });
  }
} catch (error) {
  process.stderr.write(`palisade-operator: ${(error as Error).message}\n`);
  process.exit(1);
}
