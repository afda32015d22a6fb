/**
 * `wpard [--home Directory] [--name Name] [--listen Address:Port] [--extension Module]... [--fallback-isolation] [--http Address:Port]`: the daemon, in the
 * foreground. SIGTERM/SIGINT stop every WPAR cleanly (TERM, then KILL; WPARSTOP callouts run) and
 * exit 0. Its usage text and usage errors read like the commands' (`mkwpar --help`). Run by
 * `wpard.ts`; `npm start` (`start.ts`) parses the same arguments.
 * @module
 */
import { parseArgs } from 'node:util';
import { parseSize, parseWhole } from '../definition/rules.ts';
import { parseHttpAddress, type HttpAddress } from '../console/address.ts';
import type { RunOptions } from './run.ts';

/** `wpard --help`, in the commands' man-page style. */
export const WPARD_USAGE = `Usage: wpard [--home Directory] [--name Name] [--listen Address:Port] [--extension Module]...
             [--fallback-isolation] [--journal-size Size] [--journal-files Count] [--http Address:Port]
             [--cluster URL[,URL...] [--lease-ttl Seconds] [--fence-after Seconds]
              [--etcd-ca File [--etcd-cert File --etcd-key File]]]

Runs the Corral daemon in the foreground: it keeps the workload partitions of one home, runs
their processes and serves the commands on Directory/run/wpard.sock. SIGTERM or Ctrl-C stops
every workload partition (SIGTERM, then SIGKILL) and exits.

Flags:
  --home Directory
                  The system's home (else $WPAR_HOME, else $XDG_STATE_HOME/corral, by default
                  ~/.local/state/corral). One daemon per home.
  --name Name     The system's name for its peers (default: the machine's hostname).
  --listen Address:Port
                  Opens the peer endpoint there (TLS 1.3, mutually authenticated) for moves
                  between hosts; nothing listens on a network port without it.
  --cluster URL[,URL...]
                  Joins the cluster kept in the etcd members at these client URLs (needs
                  --listen; docs/cluster.md).
  --lease-ttl Seconds
                  The host's lease in the cluster: lost after Seconds without renewal (default 10).
  --fence-after Seconds
                  Kills this host's --failover workload partitions after Seconds without a lease
                  renewal, even if the daemon is stopped (default: half the lease TTL; less than it).
  --etcd-ca File, --etcd-cert File, --etcd-key File
                  TLS to etcd: the members' CA (the URLs are then https://), and this host's
                  client certificate and key.
  --extension Module
                  Loads a kernel extension (a module whose default export receives its own
                  kernel owner); may be repeated.
  --fallback-isolation
                  Gives workload partitions a process group and rlimits only, even where
                  namespaces and cgroups work.
  --journal-size Size
                  Bytes of Directory/events.log before it is rotated to events.log.1 (with K,
                  M, G; default 16M).
  --journal-files Count
                  How many events.log files to keep, the current one included (default 4).
  --http Address:Port
                  Serves the web console and /metrics there (Address defaults to 127.0.0.1:
                  --http :8080); open the address it prints, with the token from
                  Directory/console.token.
  -?, --help      Prints this text.
`;

/**
 * Parses wpard's arguments (`npm start -- ARGS` takes the same); exits 2 with one line for a usage
 * error, 0 after printing the usage for `--help`.
 */
export function parseWpardArgs(argv: readonly string[]): RunOptions {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      options: {
        home: { type: 'string' },
        name: { type: 'string' },
        listen: { type: 'string' },
        cluster: { type: 'string' },
        'lease-ttl': { type: 'string' },
        'fence-after': { type: 'string' },
        'etcd-ca': { type: 'string' },
        'etcd-cert': { type: 'string' },
        'etcd-key': { type: 'string' },
        extension: { type: 'string', multiple: true },
        'fallback-isolation': { type: 'boolean' },
        'journal-size': { type: 'string' },
        'journal-files': { type: 'string' },
        http: { type: 'string' },
        help: { type: 'boolean', short: '?' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--bogus'. To specify a positional argument, ...": keep the first sentence.
    const why = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '');
    return usageError(`${why.charAt(0).toLowerCase()}${why.slice(1)}`);
  }
  if (args.help) {
    process.stdout.write(WPARD_USAGE);
    process.exit(0);
  }
  const journalBytes = args['journal-size'] === undefined ? undefined : parseSize(args['journal-size']);
  if (journalBytes !== undefined && !(journalBytes >= 4096)) usageError(`bad --journal-size value ${JSON.stringify(args['journal-size'])}: expected a size of at least 4K (e.g. 16M)`);
  const journalFiles = args['journal-files'] === undefined ? undefined : parseWhole(args['journal-files']);
  if (journalFiles !== undefined && !(journalFiles >= 1)) usageError(`bad --journal-files value ${JSON.stringify(args['journal-files'])}: expected a whole number of at least 1`);
  const clusterOnly = (['lease-ttl', 'fence-after', 'etcd-ca', 'etcd-cert', 'etcd-key'] as const).find((f) => args[f] !== undefined);
  if (clusterOnly && args.cluster === undefined) usageError(`--${clusterOnly} needs --cluster`);
  let http: HttpAddress | undefined;
  try {
    if (args.http !== undefined) http = parseHttpAddress(args.http);
  } catch (err) {
    process.stderr.write(`wpard: ${(err as Error).message} (EINVAL)\n`);
    process.exit(2);
  }
  return {
    ...(args.home !== undefined && { home: args.home }),
    ...(http && { http }),
    ...(args.name !== undefined && { name: args.name }),
    ...(args.listen !== undefined && { listen: args.listen }),
    ...(args.cluster !== undefined && {
      cluster: {
        cluster: args.cluster,
        ...(args['lease-ttl'] !== undefined && { leaseTtl: args['lease-ttl'] }),
        ...(args['fence-after'] !== undefined && { fenceAfter: args['fence-after'] }),
        ...(args['etcd-ca'] !== undefined && { etcdCa: args['etcd-ca'] }),
        ...(args['etcd-cert'] !== undefined && { etcdCert: args['etcd-cert'] }),
        ...(args['etcd-key'] !== undefined && { etcdKey: args['etcd-key'] }),
      },
    }),
    extensions: args.extension ?? [],
    fallbackIsolation: args['fallback-isolation'] === true,
    journal: { ...(journalBytes !== undefined && { maxBytes: journalBytes }), ...(journalFiles !== undefined && { files: journalFiles }) },
  };
}

function usageError(message: string): never {
  process.stderr.write(`wpard: ${message}; see 'wpard --help'\n`);
  process.exit(2);
}
