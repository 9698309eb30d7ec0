#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd, kubectl) from source through the
# Go module proxy, so that tests need no prebuilt download. Skips what is already built.
#
# usage: hack/build-envtest-assets.sh <dest-dir>
# env:   K8S_VERSION (default 1.37.2), ETCD_VERSION (default 3.6.16)
set -euo pipefail

dest=${1:?usage: $0 <dest-dir>}
k8s_version=${K8S_VERSION:-1.37.2}
etcd_version=${ETCD_VERSION:-3.6.16}
# Kubernetes staging modules are published as v0.<minor>.<patch> for v1.<minor>.<patch>.
staging_version="v0.${k8s_version#*.}"

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

if [[ -x "$dest/kube-apiserver" && -x "$dest/etcd" && -x "$dest/kubectl" ]]; then
  exit 0
fi

export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-mod=mod CGO_ENABLED=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo ">> Building the envtest control plane (kube-apiserver v${k8s_version}, etcd v${etcd_version}, kubectl) from source into ${dest}."
echo ">> The first build takes several minutes; later runs reuse it."

if [[ ! -x "$dest/etcd" ]]; then
  echo ">> etcd v${etcd_version} ..."
  mkdir -p "$work/etcd"
  (
    cd "$work/etcd"
    go mod init envtest-etcd >/dev/null 2>&1
    go mod edit -require="go.etcd.io/etcd/server/v3@v${etcd_version}"
    printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    go build -trimpath -o "$dest/etcd" go.etcd.io/etcd/server/v3
  )
fi

if [[ ! -x "$dest/kube-apiserver" || ! -x "$dest/kubectl" ]]; then
  mkdir -p "$work/k8s"
  (
    cd "$work/k8s"
    go mod init envtest-kubernetes >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v${k8s_version}"
    # k8s.io/kubernetes replaces its staging modules with local paths; point each at its
    # published release instead.
    modfile=$(go mod download -json "k8s.io/kubernetes@v${k8s_version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    for mod in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$modfile"); do
      go mod edit -replace="${mod}=${mod}@${staging_version}"
    done
    printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubectl/pkg/cmd"\n)\n' >tools.go
    echo ">> resolving k8s.io/kubernetes v${k8s_version} modules ..."
    go mod tidy >/dev/null 2>&1 || go mod tidy
    echo ">> kube-apiserver v${k8s_version} (the slow one) ..."
    go build -trimpath -o "$dest/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    echo ">> kubectl v${k8s_version} ..."
    go build -trimpath -o "$dest/kubectl" k8s.io/kubernetes/cmd/kubectl
  )
fi

echo ">> envtest control plane ready in ${dest}"
