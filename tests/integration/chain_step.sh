# One step of tests/integration/workflows/chain_exec.yaml:
# chain_step.sh DIR N FAIL_AT HOLD PREV
echo "s$2 $PPID" >> "$1/effects"
if [ "$2" = "$4" ]; then # wait for the test's go file (30 s at most)
  i=0; while [ ! -f "$1/go" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
fi
[ "$2" = "$3" ] && { echo "step $2 fails as asked" >&2; exit 3; }
echo "s$2-done" >> "$1/effects"
echo $(($5 + 1))
