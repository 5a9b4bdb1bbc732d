#!/usr/bin/env bash
# Builds the client image of `make e2e-docker`: a Debian root filesystem made
# with debootstrap from this machine's apt sources, holding the unmodified
# clients the test runs inside each application container (AWS CLI v2 —
# Debian's awscli package —, python3-boto3, curl, iproute2), then imported
# with `docker import`. No registry is needed.
#
# The image is a cache: when it exists nothing is done (FORCE=1 rebuilds).
# Needs root, debootstrap and a running Docker Engine. About 2-4 minutes.
#
#   scripts/e2e-docker/client-image.sh [IMAGE]     # default imds-proxy-e2e-client:latest
set -euo pipefail

image=${1:-imds-proxy-e2e-client:latest}
packages=awscli,python3-boto3,curl,iproute2,ca-certificates

if [ -z "${FORCE:-}" ] && docker image inspect "${image}" >/dev/null 2>&1; then
	echo "client-image: ${image} exists (FORCE=1 rebuilds it)"
	exit 0
fi
command -v debootstrap >/dev/null || {
	echo "client-image: debootstrap is missing: apt-get install -y debootstrap" >&2
	exit 1
}

# The suite and mirror of this machine's Debian sources (deb822 or one-line
# format), so that the image is built from what the host already trusts.
. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
mirror=$(
	{
		sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
		sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+'"${suite}"'[[:space:]].*/\2/p' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
	} | grep -v -- '-security' | grep -m1 debian || true
)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /tmp/imds-e2e-client.XXXXXX)
cleanup() {
	umount "${root}/proc" 2>/dev/null || true
	rm -rf "${root}" "${root}.log"
}
trap cleanup EXIT
start=${SECONDS}
fail() {
	tail -n 40 "${root}.log" >&2
	exit 1
}
# A minimal base first, then apt inside it: apt resolves the clients'
# dependencies (and orders their configuration) better than --include.
echo "client-image: debootstrap ${suite} from ${mirror}, then ${packages}"
debootstrap --variant=minbase "${suite}" "${root}" "${mirror}" >"${root}.log" 2>&1 || fail
cp /etc/resolv.conf "${root}/etc/resolv.conf"
mount -t proc proc "${root}/proc"
chroot "${root}" apt-get update -qq >>"${root}.log" 2>&1 || fail
DEBIAN_FRONTEND=noninteractive chroot "${root}" apt-get install -y -qq --no-install-recommends \
	${packages//,/ } >>"${root}.log" 2>&1 || fail
chroot "${root}" apt-get clean
umount "${root}/proc"
: >"${root}/etc/resolv.conf"
# What the image does not need: downloaded packages, docs, apt lists.
rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/* \
	"${root}"/usr/share/doc/* "${root}"/usr/share/man/* "${root}"/usr/share/locale/*

tar -C "${root}" -c . | docker import \
	--change 'CMD ["sleep", "infinity"]' \
	--change 'LABEL org.opencontainers.image.description="imds-proxy e2e-docker client"' \
	- "${image}" >/dev/null
echo "client-image: ${image} built in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "${image}") bytes)"
