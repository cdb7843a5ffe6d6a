#!/usr/bin/env bash
# deploy/Containerfile's runtime stage installs a Debian package for every
# shared library the installed binaries link (their NEEDED entries, resolved
# here and mapped to packages with dpkg -S), so the image's binaries can
# start. Libraries of the base image (libc6, libgcc-s1, libstdc++6) and of
# the CUDA toolkit (not in the image; see the Containerfile) are exempt, and
# so are the sanitizer runtimes of `make asan` builds.
# Does not build the image: no container runtime or base image here.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
CF="$ROOT/deploy/Containerfile"
pkgs=$(sed -n '/# runtime-packages/,/rm -rf/p' "$CF" | grep -oE '^ +[a-z0-9][a-z0-9.+-]+ \\$' | tr -d ' \\')
[ -n "$pkgs" ] || fail "no runtime package list found in $CF"
base="libc6 libgcc-s1 libstdc++6"
# NEEDED libraries of every built binary, resolved to files (unique).
declare -A where
for b in loomd loom loom-worker-cpu loom-worker-npu loom-worker-gpu; do
  [ -x "$BIN/$b" ] || continue
  resolved=$(ldd "$BIN/$b")
  for lib in $(readelf -d "$BIN/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    # (sanitizer runtimes: `make asan` builds link them; images never ship those)
    case $lib in libcuda*|libcublas*|libcudart*|libasan.*|libubsan.*|liblsan.*|libtsan.*) continue ;; esac
    path=$(echo "$resolved" | awk -v l="$lib" '$1 == l {print $3}')
    [ -n "$path" ] || fail "$b: $lib not found by ldd"
    where[$lib]=$(readlink -f "$path")
  done
done
# One dpkg -S for all (it is slow); merged /usr: dpkg may know /lib/... only.
queries=()
for lib in "${!where[@]}"; do p=${where[$lib]}; queries+=("$p" "/lib/${p#/usr/lib/}"); done
owners=$(dpkg -S "${queries[@]}" 2>/dev/null)
missing=()
for lib in "${!where[@]}"; do
  p=${where[$lib]}
  pkg=$(echo "$owners" | awk -v a="$p" -v b="/lib/${p#/usr/lib/}" -F': ' '$2 == a || $2 == b {print $1; exit}' | cut -d: -f1)
  [ -n "$pkg" ] || fail "no Debian package owns $p ($lib)"
  case " $base $(echo $pkgs) " in *" $pkg "*) ;; *) missing+=("$pkg ($lib)") ;; esac
done
[ ${#missing[@]} -eq 0 ] || fail "Containerfile runtime stage lacks: ${missing[*]}"
echo "ok: runtime packages cover every linked library (${#where[@]}): $(echo $pkgs)"
