// Entry point of the node agent: `node agent/main.ts --node NAME [...]`.
import { parseAgentConfig } from './config.ts';
import { startAgent } from './agent.ts';

/** How long an agent whose loader died stays up to report it before it exits. */
const LOADER_LOST_GRACE_MS = 3000;

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

try {
  const agent = await startAgent(parseAgentConfig(process.argv.slice(2)), log);
  // The node has said so by now or will within the grace (Ready False, a
  // PolicySyncFailed event); then a fresh agent takes over the pins.
  void agent.loaderLost.then((why) => {
    log(`${why}; exiting in ${LOADER_LOST_GRACE_MS} ms so that a fresh agent takes over`);
    setTimeout(() => process.exit(1), LOADER_LOST_GRACE_MS);
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log(`stopping on ${signal}`);
      void agent.stop().then(() => process.exit(0));
    });
  }
} catch (error) {
  process.stderr.write(`palisade-agent: ${(error as Error).message}\n`);
  process.exit(1);
}
