#!/bin/sh
# Installs the system tools the WPAR runtime uses when it can seal WPARs (Linux, root):
#   bwrap (bubblewrap)             the namespaces and the mount layout of a sealed WPAR
#   setpriv, unshare, nsenter,     dropping to the WPAR's unprivileged uid; rlimits in the fallback;
#   prlimit (util-linux)           entering a WPAR's network namespace
#   ip (iproute2)                  the host bridge and veth pairs of mkwpar -N address=...
#   sysctl, ps (procps)            low ports in a WPAR's own network namespace; tests look inside WPARs
#   openssl                        each home's identity (key and certificate) for the peer endpoint
# With --cluster (npm run demo:cluster), also etcd-server. With --tests (npm test), also what the tests drive:
#   chromium                       the web console's browser tests (driven by playwright-core)
#   redis-server                   a real program checkpointed, restarted and moved in the tests
#   (ip netns from iproute2 makes the tests' hosts)
#   etcd-server                    the cluster tests' etcd (started by the tests themselves)
# Idempotent: installs only what is missing. Not root, or not Debian/apt: says what it skipped
# and exits 0, because the runtime then falls back to a process group and rlimits (and says so).
set -eu

need=""
add() { case " $need " in *" $1 "*) ;; *) need="$need $1" ;; esac; }
command -v bwrap >/dev/null 2>&1 || add bubblewrap
for tool in unshare prlimit setpriv nsenter; do command -v "$tool" >/dev/null 2>&1 || add util-linux; done
command -v ip >/dev/null 2>&1 || add iproute2
for tool in ps sysctl; do command -v "$tool" >/dev/null 2>&1 || add procps; done

if [ "${1:-}" = --tests ]; then
  # The web console's browser tests (issue 10): Debian's Chromium at /usr/bin/chromium, driven by
  # playwright-core. Never a browser download; installed only if missing.
  [ -x /usr/bin/chromium ] || add chromium
  command -v redis-server >/dev/null 2>&1 || add redis-server
fi

# Mobility (docs/mobility.md): openssl makes each home's identity (key and self-signed
# certificate) at the daemon's first start.
command -v openssl >/dev/null 2>&1 || add openssl

# Clusters (docs/cluster.md, C8), only with --tests (npm test passes it): the cluster tests start
# real etcd v3 members themselves (test/support/etcd.ts), from Debian's etcd-server (3.4). It is
# never started as a service here: a test runs each member on loopback or in a test host's
# network namespace, with a temporary data directory, and removes it after.
# --cluster (npm run demo:cluster) installs etcd-server alone, for the cluster demo.
for arg in "$@"; do
  if [ "$arg" = --tests ] || [ "$arg" = --cluster ]; then
    command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
  fi
done

if [ -z "$need" ]; then
  echo "install-system-deps: nothing to do (everything is present)"
  exit 0
fi
if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: skipped:$need (not a Debian-like Linux; the runtime will use its fallback)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: skipped:$need (not root; run as root to install them)"
  exit 0
fi

echo "install-system-deps: installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # $need is a list of package names
apt-get install -y --no-install-recommends $need
