# wpar-init.sh: the constant steps the Corral runtime runs between spawning a WPAR's first process
# and exec'ing the WPAR's command. It is never generated or edited at run time: the command and its
# arguments only ever arrive as positional parameters after "--" and are passed on with "$@", never
# interpreted.
#
#   sh wpar-init.sh [--wait] -- CMD [ARG...]
#
#   --wait            Block until the daemon writes "go" on fd 3. The daemon does so once this
#                     process is in the WPAR's cgroup, so everything CMD runs or forks is confined
#                     from its first instruction. Anything else (EOF because the daemon died or gave
#                     up) exits 125 without running CMD.
#
# Used only where the runtime is not sealed (no bubblewrap) but has a cgroup: a sealed start waits
# in bwrap's own --block-fd instead. Why a shell at all: Node cannot run code in a child between
# fork and exec. Only builtins are used, so the WPAR's PATH does not matter here.

while :; do
  case $1 in
    --wait)
      IFS= read -r verdict <&3 || exit 125
      [ "$verdict" = go ] || exit 125
      exec 3<&-
      shift
      ;;
    --)
      shift
      break
      ;;
    *)
      echo "wpar-init.sh: unknown step '$1'" >&2
      exit 125
      ;;
  esac
done
exec "$@"
