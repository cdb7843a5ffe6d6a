#!/usr/bin/env bash
# The systemd units as `make install` renders them pass `systemd-analyze
# verify` with no complaint at all (unknown keys, bad values, missing
# binaries, unknown specifiers), for loomd.service and every instance of
# loom-worker@.service (cpu, gpu, npu). A copy with a misspelled key must be
# flagged, so the check is known to see problems. Skips (77) with a message
# where systemd-analyze is missing or cannot verify offline here.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed (deploy/install-deps.sh installs systemd)"; exit 77; }
P="$TMP/prefix"
env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" install PREFIX="$P" >"$TMP/install.log" 2>&1 ||
  fail "make install failed: $(tail -20 "$TMP/install.log")"
U="$P/lib/systemd/system"
verify() { systemd-analyze verify --man=no "$@" 2>&1; }
# Can it verify offline at all here? A minimal valid unit must pass cleanly.
printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$TMP/probe.service"
out=$(verify "$TMP/probe.service") || { echo "SKIP: systemd-analyze verify cannot run here: $out"; exit 77; }
for unit in loomd.service loom-worker@cpu.service loom-worker@gpu.service loom-worker@npu.service; do
  case $unit in *@gpu*) [ -x "$P/bin/loom-worker-gpu" ] || { echo "not verifying $unit: loom-worker-gpu not built (no CUDA toolkit)"; continue; } ;; esac
  out=$(verify "$U/$unit"); rc=$?
  [ $rc -eq 0 ] && [ -z "$out" ] || fail "$unit: systemd-analyze verify (exit $rc): $out"
  echo "verified $unit"
done
grep -q '^Type=notify' "$U/loomd.service" && grep -q '^Type=notify' "$U/loom-worker@.service" ||
  fail "units should be Type=notify"
# Negative control: a misspelled hardening key is reported.
sed 's/^ProtectSystem=/ProtectSystme=/' "$U/loomd.service" >"$U/loomd-typo.service"
out=$(verify "$U/loomd-typo.service")
echo "$out" | grep -q "Unknown key.*ProtectSystme" || fail "a misspelled key went unnoticed: $out"
echo "ok: units verify cleanly; a misspelled key is caught"
