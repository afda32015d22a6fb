#!/bin/sh
# Installs the system tools the WPAR runtime uses when it can isolate WPARs (Linux, root):
#   unshare, prlimit (util-linux)  new namespaces; rlimits in the fallback
#   tini                           PID 1 inside a WPAR: forwards signals, reaps zombies
#   procps                         ps, used by tests to look inside a WPAR
# With --tests, also what the tests need beyond that (etcd for the cluster tests; see below).
# Idempotent: installs only what is missing. Not root, or not Debian/apt: says what it skipped
# and exits 0, because the runtime then falls back to a process group and rlimits.
set -eu

need=""
command -v unshare >/dev/null 2>&1 || need="$need util-linux"
command -v prlimit >/dev/null 2>&1 || case "$need" in *util-linux*) ;; *) need="$need util-linux" ;; esac
command -v tini >/dev/null 2>&1 || need="$need tini"
command -v ps >/dev/null 2>&1 || need="$need procps"

# Mobility (docs/mobility.md): openssl makes each home's identity (key and self-signed
# certificate) at the daemon's first start; iproute2's `ip netns` makes the test hosts of the
# move tests (network namespaces joined by a bridge).
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v ip >/dev/null 2>&1 || need="$need iproute2"

# Clusters (docs/cluster.md, C8), only with --tests (npm test passes it): the cluster tests start
# real etcd v3 members themselves (test/support/etcd.ts), from Debian's etcd-server (3.4). It is
# never started as a service here: a test runs each member on loopback or in a test host's
# network namespace, with a temporary data directory, and removes it after.
for arg in "$@"; do
  if [ "$arg" = --tests ]; then
    command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
  fi
done

if [ -z "$need" ]; then
  echo "install-system-deps: nothing to do (unshare, prlimit, tini, ps, openssl, ip and, with --tests, etcd are present)"
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
