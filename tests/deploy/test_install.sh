#!/usr/bin/env bash
# `make install DESTDIR=... PREFIX=/opt/loom` produces a tree from which
# loomd, a CPU worker and the CLI run a workflow, started from their
# installed example configs, from a directory that is neither the source
# tree nor the install: the commands find share/loom next to their binary
# (`loom plan` without --catalog uses the installed catalog). loomd and the
# worker speak systemd's readiness protocol (READY=1 on $NOTIFY_SOCKET, what
# Type=notify units wait for) and STOPPING=1 on SIGTERM.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
DEST="$TMP/dest"
PREFIX=/opt/loom
env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" install DESTDIR="$DEST" PREFIX="$PREFIX" \
  >"$TMP/install.log" 2>&1 || fail "make install failed: $(tail -20 "$TMP/install.log")"
T="$DEST$PREFIX"
GPU=; [ -x "$BUILD/bin/loom-worker-gpu" ] && GPU=bin/loom-worker-gpu   # built with CUDA only
for f in bin/loomd bin/loom bin/loom-worker-cpu $GPU bin/loom-worker-npu \
         share/loom/catalog.yaml share/loom/sql/001_init.sql share/loom/sql/views/views.sql \
         etc/loom/loomd.conf etc/loom/worker-cpu.conf etc/loom/loomd.env \
         lib/systemd/system/loomd.service lib/systemd/system/loom-worker@.service; do
  [ -e "$T/$f" ] || fail "make install did not install $f"
done
[ "$(stat -c %a "$T/etc/loom/loomd.env")" = 600 ] || fail "loomd.env (secrets) should be mode 600"
grep -q "^ExecStart=$PREFIX/bin/loomd --config $PREFIX/etc/loom/loomd.conf" \
  "$T/lib/systemd/system/loomd.service" || fail "unit paths not filled in"
# A user edit of a config survives a second install.
echo "# edited" >>"$T/etc/loom/loomd.conf"
env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" install DESTDIR="$DEST" PREFIX="$PREFIX" \
  >>"$TMP/install.log" 2>&1 || fail "second make install failed"
grep -q "^# edited" "$T/etc/loom/loomd.conf" || fail "reinstall overwrote an edited config"

# Run everything from an unrelated directory, with the source tree hidden
# from the data lookup (no LOOM_DATA_DIR, cwd elsewhere).
unset LOOM_DATA_DIR
WORK="$TMP/elsewhere"; mkdir -p "$WORK"; cd "$WORK" || exit 1
cat >hello.yaml <<'YAML'
version: 1
name: installed-hello
sla:
  latency_ms: 20000
inputs:
  who: string
steps:
  greet:
    op: tool.exec
    argv: [sh, -c, "echo hello $0 from $(pwd)", "${inputs.who}"]
  shout:
    op: tool.exec
    argv: [tr, a-z, A-Z]
    stdin: ${steps.greet.output}
outputs:
  shout: ${steps.shout.output}
YAML
"$T/bin/loom" --version | grep -q '^loom [0-9]' || fail "loom --version"
"$T/bin/loom" plan hello.yaml >"$TMP/plan.txt" 2>&1 || fail "loom plan without --catalog: $(cat "$TMP/plan.txt")"
grep -q "on $T/share/loom/catalog.yaml" "$TMP/plan.txt" || fail "loom plan did not use the installed catalog: $(head -3 "$TMP/plan.txt")"

python3 "$ROOT/tests/deploy/notify_listen.py" "$TMP/notify.sock" "$TMP/notify.txt" &
PIDS+=($!)
for _ in $(seq 100); do [ -f "$TMP/notify.txt.bound" ] && break; sleep 0.05; done
cp=$(free_port); wp=$(free_port); hp=$(free_port)
export LOOM_ENDPOINT="tcp://127.0.0.1:$cp"
# Options on the command line after --config override the file's.
NOTIFY_SOCKET="$TMP/notify.sock" "$T/bin/loomd" --config "$T/etc/loom/loomd.conf" \
  --client "$LOOM_ENDPOINT" --workers "tcp://127.0.0.1:$wp" --http "127.0.0.1:$hp" \
  >"$TMP/loomd.log" 2>&1 &
LOOMD_PID=$!; PIDS+=($LOOMD_PID)
for _ in $(seq 200); do grep -q "READY=1" "$TMP/notify.txt" 2>/dev/null && break; sleep 0.05; done
grep -q "READY=1 | STATUS=serving clients on $LOOM_ENDPOINT" "$TMP/notify.txt" ||
  fail "loomd sent no READY=1: $(cat "$TMP/notify.txt")"
curl -sf "http://127.0.0.1:$hp/healthz" >/dev/null || fail "/healthz of the installed loomd"
NOTIFY_SOCKET="$TMP/notify.sock" "$T/bin/loom-worker-cpu" --config "$T/etc/loom/worker-cpu.conf" \
  --endpoint "tcp://127.0.0.1:$wp" --id installed-cpu >"$TMP/worker.log" 2>&1 &
WPID=$!; PIDS+=($WPID)
for _ in $(seq 300); do grep -q "registered as installed-cpu" "$TMP/notify.txt" && break; sleep 0.05; done
grep -q "READY=1 | STATUS=registered as installed-cpu" "$TMP/notify.txt" ||
  fail "worker sent no READY=1 after registering: $(cat "$TMP/notify.txt")"
"$T/bin/loom" run hello.yaml --input who=loom --json >"$TMP/run.json" 2>"$TMP/run.log" ||
  fail "run from the installed tree: $(cat "$TMP/run.log" "$TMP/run.json")"
python3 - "$TMP/run.json" "$WORK" <<'PY' || fail "outputs: $(cat "$TMP/run.json")"
import json, os, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert o["shout"].strip() == ("HELLO LOOM FROM " + os.path.realpath(sys.argv[2])).upper(), o
PY
kill -TERM $WPID $LOOMD_PID
for _ in $(seq 200); do alive $LOOMD_PID || alive $WPID || break; sleep 0.05; done
alive $LOOMD_PID && fail "loomd did not stop on SIGTERM"
[ "$(grep -c '^STOPPING=1' "$TMP/notify.txt")" = 2 ] || fail "expected STOPPING=1 from both: $(cat "$TMP/notify.txt")"
echo "ok: installed tree under $T ran a workflow from $WORK; notify: $(tr '\n' ';' <"$TMP/notify.txt")"
