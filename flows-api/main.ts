// Entry point of Palisade's aggregated API server (group flows.palisade.io):
//   node flows-api/main.ts --listen HOST:PORT --tls-cert F --tls-key F
//     --requestheader-client-ca F [--requestheader-allowed-names a,b]
//     --agent-ca F --agent-token-file F [--agent-port 4244]
//     [--agent-server-name NAME] [--kubeconfig F]
// Registered with kube-apiserver by an APIService (v1alpha1.flows.palisade.io).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { parseListen } from '../lib/listen.ts';
import { Agents, type AgentTarget } from './agents.ts';
import { serveFlowsApi } from './server.ts';

const schema = z.object({
  listen: z.string().default('0.0.0.0:8443'),
  tlsCert: z.string().min(1),
  tlsKey: z.string().min(1),
  requestheaderClientCa: z.string().min(1),
  requestheaderAllowedNames: z.string().default('front-proxy-client'),
  agentCa: z.string().min(1),
  agentTokenFile: z.string().min(1),
  agentPort: z.coerce.number().int().min(1).max(65535).default(4244),
  /** The name the agents' certificate holds (the Helm chart's shared one); default: each agent's address (an IP SAN). */
  agentServerName: z.string().min(1).optional(),
  kubeconfig: z.string().optional(),
});

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

try {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: Object.fromEntries(['listen', 'tls-cert', 'tls-key', 'requestheader-client-ca', 'requestheader-allowed-names', 'agent-ca', 'agent-token-file', 'agent-port', 'agent-server-name', 'kubeconfig'].map((o) => [o, { type: 'string' as const }])),
    strict: true,
  });
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(values).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v])));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`--${String(issue.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`);
  }
  const c = parsed.data;
  const kubeconfig = new KubeConfig();
  if (c.kubeconfig) kubeconfig.loadFromFile(c.kubeconfig);
  else kubeconfig.loadFromCluster();
  const core = kubeconfig.makeApiClient(CoreV1Api);
  // Every node's agent at its InternalIP; the list is read again at most every 2 s.
  let cached: { at: number; targets: AgentTarget[] } | undefined;
  const targets = async () => {
    if (cached && Date.now() - cached.at < 2000) return cached.targets;
    const nodes = (await core.listNode()).items;
    const list = nodes.flatMap((n) => {
      const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      return ip ? [{ node: n.metadata!.name!, ip }] : [];
    });
    cached = { at: Date.now(), targets: list };
    return list;
  };
  const agents = new Agents({ ca: await readFile(c.agentCa), token: (await readFile(c.agentTokenFile, 'utf8')).trim(), port: c.agentPort, serverName: c.agentServerName, targets });
  const server = await serveFlowsApi({
    listen: parseListen(c.listen),
    cert: await readFile(c.tlsCert),
    key: await readFile(c.tlsKey),
    requestHeaderCa: await readFile(c.requestheaderClientCa),
    allowedNames: c.requestheaderAllowedNames.split(',').map((n) => n.trim()).filter(Boolean),
    kubeconfig,
    agents,
    log,
  });
  log(`ready: serving flows.palisade.io on ${c.listen}`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    });
  }
} catch (error) {
  process.stderr.write(`palisade-flows-api: ${(error as Error).message}\n`);
  process.exit(1);
}
