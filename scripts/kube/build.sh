#!/usr/bin/env bash
# Builds the two programs of `make e2e-kube` from the Go module proxy: a real
# kube-apiserver (k8s.io/kubernetes, every staging module replaced by its
# matching version) and etcd, each in a scratch module under a cache folder
# outside the repository. Nothing of them is committed: this script is the
# recipe, the binaries are a cache.
#
# Idempotent: a binary already built for its version is kept (FORCE=1
# rebuilds). Cold on a 2-core machine: kube-apiserver about 6 minutes, etcd
# about 1; the Go build cache makes later builds quick.
#
#   scripts/kube/build.sh          # prints KUBE_APISERVER=... and ETCD=...
#
# Environment: KUBE_VERSION (default 1.34.2), ETCD_VERSION (default 3.6.5),
# IMDS_PROXY_KUBE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/imds-proxy-kube).
set -euo pipefail

kube_version=${KUBE_VERSION:-1.34.2}
etcd_version=${ETCD_VERSION:-3.6.5}
cache=${IMDS_PROXY_KUBE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/imds-proxy-kube}
go=${GO:-go}

# The staging modules k8s.io/kubernetes requires at v0.0.0 and replaces with
# its own staging/ folder, which a module outside its tree cannot see: each is
# pinned here to the published version of the same release.
staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
pod-security-admission sample-apiserver"

log() { echo "kube-build: $*" >&2; }

# build_in DIR OUT: go mod tidy and go build in the scratch module DIR, into
# OUT through a temporary name, so that an interrupted build leaves no binary
# that a later run would take as done.
build_in() {
	local dir=$1 out=$2
	(
		cd "${dir}"
		GOFLAGS=-mod=mod "${go}" mod tidy
		CGO_ENABLED=0 GOFLAGS=-buildvcs=false "${go}" build -trimpath -ldflags '-s -w' -o "${out}.tmp" .
	)
	mv "${out}.tmp" "${out}"
}

build_apiserver() {
	local dir=${cache}/kube-apiserver-v${kube_version}
	local out=${dir}/kube-apiserver
	if [ -z "${FORCE:-}" ] && [ -x "${out}" ]; then
		echo "${out}"
		return
	fi
	log "building kube-apiserver v${kube_version} in ${dir} (about 6 minutes cold)"
	local start=${SECONDS}
	mkdir -p "${dir}"
	rm -f "${dir}/go.mod" "${dir}/go.sum"
	cat >"${dir}/main.go" <<'G'
// Command kube-apiserver is the upstream API server, built from its module.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
G
	(
		cd "${dir}"
		"${go}" mod init kube-apiserver-build >/dev/null 2>&1
		"${go}" mod edit -require="k8s.io/kubernetes@v${kube_version}"
		local m
		for m in ${staging}; do
			"${go}" mod edit -replace="k8s.io/${m}=k8s.io/${m}@v0.${kube_version#1.}"
		done
	)
	build_in "${dir}" "${out}"
	log "kube-apiserver built in $((SECONDS - start))s"
	echo "${out}"
}

build_etcd() {
	local dir=${cache}/etcd-v${etcd_version}
	local out=${dir}/etcd
	if [ -z "${FORCE:-}" ] && [ -x "${out}" ]; then
		echo "${out}"
		return
	fi
	log "building etcd v${etcd_version} in ${dir} (about 1 minute cold)"
	local start=${SECONDS}
	mkdir -p "${dir}"
	rm -f "${dir}/go.mod" "${dir}/go.sum"
	cat >"${dir}/main.go" <<'G'
// Command etcd is the upstream etcd server, built from its module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
G
	(
		cd "${dir}"
		"${go}" mod init etcd-build >/dev/null 2>&1
		"${go}" mod edit -require="go.etcd.io/etcd/server/v3@v${etcd_version}"
	)
	build_in "${dir}" "${out}"
	log "etcd built in $((SECONDS - start))s"
	echo "${out}"
}

start=${SECONDS}
etcd=$(build_etcd)
apiserver=$(build_apiserver)
echo "ETCD=${etcd}"
echo "KUBE_APISERVER=${apiserver}"
log "done in $((SECONDS - start))s"
