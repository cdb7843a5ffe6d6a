#!/usr/bin/python3
"""validate.py [--no-kubectl] [DIR] — checks Loom's Kubernetes manifests offline.

Every object in every YAML file under DIR (default: this folder) is checked
against the Kubernetes API schema as generated into the official Python
client (Debian's python3-kubernetes: one model class per API type with its
fields, their types and the required ones): unknown or misspelled fields,
wrong types (a string where an integer belongs) and missing required fields
are errors, reported as FILE: KIND/NAME: path.to.field: what.

Each kustomization.yaml is checked too: its keys, that every resource and
patch file exists, that every patch names an object (kind and name) that
the kustomization's resources define. Then each kustomization is rendered
(resources, namespace, namePrefix/nameSuffix, labels, images, strategic
merge patches by the Kubernetes merge keys) and the result validated
again: a patch that would break an object is caught as well. Unless
--no-kubectl is given, where
`kubectl` (or `kustomize`) is installed, its rendering is validated too and
must equal ours object for object.

Exit status 0 when everything is valid, 1 otherwise; prints one line per
file or rendering and a summary.
"""
import copy
import os
import re
import shutil
import subprocess
import sys

import yaml
import kubernetes.client as k8s

# apiVersion, kind -> model class of the Python client. Only what Loom's
# manifests use; anything else is an error ("no schema"), not a pass.
MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}
# Strategic merge patch: lists merged item by item on these keys (the
# patchMergeKey of the Kubernetes types); any other list is replaced.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
    "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name",
    "volumeClaimTemplates": None,
}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches", "namespace", "namePrefix",
                      "nameSuffix", "labels", "images", "commonAnnotations"}
PRIMITIVES = {"str": str, "int": int, "float": (int, float), "bool": bool}


def check(value, typ, path, errors):
    """Checks value against the client's type string typ."""
    if typ == "object":                    # IntOrString, Quantity, RawExtension
        return
    if typ in ("datetime", "date"):
        if not isinstance(value, str):
            errors.append(f"{path}: expected a timestamp string")
        return
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ != "bool" and isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: expected {typ}, got {type(value).__name__} {value!r}")
        return
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping")
            return
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append(f"{path}: key {k!r} is not a string")
            check(v, m.group(1), f"{path}.{k}", errors)
        return
    cls = getattr(k8s, typ, None)
    if cls is None:
        errors.append(f"{path}: no schema for type {typ}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {typ} mapping, got {type(value).__name__}")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    kwargs = {}
    for k, v in value.items():
        attr = by_json.get(k)
        if attr is None:
            errors.append(f"{path}.{k}: unknown field of {typ}")
            continue
        check(v, cls.openapi_types[attr], f"{path}.{k}", errors)
        kwargs[attr] = v
    try:                                   # the model's setters reject missing required fields
        cls(**kwargs)
    except (ValueError, TypeError) as e:
        errors.append(f"{path}: {typ}: {e}")


def validate_object(obj, where, errors):
    if not isinstance(obj, dict):
        errors.append(f"{where}: not a mapping")
        return
    api, kind = obj.get("apiVersion"), obj.get("kind")
    name = (obj.get("metadata") or {}).get("name", "?")
    model = MODELS.get((api, kind))
    if model is None:
        errors.append(f"{where}: {api}/{kind} {name}: no schema known for this apiVersion/kind")
        return
    errs = []
    check(obj, model, kind, errs)
    if not (obj.get("metadata") or {}).get("name"):
        errs.append(f"{kind}.metadata.name: required")
    errors.extend(f"{where}: {kind}/{name}: {e}" for e in errs)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---- kustomize, the subset Loom uses ------------------------------------------

def smp(base, patch):
    """Strategic merge patch of patch onto base (both plain YAML values)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif k in out and isinstance(v, list) and isinstance(out[k], list) and MERGE_KEYS.get(k):
            key = MERGE_KEYS[k]
            merged = copy.deepcopy(out[k])
            for item in v:
                idx = next((i for i, b in enumerate(merged)
                            if isinstance(b, dict) and isinstance(item, dict) and b.get(key) == item.get(key)), None)
                if idx is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[idx] = smp(merged[idx], item)
            out[k] = merged
        elif k in out and isinstance(v, dict):
            out[k] = smp(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def ident(o):
    return (o.get("kind"), (o.get("metadata") or {}).get("name"))


def add_labels(o, pairs, selectors):
    o.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    spec = o.get("spec") or {}
    if not selectors:
        return
    if o.get("kind") == "Service" and "selector" in spec:
        spec["selector"].update(pairs)
    if isinstance(spec.get("selector"), dict) and "matchLabels" in spec["selector"]:
        spec["selector"]["matchLabels"].update(pairs)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def set_images(o, images):
    pod = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, tag = c.get("image", "").partition(":")
        for im in images:
            if im.get("name") == name:
                c["image"] = im.get("newName", name) + ":" + str(im.get("newTag", tag or "latest"))


def render(kdir, errors, seen=()):
    """Renders the kustomization in kdir; returns its objects (checks as it goes)."""
    kfile = os.path.join(kdir, "kustomization.yaml")
    if kdir in seen:
        errors.append(f"{kfile}: resource cycle")
        return []
    docs = load_docs(kfile)
    k = docs[0] if docs else {}
    for key in k:
        if key not in KUSTOMIZATION_KEYS:
            errors.append(f"{kfile}: unknown or unsupported key '{key}'")
    if k.get("kind") != "Kustomization" or not str(k.get("apiVersion", "")).startswith("kustomize.config.k8s.io/"):
        errors.append(f"{kfile}: not a kustomize.config.k8s.io Kustomization")
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(kdir, r))
        if os.path.isdir(p):
            if not os.path.exists(os.path.join(p, "kustomization.yaml")):
                errors.append(f"{kfile}: resource {r}: a folder without kustomization.yaml")
                continue
            objs += render(p, errors, seen + (kdir,))
        elif os.path.isfile(p):
            objs += load_docs(p)
        else:
            errors.append(f"{kfile}: resource {r} does not exist")
    ids = [ident(o) for o in objs]
    for i in set(ids):
        if ids.count(i) > 1:
            errors.append(f"{kfile}: {i[0]}/{i[1]} defined {ids.count(i)} times")
    for p in k.get("patches", []):
        path = os.path.join(kdir, p.get("path", ""))
        if "path" not in p or not os.path.isfile(path):
            errors.append(f"{kfile}: patch {p}: no such file")
            continue
        for patch in load_docs(path):
            tgt = p.get("target") or {}
            want = (tgt.get("kind", patch.get("kind")), tgt.get("name", (patch.get("metadata") or {}).get("name")))
            if patch.get("kind") != want[0]:
                errors.append(f"{path}: patch kind {patch.get('kind')} does not match its target {want[0]}")
            hits = [o for o in objs if ident(o) == want]
            if not hits:
                errors.append(f"{kfile}: patch {p['path']} targets {want[0]}/{want[1]}, which its resources do not define")
            for o in hits:
                patched = smp(o, {kk: vv for kk, vv in patch.items() if kk != "metadata"})
                objs[objs.index(o)] = patched
    pre, suf = k.get("namePrefix", ""), k.get("nameSuffix", "")
    for o in objs:
        md = o.setdefault("metadata", {})
        if pre or suf:
            md["name"] = pre + md.get("name", "") + suf
        if k.get("namespace") and o.get("kind") != "Namespace":
            md["namespace"] = k["namespace"]
        for lab in k.get("labels", []):
            add_labels(o, lab.get("pairs", {}), lab.get("includeSelectors", False))
        if k.get("commonAnnotations"):
            md.setdefault("annotations", {}).update(k["commonAnnotations"])
        set_images(o, k.get("images", []))
    return objs


def run(root, use_kubectl=True):
    """Validates every manifest and kustomization under root; prints a line
    per kustomization and returns the list of errors."""
    errors, nfiles, nobjs, nkust = [], 0, 0, 0
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith((".yaml", ".yml")))
    kdirs = [os.path.dirname(p) for p in files if os.path.basename(p) == "kustomization.yaml"]
    patches = set()  # partial objects: validated once applied (rendering below)
    for d in kdirs:
        for pp in (load_docs(os.path.join(d, "kustomization.yaml")) or [{}])[0].get("patches") or []:
            patches.add(os.path.normpath(os.path.join(d, pp.get("path", ""))))
    for p in files:
        if os.path.basename(p) == "kustomization.yaml" or p in patches:
            continue
        rel = os.path.relpath(p, root)
        nfiles += 1
        try:
            docs = load_docs(p)
        except yaml.YAMLError as e:
            errors.append(f"{rel}: YAML: {e}")
            continue
        for doc in docs:
            validate_object(doc, rel, errors)
            nobjs += 1
    kubectl = use_kubectl and (shutil.which("kubectl") or shutil.which("kustomize"))
    for d in kdirs:
        rel = os.path.relpath(d, root)
        errs = []
        objs = render(d, errs)
        for o in objs:
            validate_object(o, f"{rel} (rendered)", errs)
        nkust += 1
        if kubectl:
            cmd = [kubectl, "kustomize", d] if kubectl.endswith("kubectl") else [kubectl, "build", d]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                errs.append(f"{rel}: {' '.join(cmd[:2])}: {r.stderr.strip()}")
            else:
                theirs = [o for o in yaml.safe_load_all(r.stdout) if o]
                for o in theirs:
                    validate_object(o, f"{rel} ({os.path.basename(cmd[0])} kustomize)", errs)
                mine = {ident(o): o for o in objs}
                for o in theirs:
                    if mine.get(ident(o)) != o:
                        errs.append(f"{rel}: {'/'.join(map(str, ident(o)))}: kustomize renders it differently from validate.py")
                if len(theirs) != len(objs):
                    errs.append(f"{rel}: kustomize renders {len(theirs)} objects, validate.py {len(objs)}")
        print(f"{'ok  ' if not errs else 'FAIL'} {rel}/kustomization.yaml: {len(objs)} objects rendered"
              + (f", checked against {os.path.basename(kubectl)} kustomize" if kubectl else ""))
        errors += errs
    for e in errors:
        print("  " + e)
    print(f"{nfiles} manifest files ({nobjs} objects), {nkust} kustomizations: "
          f"{'valid' if not errors else str(len(errors)) + ' errors'}")
    return errors


def main():
    args = [a for a in sys.argv[1:] if a != "--no-kubectl"]
    root = os.path.abspath(args[0] if args else os.path.dirname(os.path.abspath(__file__)))
    return 1 if run(root, "--no-kubectl" not in sys.argv) else 0


if __name__ == "__main__":
    sys.exit(main())
