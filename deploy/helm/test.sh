#!/usr/bin/env bash
# The Helm chart (deploy/helm/blindmatch), as far as no cluster is needed
# (.ci/run): `helm lint --strict`, then `helm template` with the default
# values and with test-values.yaml, each as an install and as an upgrade,
# every rendering checked by check-rendered.py against the real binary's
# --help (every flag and BLINDMATCH_* variable the chart passes is one the
# subcommand takes), the probes, the user, the memory sizing rule and the
# disruption budget. helm is built from the Go module proxy into the CI
# cache once (pinned). Exit status 2: helm or PyYAML cannot be had.
# Needs the release binary (cargo build --release).
set -eEuo pipefail
name=helm
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
server="$bin/blindmatch-server"

HELM=helm.sh/helm/v4/cmd/helm@v4.3.2
helm="$cache/deploy-tools/helm-v4.3.2/helm"
if [ ! -x "$helm" ]; then
  command -v go >/dev/null || skip "no Go toolchain: cannot build helm ($HELM)"
  echo "helm/test.sh: building $HELM (once, into the CI cache)" >&2
  GOBIN="$(dirname "$helm")" GOFLAGS=-mod=mod go install -ldflags "-s -w" "$HELM" >&2 || skip "go install $HELM failed"
fi
deploy_venv yaml pyyaml==6.0.3
[ -x "$server" ] || die "$server is missing (cargo build --release -p blindmatch-server)"

chart="$here/blindmatch"
"$helm" lint --strict "$chart" >/dev/null || { "$helm" lint --strict "$chart"; die "helm lint failed"; }
"$helm" lint --strict "$chart" -f "$here/test-values.yaml" >/dev/null \
  || { "$helm" lint --strict "$chart" -f "$here/test-values.yaml"; die "helm lint (test-values.yaml) failed"; }
renders=0
for values in default test-values.yaml; do
  args=() image=blindmatch-server loaded=128
  if [ "$values" != default ]; then
    args=(-f "$here/$values") image=registry.example/blindmatch-server loaded=300
  fi
  for mode in install upgrade; do
    extra=()
    [ "$mode" = upgrade ] && extra=(--is-upgrade)
    out="$("$helm" template bm "$chart" "${args[@]}" "${extra[@]}")" || die "helm template ($values, $mode) failed"
    # The publish job builds the next version in place only at an upgrade.
    base="$(grep -c -- '- --base=/table/table.bmt' <<<"$out" || true)"
    [ "$base" = "$([ "$mode" = upgrade ] && echo 1 || echo 0)" ] || die "$values, $mode: --base rendered $base times"
    "$venv/bin/python" "$here/check-rendered.py" "$server" "$image" "$loaded" <<<"$out" \
      || die "the manifests rendered with $values values ($mode) are wrong (above)"
    renders=$((renders + 1))
  done
done
# An upgrade that only changes the pods publishes nothing.
"$helm" template bm "$chart" --is-upgrade --set publish.onUpgrade=false | grep -q 'kind: Job' \
  && die "publish.onUpgrade=false still renders the publish job"
echo "helm: lint --strict and $renders renderings checked (default and test-values.yaml, install and upgrade); $((SECONDS - started)) s"
