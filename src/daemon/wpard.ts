#!/usr/bin/env node
/**
 * `wpard [--home DIR] [--name NAME] [--listen ADDR:PORT] [--cluster URL[,URL...] [--lease-ttl SEC] [--etcd-ca F [--etcd-cert F --etcd-key F]]]
 * [--extension MODULE]... [--fallback-isolation]`: the daemon, in the foreground.
 * SIGTERM/SIGINT stop every WPAR cleanly (TERM, then KILL; WPARSTOP callouts run) and exit 0.
 * @module
 */
import { parseArgs } from 'node:util';
import { runDaemon } from './run.ts';

const USAGE = `usage: wpard [--home DIR] [--name NAME] [--listen ADDR:PORT] [--extension MODULE]... [--fallback-isolation]
             [--cluster URL[,URL...] [--lease-ttl SEC] [--etcd-ca FILE [--etcd-cert FILE --etcd-key FILE]]]

  --home DIR            the system's home (default: $WPAR_HOME, else ~/.local/state/corral)
  --name NAME           the system's name for its peers (default: the hostname)
  --listen ADDR:PORT    open the peer endpoint (TLS 1.3, mutual authentication) for moves between hosts
  --cluster URL,...     join the cluster kept in the etcd members at these client URLs (needs --listen)
  --lease-ttl SEC       the host's lease in the cluster: lost after SEC without renewal (default 10)
  --etcd-ca FILE        TLS to etcd: the members' CA (the URLs are then https://)
  --etcd-cert FILE      TLS to etcd: this host's client certificate (with --etcd-key)
  --etcd-key FILE       TLS to etcd: its key
  --extension MODULE    load a kernel extension (repeatable)
  --fallback-isolation  give WPARs a process group and rlimits only, even where namespaces work`;

let args;
try {
  args = parseArgs({
    options: {
      home: { type: 'string' },
      name: { type: 'string' },
      listen: { type: 'string' },
      cluster: { type: 'string' },
      'lease-ttl': { type: 'string' },
      'etcd-ca': { type: 'string' },
      'etcd-cert': { type: 'string' },
      'etcd-key': { type: 'string' },
      extension: { type: 'string', multiple: true },
      'fallback-isolation': { type: 'boolean' },
      help: { type: 'boolean', short: '?' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (err) {
  process.stderr.write(`wpard: ${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
const clusterOnly = (['lease-ttl', 'etcd-ca', 'etcd-cert', 'etcd-key'] as const).find((f) => args[f] !== undefined);
if (clusterOnly && args.cluster === undefined) {
  process.stderr.write(`wpard: --${clusterOnly} needs --cluster\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
await runDaemon({
  ...(args.home !== undefined && { home: args.home }),
  ...(args.name !== undefined && { name: args.name }),
  ...(args.listen !== undefined && { listen: args.listen }),
  ...(args.cluster !== undefined && {
    cluster: {
      cluster: args.cluster,
      ...(args['lease-ttl'] !== undefined && { leaseTtl: args['lease-ttl'] }),
      ...(args['etcd-ca'] !== undefined && { etcdCa: args['etcd-ca'] }),
      ...(args['etcd-cert'] !== undefined && { etcdCert: args['etcd-cert'] }),
      ...(args['etcd-key'] !== undefined && { etcdKey: args['etcd-key'] }),
    },
  }),
  extensions: args.extension ?? [],
  fallbackIsolation: args['fallback-isolation'] === true,
});
