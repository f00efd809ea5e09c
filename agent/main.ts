// Entry point of the node agent: `node agent/main.ts --node NAME [...]`.
import { parseAgentConfig } from './config.ts';
import { startAgent } from './agent.ts';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

try {
  const agent = await startAgent(parseAgentConfig(process.argv.slice(2)), log);
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
