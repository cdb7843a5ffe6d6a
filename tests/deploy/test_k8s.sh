#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s: base, postgres, GPU generations,
# overlays) validate against the Kubernetes API schemas, rendered and
# unrendered (deploy/k8s/validate.py). Negative controls on a copy: a
# misspelled field, a wrong type, a missing required field, a patch whose
# target no resource defines and a patch that breaks its target are each
# reported, so the validator is known to see them.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import kubernetes.client, yaml' 2>/dev/null ||
  { echo "SKIP: python3-kubernetes not installed (deploy/install-deps.sh installs it)"; exit 77; }
V="$ROOT/deploy/k8s/validate.py"
"$PY" "$V" "$ROOT/deploy/k8s" >"$TMP/ok.txt" 2>&1 || fail "manifests invalid: $(cat "$TMP/ok.txt")"
cat "$TMP/ok.txt"
grep -q "overlays/in-cluster-db/kustomization.yaml" "$TMP/ok.txt" && grep -q "overlays/external-db/kustomization.yaml" "$TMP/ok.txt" ||
  fail "overlays not validated"
# Required pieces are there: probes on /healthz and /readyz, scrape annotations, GPU
# requests and product affinity per generation, PDBs, secrets as env.
R=$("$PY" - "$ROOT/deploy/k8s" <<'PY'
import sys, os
sys.path.insert(0, sys.argv[1]); import validate as v
objs = v.render(os.path.join(sys.argv[1], "overlays/external-db"), [])
by = {v.ident(o): o for o in objs}
d = by[("Deployment", "loomd")]["spec"]["template"]
c = d["spec"]["containers"][0]
# failover: two loomd, only the leader ready (/readyz), both alive (/healthz)
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert by[("Deployment", "loomd")]["spec"]["replicas"] >= 2 and ("PodDisruptionBudget", "loomd") in by
assert "--advertise" in c["args"] and {e["name"] for e in c["env"]} >= {"POD_IP"}
assert d["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
assert {e["name"] for e in c["env"]} >= {"LOOM_AUTH_TOKEN", "LOOM_DB"}
for g in ("h100", "a100"):
    t = by[("Deployment", "loom-worker-gpu-" + g)]["spec"]["template"]
    gc = t["spec"]["containers"][0]
    assert gc["resources"]["limits"]["nvidia.com/gpu"] == "1"
    terms = t["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    e = terms[0]["matchExpressions"][0]
    assert e["key"] == "nvidia.com/gpu.product" and all(g.upper() in x for x in e["values"]), e
    pdb = by[("PodDisruptionBudget", "loom-worker-gpu-" + g)]
    assert pdb["spec"]["selector"]["matchLabels"]["loom.dev/gpu-generation"] == g
assert ("PodDisruptionBudget", "loom-worker-cpu") in by
print("ok")
PY
) || fail "content checks: $R"
# Negative controls, each on its own copy, validated in one process.
cases=(
  "misspelled field|s/^          resources:/          resoures:/|base/loomd.yaml|resoures: unknown field of V1Container"
  "wrong type|s/containerPort: 7400/containerPort: \"7400\"/|base/loomd.yaml|containerPort: expected int"
  "missing required field|s/^        - name: loomd\$/        - nam: loomd/|base/loomd.yaml|must not be .None."
  "patch without target|s/name: loom-worker-gpu-h100/name: loom-worker-gpu-h200/|overlays/external-db/kustomization.yaml|which its resources do not define"
  "patch breaking its target|s/replicas: 2/replicas: two/|overlays/external-db/h100-workers.yaml|replicas: expected int"
)
i=0
for c in "${cases[@]}"; do
  IFS='|' read -r name expr file want <<<"$c"
  i=$((i+1)); cp -R "$ROOT/deploy/k8s" "$TMP/bad$i"; sed -i "$expr" "$TMP/bad$i/$file"
done
"$PY" - "$ROOT/deploy/k8s" "$TMP" "$i" >"$TMP/bad.txt" 2>&1 <<'PY'
import contextlib, io, sys
sys.path.insert(0, sys.argv[1]); import validate
for i in range(1, int(sys.argv[3]) + 1):
    with contextlib.redirect_stdout(io.StringIO()):
        errs = validate.run(f"{sys.argv[2]}/bad{i}", use_kubectl=False)
    print(f"== {i}: " + (" || ".join(errs) if errs else "NO ERRORS"))
PY
i=0
for c in "${cases[@]}"; do
  IFS='|' read -r name expr file want <<<"$c"
  i=$((i+1))
  line=$(grep "^== $i: " "$TMP/bad.txt")
  echo "$line" | grep -q "$want" || fail "$name: expected '$want', got: $line $(tail -5 "$TMP/bad.txt")"
  echo "caught: $name"
done
echo "ok: manifests valid; ${#cases[@]} kinds of breakage caught"
