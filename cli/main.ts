// `kubectl palisade`: the kubectl plugin (started by cli/kubectl-palisade).
// Commander parses the command line; commands.ts does the work. Every way
// out goes through run(), which turns what happened into an exit code
// (errors.ts) so that scripts can rely on it.
import { Command, CommanderError, Option } from 'commander';
import { Api, type ClusterFlags } from './api.ts';
import * as commands from './commands.ts';
import { describe, EXIT, type ExitCode } from './errors.ts';
import { PROTOCOLS, REASONS, TYPES, VERDICTS } from './observe.ts';

export const EXIT_CODES_HELP = `
Exit codes:
  0  success (trace: allowed both ways)
  1  trace: denied; status: an agent is not ready
  2  usage error: a bad flag, argument or filter (nothing was asked of the cluster)
  3  forbidden by RBAC (the message says what to ask for)
  4  Palisade's API or its agents are unavailable
  5  not found: an unknown pod, namespace or node
  6  any other error (the API server unreachable, bad credentials, ...)`;

const many = (value: string, previous: string[] = []) => [...previous, value];

function program(io: commands.Io, done: (code: ExitCode) => void): Command {
  const root = new Command('kubectl palisade')
    .description('Palisade\'s network flows and policy, through the Kubernetes API server and its RBAC.')
    .option('--kubeconfig <path>', 'the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use (default: its current context)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s.replace(/\n$/, '')) });

  const cluster = (cmd: Command) => () => Api.load(cmd.optsWithGlobals<ClusterFlags>());

  root
    .command('observe')
    .description('Show flows (connections and drops) of every node, merged in time order; --follow streams new ones.')
    .option('-n, --namespace <ns>', 'flows with a pod in this namespace (repeatable; default: the context\'s namespace, or the namespaces of the pods named)', many)
    .option('-A, --all-namespaces', 'flows of every namespace')
    .option('--pod <ns/name>', 'a pod at either end (repeatable; a bare name is in the -n or context namespace)', many)
    .option('--from-pod <ns/name>', 'the source pod (repeatable)', many)
    .option('--to-pod <ns/name>', 'the destination pod (repeatable)', many)
    .option('-l, --label <key=value>', 'a pod at either end with this label (key alone: has the key; repeatable, all must hold)', many)
    .option('--identity <n>', 'a security identity at either end (repeatable)', many)
    .option('--ip <ip|cidr>', 'an IPv4 address or CIDR at either end (repeatable)', many)
    .option('--port <n>', 'a port at either end (repeatable)', many)
    .option('--protocol <name>', `${PROTOCOLS.join(', ')} (repeatable)`, many)
    .option('--verdict <verdict>', `${VERDICTS.join(' or ')} (repeatable)`, many)
    .option('--reason <name>', `the datapath's reason, e.g. DROP_POLICY (repeatable; one of ${REASONS.join(', ')})`, many)
    .option('--policy <"KIND ns/name"|ns/name>', 'a policy among the flow\'s deciding policies (repeatable)', many)
    .option('--node <name>', 'flows recorded on this node (repeatable)', many)
    .option('--type <type>', `event type: ${TYPES.join(', ')} (repeatable)`, many)
    .option('-f, --follow', 'stream new flows until interrupted')
    .option('--last <n>', 'only the last N flows (over all nodes)')
    .option('--since <duration>', 'only flows of the last 5s, 5m, 2h, ... (with --follow: replay those first)')
    .addOption(new Option('-o, --output <format>', 'table (times are UTC), json (one Flow per line: docs/flows.md) or compact').choices(['table', 'json', 'compact']).default('table'))
    .addHelpText('after', `
Filters narrow (all must hold); a repeated filter widens (any may hold).
Lost flows (per node and stage) and unreachable nodes are reported on stderr.

Examples:
  kubectl palisade observe -n shop --verdict dropped --since 5m
  kubectl palisade observe -A --from-pod shop/web --to-pod db/pg --port 5432 -o json
  kubectl palisade observe -A --policy db/deny-all -f
${EXIT_CODES_HELP}`)
    .action(async (flags, cmd: Command) => done(await commands.observe(cluster(cmd), flags, io)));

  root
    .command('status')
    .description('Per node: agent reachable and ready, policy revision, endpoints, programs attached, map fill, flows stored and lost.')
    .addOption(new Option('-o, --output <format>', 'table or json (the API\'s AgentList)').choices(['table', 'json']).default('table'))
    .addHelpText('after', `
Exit 0 when every agent answers and is ready, 4 when one does not answer, 1 when one is not ready.
${EXIT_CODES_HELP}`)
    .action(async (flags, cmd: Command) => done(await commands.status(cluster(cmd), flags, io)));

  root
    .command('endpoints')
    .description('Pods with their security identity, address, node and the policies that select them for ingress and egress.')
    .option('-n, --namespace <ns>', 'pods of this namespace (repeatable; default: the context\'s namespace)', many)
    .option('-A, --all-namespaces', 'pods of every namespace')
    .addOption(new Option('-o, --output <format>', 'table or json').choices(['table', 'json']).default('table'))
    .addHelpText('after', `
Computed from the cluster's Pods, Namespaces, NetworkPolicies and SecurityIdentities
with the compiler the agents use. "(not isolated)": no policy selects the pod in that
direction, so everything passes there.
${EXIT_CODES_HELP}`)
    .action(async (flags, cmd: Command) => done(await commands.endpoints(cluster(cmd), flags, io)));

  const policy = root.command('policy').description('Policy tools: trace.');
  policy
    .command('trace')
    .description('Would a new connection be allowed, and by which policies and rules? The source pod\'s egress and the destination pod\'s ingress, computed from the cluster\'s objects without sending a packet.')
    .requiredOption('--from <pod|ip|cidr>', 'the source: ns/name (a bare name is in the context\'s namespace), or an IPv4 address or CIDR outside the cluster')
    .requiredOption('--to <pod|ip|cidr>', 'the destination, likewise')
    .requiredOption('--port <n>', 'the destination port')
    .option('--protocol <name>', 'TCP, UDP or SCTP', 'TCP')
    .option('--no-kernel-check', 'do not ask the agents whether their kernel maps agree')
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .addHelpText('after', `
A CIDR is judged for every address in it: the output lists the ranges the policies
tell apart. The agents of the pods' nodes are asked what their kernel maps say of
the same connection; a disagreement is a warning on stderr (the verdict is the
policies').

Examples:
  kubectl palisade policy trace --from shop/web --to db/pg --port 5432
  kubectl palisade policy trace --from shop/web --to 0.0.0.0/0 --port 443 && echo open

Exit 0 when allowed both ways, 1 when denied (the output says where and why).
${EXIT_CODES_HELP}`)
    .action(async (flags, cmd: Command) => done(await commands.policyTrace(cluster(cmd), flags, io)));

  return root;
}

/** Runs the plugin on `argv` (without node and script); resolves to the exit code. */
export async function run(argv: string[], io: commands.Io): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  try {
    await program(io, (c) => (code = c)).parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help ends here too (exit 0); help shown for a missing command is a usage error.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const { exitCode, message } = describe(error);
    io.err(`error: ${message}`);
    return exitCode;
  }
}

function processIo(): commands.Io {
  return {
    out: (text) => void process.stdout.write(text),
    err: (line) => void process.stderr.write(`${line}\n`),
    now: () => Date.now(),
    onInterrupt: (stop) => {
      const on = () => stop();
      process.once('SIGINT', on);
      process.once('SIGTERM', on);
      return () => {
        process.off('SIGINT', on);
        process.off('SIGTERM', on);
      };
    },
  };
}

if (import.meta.main) {
  // `kubectl palisade observe | head` closes the pipe early: that is success.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => process.exit(error.code === 'EPIPE' ? EXIT.OK : EXIT.OTHER));
  process.exitCode = await run(process.argv.slice(2), processIo());
}
