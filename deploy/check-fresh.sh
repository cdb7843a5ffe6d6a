#!/usr/bin/env bash
# check-fresh.sh — `make check-fresh` (not part of `make test` or CI): proves
# that a new user's first commands work on a fresh Debian 12 machine.
#
# 1. debootstrap a minimal Debian 12 (bookworm) root with only `make` added
#    (what a user types `make demo` with) into FRESH_ROOT;
# 2. copy a clean clone of this repository's committed HEAD into it;
# 3. inside a private mount + PID namespace (so nothing leaks: mounts and any
#    stray daemon die with it), chroot there and run each goal of
#    FRESH_GOALS as ONE make invocation (`make demo`, then `make test`), with
#    /proc, /sys and /dev mounted; the build installs every package itself
#    (deploy/install-deps.sh) from the Debian archive, PostgreSQL runs as the
#    `postgres` user the package creates;
# 4. print how long each step took, and remove the root (FRESH_KEEP=1 keeps it).
#
# Needs root (debootstrap, chroot, mounts) and the Debian archive (FRESH_MIRROR).
# Variables: FRESH_ROOT (default /var/tmp/loom-fresh), FRESH_MIRROR
# (http://deb.debian.org/debian), FRESH_GOALS ("demo test"), FRESH_JOBS (2),
# FRESH_KEEP (0), FRESH_REV (HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
ROOT=${FRESH_ROOT:-/var/tmp/loom-fresh}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
GOALS=${FRESH_GOALS:-demo test}
JOBS=${FRESH_JOBS:-2}
REV=$(git rev-parse "${FRESH_REV:-HEAD}")

case "${1:-}" in -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ "$(id -u)" = 0 ] || { echo "check-fresh: needs root (debootstrap, chroot): sudo make check-fresh" >&2; exit 2; }
case "$ROOT" in /|/usr|/var|/home|/root|/tmp|"") echo "check-fresh: refusing FRESH_ROOT=$ROOT" >&2; exit 2 ;; esac
if ! command -v debootstrap >/dev/null; then
  echo "check-fresh: installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

now() { date +%s; }
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
TIMES=()
T0=$(now)

# A root left by an interrupted run: its mounts lived in a namespace that is
# gone, so removing it cannot reach the host's /dev or /proc.
rm -rf "$ROOT"
mkdir -p "$ROOT"
echo "== debootstrap bookworm (minbase + make) into $ROOT from $MIRROR"
t=$(now)
debootstrap --variant=minbase --include=make bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
  { tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
TIMES+=("debootstrap: $(mmss $(($(now) - t)))")
# The suites a Debian 12 installation lists; no daemon may start from a
# package's postinst inside the chroot (policy-rc.d, as in container images).
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Like resolv.conf, the host's network: certificate authorities added
# locally (e.g. a TLS-intercepting egress proxy's, as on the shared VM,
# where npm got SELF_SIGNED_CERT_IN_CHAIN without it) are trusted inside
# too; the ca-certificates package adds them to the store when
# install-deps.sh installs it.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
fi

echo "== clean clone of ${REV:0:7} into /root/loom"
git clone -q --no-hardlinks "$SRC" "$ROOT/root/loom"
git -C "$ROOT/root/loom" checkout -q --detach "$REV"

ok=1
for goal in $GOALS; do
  echo "== chroot: make -j$JOBS $goal (log: $ROOT.$goal.log)"
  t=$(now)
  # Private mounts and PIDs: /proc is this namespace's, /dev and /sys are bind
  # mounts that vanish with it, and every process left behind is killed when
  # the namespace's first process exits.
  if unshare --mount --pid --fork --mount-proc="$ROOT/proc" bash -c '
      set -e
      # the root a mount point of its own, as on a machine: `ip netns exec`
      # (integ_multihost) remounts / and fails on a plain directory
      mount --rbind "$1" "$1"  # recursive: keeps the /proc unshare mounted
      mount --rbind /dev "$1/dev"
      mount -t sysfs sysfs "$1/sys"
      exec chroot "$1" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "cd /root/loom && make -j$2 $3"' _ "$ROOT" "$JOBS" "$goal" >"$ROOT.$goal.log" 2>&1; then
    TIMES+=("make $goal: $(mmss $(($(now) - t)))")
    tail -3 "$ROOT.$goal.log"
  else
    TIMES+=("make $goal: FAILED after $(mmss $(($(now) - t)))")
    tail -40 "$ROOT.$goal.log" >&2
    ok=0
    break
  fi
done

echo
echo "== check-fresh $([ $ok = 1 ] && echo passed || echo FAILED) at ${REV:0:7} on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for x in "${TIMES[@]}"; do echo "   $x"; done
echo "   total: $(mmss $(($(now) - T0)))"
[ "${FRESH_KEEP:-0}" = 1 ] || rm -rf "$ROOT"
[ $ok = 1 ]
