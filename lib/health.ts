// /healthz and /readyz for the kubelet's probes, for a component that has
// no other HTTP listener (the operator). Each check answers undefined when
// good, else why not: a 503 with that text.
import { createServer, type Server } from 'node:http';

export interface HealthChecks {
  live: () => string | undefined;
  ready: () => string | undefined;
}

export async function serveHealth(listen: { host: string; port: number }, checks: HealthChecks): Promise<Server> {
  const server = createServer((req, res) => {
    const check = req.url === '/healthz' ? checks.live : req.url === '/readyz' ? checks.ready : undefined;
    if (!check) {
      res.writeHead(404).end();
      return;
    }
    const why = check();
    res.writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(why === undefined ? 'ok\n' : `${why}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return server;
}
