# imds-proxy. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN      := bin/imds-proxy
IMAGE    ?= imds-proxy
LDFLAGS  := -s -w -X main.version=$(VERSION)

# The seed's port: where `make run` listens (127.0.0.1:$(APP_PORT)) and the
# container port of `make run-docker`.
APP_PORT ?= 8080
# Extra arguments for the run targets, e.g. ARGS='--config configs/example.yaml'.
ARGS     ?=

# Fuzz targets as package:FuzzFunc. Each runs only once its package has it,
# so a target can be listed here before its test is written.
FUZZ_TARGETS    := ./tenants/:FuzzParse ./handlers/:FuzzRoute ./handlers/:FuzzLane
FUZZTIME        ?= 20s
FUZZTIME_LONG   ?= 5m
BENCH_PKGS      := ./cmd/imds-proxy/ ./handlers/ ./resolver/

.PHONY: help build run run-linux test unit e2e e2e-docker e2e-kube fuzz bench vet fmt-check docker run-docker clean man units cross release-check snapshot helm-check manifests

help:
	@echo 'build       build $(BIN) (version $(VERSION))'
	@echo 'run         run it on the built-in default config, 127.0.0.1:$(APP_PORT) (ARGS=... for more flags)'
	@echo 'run-linux   serve 169.254.169.254:80 through a loopback alias (uses sudo unless root)'
	@echo 'test        every test, race-enabled, end-to-end ones included, then $(FUZZTIME) of each fuzz target (what CI runs)'
	@echo 'unit        the fast tests only (go test ./...)'
	@echo 'e2e         as root: namespaces as containers, setup --apply, AWS CLI and boto3 inside (CI runs it after test)'
	@echo 'e2e-docker  as root, on a Docker Engine: the image, the compose story, AWS CLI, boto3 and curl in containers (CI runs it after e2e)'
	@echo 'e2e-kube    as root: a real kube-apiserver and etcd (scripts/kube/build.sh), pods in namespaces, IMDS, ECS and Pod Identity (CI runs it after e2e-docker)'
	@echo 'fuzz        $(FUZZTIME_LONG) of each fuzz target'
	@echo 'bench       benchmarks of $(BENCH_PKGS), 5 runs each (benchstat-ready), scripts/bench-rss.sh, then scripts/bench-wrk.sh: one table of every figure'
	@echo 'vet         go vet'
	@echo 'fmt-check   fail if gofmt would change a file'
	@echo 'docker      build the image $(IMAGE):$(VERSION) (FROM scratch, no registry needed)'
	@echo 'run-docker  run that image, published on port 80'
	@echo 'man         regenerate docs/imds-proxy.1 from the flag definitions (imds-proxy man)'
	@echo 'units       systemd-analyze verify the units of dist/systemd'
	@echo 'cross       build linux and darwin, amd64 and arm64, as a release does (into bin/)'
	@echo 'release-check  goreleaser check, then a snapshot build of every target (needs goreleaser)'
	@echo 'helm-check  helm lint and helm template of deploy/helm/imds-proxy, then its test (needs helm)'
	@echo 'manifests   regenerate deploy/kubernetes/imds-proxy.yaml from the chart (needs helm)'
	@echo 'clean       remove bin/'

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/imds-proxy

# APP_PORT reaches the proxy as the seed's environment variable, which only
# applies without --config; with --listen in ARGS, set APP_PORT= (empty).
run: build
	APP_PORT=$(APP_PORT) ./$(BIN) $(ARGS)

# The end-to-end tests (build tag e2e: the built binary against moto, the
# AWS CLI v2, boto3, curl, Chromium, a Docker Engine fake) run with the rest.
# A tool they need that is missing fails them when CI is set (.ci/run sets
# it) and skips them elsewhere; the skips are listed at the end.
test:
	@skipped=$$(mktemp); status=0; \
	echo '$(GO) test -race -count=1 -tags e2e ./...'; \
	IMDS_PROXY_SKIPPED=$$skipped $(GO) test -race -count=1 -tags e2e ./... || status=$$?; \
	if [ -s $$skipped ]; then echo "--- skipped (a tool is missing here):"; cat $$skipped; fi; \
	rm -f $$skipped; exit $$status
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME)

# unit: the fast tests alone, no binary built and no tool needed.
unit:
	$(GO) test -count=1 ./...

# The shared dev host end to end (cmd/imds-proxy/netns_test.go, build tag
# netns): a bridge and network namespaces as containers, `imds-proxy setup
# --apply` in both modes, the proxy with moto as STS, and the AWS CLI, boto3
# and curl inside each namespace; then `setup --remove` must restore the
# host. Needs root (it skips otherwise), ip, iptables, curl, /usr/bin/aws,
# moto_server and a python3 with boto3. About 40 s.
e2e:
	$(GO) test -tags netns -run '^TestNetns$$' -count=1 -timeout 150s -v ./cmd/imds-proxy/

# The seed's story on a real Docker Engine (cmd/imds-proxy/dockere2e_test.go,
# build tag dockere2e): the image of `make docker` (tagged e2e-docker and
# removed afterwards), the cached client image of
# scripts/e2e-docker/client-image.sh (debootstrap; built only when absent,
# about 3 minutes), configs/docker-compose-e2e.yml, `setup --mode dnat`, and
# the AWS CLI, boto3 and curl inside the containers. Needs root, docker,
# docker-compose, debootstrap, moto_server. About a minute once cached.
E2E_CLIENT_IMAGE ?= imds-proxy-e2e-client:latest
e2e-docker:
	scripts/e2e-docker/client-image.sh $(E2E_CLIENT_IMAGE)
	@$(MAKE) --no-print-directory docker IMAGE=imds-proxy-e2e VERSION=e2e-docker
	@status=0; IMDS_E2E_PROXY_IMAGE=imds-proxy-e2e:e2e-docker IMDS_E2E_CLIENT_IMAGE=$(E2E_CLIENT_IMAGE) \
		$(GO) test -tags dockere2e -run '^TestDockerE2E$$' -count=1 -timeout 240s -v ./cmd/imds-proxy/ || status=$$?; \
	docker rmi imds-proxy-e2e:e2e-docker >/dev/null; exit $$status

# Kubernetes mode end to end (cmd/imds-proxy/kube_e2e_test.go, build tag
# kube): a real etcd and kube-apiserver, built from the Go module proxy by
# scripts/kube/build.sh into a cache outside the repository (about 7
# minutes cold, nothing once built), RBAC as deploy/kubernetes renders it,
# pods "running" on network namespaces' addresses, `setup --mode address
# --ecs`, and curl, boto3 and the AWS CLI inside each namespace through
# IMDS, the ECS form and Pod Identity, with moto as STS. Needs root, ip,
# iptables-save, curl, /usr/bin/aws, moto_server and a python3 with boto3.
e2e-kube:
	@bins=$$(scripts/kube/build.sh) || exit $$?; \
	etcd=$$(printf '%s\n' "$$bins" | sed -n 's/^ETCD=//p'); \
	apiserver=$$(printf '%s\n' "$$bins" | sed -n 's/^KUBE_APISERVER=//p'); \
	echo "$(GO) test -tags kube -run '^TestKubeE2E$$' ./cmd/imds-proxy/ (etcd $$etcd, kube-apiserver $$apiserver)"; \
	IMDS_KUBE_ETCD=$$etcd IMDS_KUBE_APISERVER=$$apiserver \
		$(GO) test -tags kube -run '^TestKubeE2E$$' -count=1 -timeout 300s -v ./cmd/imds-proxy/

fuzz:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME_LONG)

# FUZZ_MINIMIZE bounds the minimisation of each new interesting input: the
# default (60 s) can outlast a short -fuzztime, and go test then fails the
# run with "context deadline exceeded" although nothing was found. That
# quirk alone is reported and passed over; a failing input (go test writes
# "Failing input written to ...") or any other error fails the run.
FUZZ_MINIMIZE ?= 2s

# fuzz-run runs every target of FUZZ_TARGETS that `go test -list` finds in
# its package for FUZZ_FOR. A package that does not compile fails the run.
.PHONY: fuzz-run
fuzz-run:
	@set -e; for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; fn=$${target##*:}; \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; exit 1; }; \
		if printf '%s\n' "$$list" | grep -qx "$$fn"; then \
			echo "$(GO) test -run='^\$$' -fuzz='^$$fn\$$' -fuzztime=$(FUZZ_FOR) -fuzzminimizetime=$(FUZZ_MINIMIZE) $$pkg"; \
			out=$$(mktemp); \
			status=0; $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZ_FOR) -fuzzminimizetime=$(FUZZ_MINIMIZE) $$pkg >$$out 2>&1 || status=$$?; \
			cat $$out; \
			if [ $$status -ne 0 ]; then \
				if grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
					echo "fuzz-run: $$fn stopped mid-minimisation at the deadline (a go test quirk); no failing input"; \
				else rm -f $$out; exit 1; fi; \
			fi; rm -f $$out; \
		else \
			echo "skipping $$fn: $$pkg has no such fuzz test yet"; \
		fi; \
	done

# bench: the in-process benchmarks (the ratios against a bare net/http
# server, the handlers, resolution, the footprint at 10,000 tenants), the
# RSS at 10,000 tenants, then the same ratios with wrk as the client
# (servers and wrk pinned apart, medians of alternating rounds, server CPU
# time per request, Amazon's IMDS mock where it builds, the 10k-vs-1
# tenant ratio), ending with one table of every figure, wrk and in process,
# the start, the RSS and the stripped binary's size.
BENCH_OUT ?= bin/bench-inprocess.txt
BENCH_RSS_OUT ?= bin/bench-rss.txt
bench: build
	@mkdir -p $(dir $(BENCH_OUT))
	bash -o pipefail -c "$(GO) test -run='^\$$' -bench=. -benchmem -count=5 $(BENCH_PKGS) | tee $(BENCH_OUT)"
	bash -o pipefail -c "scripts/bench-rss.sh | tee $(BENCH_RSS_OUT)"
	BENCH_INPROCESS=$(BENCH_OUT) BENCH_RSS=$(BENCH_RSS_OUT) BENCH_BINARY=$(BIN) scripts/bench-wrk.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The image needs no registry: FROM scratch, with the binary built here and
# the host's CA bundle copied into bin/image/, its build context (Dockerfile;
# Dockerfile.multistage builds from source where a registry is reachable).
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
docker: build
	rm -rf bin/image && mkdir -p bin/image
	cp $(BIN) bin/image/imds-proxy
	cp $(CA_BUNDLE) bin/image/ca-certificates.crt
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		-t $(IMAGE):$(VERSION) -f Dockerfile bin/image

# As in the seed: the container's port published on the host's port 80.
# Through -p the proxy sees the bridge gateway as every client's source, so
# this serves one tenant; see docs/deployment.md for per-container tenants.
run-docker:
	docker run -it --rm -p 80:$(APP_PORT) $(IMAGE):$(VERSION) \
		--listen 0.0.0.0:$(APP_PORT) --source 172.16.0.0/12 $(ARGS)

# Serves 169.254.169.254:80 on this host: a /32 alias on lo (added once by
# `imds-proxy setup`, removed by `imds-proxy setup --remove`),
# and a listener on it, which needs root or CAP_NET_BIND_SERVICE. Local
# processes reach a loopback alias from the alias itself, hence the source.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
run-linux: build
	$(SUDO) ./$(BIN) setup --mode address --interface lo --ipv6=false --apply
	$(SUDO) ./$(BIN) --listen 169.254.169.254:80 --source 127.0.0.0/8,::1,169.254.169.254 $(ARGS)

man:
	$(GO) run ./cmd/imds-proxy man > docs/imds-proxy.1

# The units name /usr/local/bin/imds-proxy; verify needs it to exist, so
# the check runs against a copy of the units pointing at the built binary.
units: build
	@tmp=$$(mktemp -d); for u in dist/systemd/*.service; do \
		sed "s|/usr/local/bin/imds-proxy|$(CURDIR)/$(BIN)|g" $$u > $$tmp/$$(basename $$u); done; \
	echo "systemd-analyze verify dist/systemd/*.service"; \
	status=0; systemd-analyze verify $$tmp/*.service || status=$$?; rm -rf $$tmp; exit $$status

# What a release builds, without goreleaser: every target, static.
CROSS_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
cross:
	@set -e; for t in $(CROSS_TARGETS); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} go build"; \
		CGO_ENABLED=0 GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o bin/imds-proxy-$${t%/*}-$${t#*/} ./cmd/imds-proxy; \
	done

GORELEASER ?= goreleaser
release-check:
	$(GORELEASER) check
	$(GORELEASER) build --snapshot --clean

# The Kubernetes deployment (docs/kubernetes.md): the chart linted and
# rendered with its defaults and each ci/*-values.yaml, then deploy/'s test,
# which decodes what it renders and checks it. The plain manifests are the
# chart's defaults as rendered for the release imds-proxy in kube-system.
HELM          ?= helm
CHART         := deploy/helm/imds-proxy
HELM_TEMPLATE := $(HELM) template imds-proxy $(CHART) --namespace kube-system
helm-check:
	@set -e; for v in '' $(wildcard $(CHART)/ci/*-values.yaml); do \
		echo "$(HELM) lint --strict $(CHART) $${v:+--values $$v}"; \
		$(HELM) lint --strict $(CHART) $${v:+--values $$v}; \
		echo "$(HELM_TEMPLATE) $${v:+--values $$v}"; \
		$(HELM_TEMPLATE) $${v:+--values $$v} >/dev/null; \
	done
	$(GO) test -count=1 ./deploy/

manifests:
	$(HELM_TEMPLATE) > deploy/kubernetes/imds-proxy.yaml

clean:
	rm -rf bin/
