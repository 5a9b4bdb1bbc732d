#!/usr/bin/env bash
# bench-wrk.sh compares imds-proxy with a bare net/http server answering the
# same bytes (scripts/bench-baseline), with wrk as an external client:
# GET /latest/meta-data/instance-id, bare, proxy, bare, proxy, each for
# BENCH_DURATION, then the proxy's req/s over the bare server's.
#
# Loopback only; both servers are started here and stopped on exit. The
# proxy runs as users run it (JSON access log on, level info), its log going
# to /tmp/imds-proxy-bench.log. By default it runs from a one-tenant
# configuration that lifts the per-source request limit (500/s, burst 1000
# by default: every wrk request comes from 127.0.0.1, and past the burst the
# proxy would be measured answering 429); BENCH_MODE=seed runs it in seed
# mode instead, limits and all.
#
# In config mode a second proxy serves the benchmark tenant among
# BENCH_MANY tenants (10,000 by default, each on its own 127.x address; 0:
# none), measured in the same rounds: its rate over the one-tenant proxy's
# is the 10k-vs-1 ratio, and its resident size (VmRSS) is reported idle and
# after the rounds. Servers run with GOMAXPROCS=1; when taskset is there
# and the host has two CPUs or more, the servers are pinned to CPU 0 and
# wrk to CPU 1, so that CPU per request is the server's alone. Each figure
# is the median of BENCH_ROUNDS rounds (3), taken in turn.
#
#   scripts/bench-wrk.sh                     # wrk -t1 -c32 -d5s, 3 rounds
#   BENCH_DURATION=10s BENCH_CONNS=64 BENCH_MANY=0 scripts/bench-wrk.sh
set -euo pipefail

duration=${BENCH_DURATION:-5s}
conns=${BENCH_CONNS:-32}
threads=${BENCH_THREADS:-1}
mode=${BENCH_MODE:-config}
many=${BENCH_MANY:-10000}
rounds=${BENCH_ROUNDS:-3}
[[ $mode == config ]] || many=0
export GOMAXPROCS=1
server_pin=() client_pin=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
	server_pin=(taskset -c 0) client_pin=(taskset -c 1)
fi
instance_id=i-0a1b2c3d4e5f60001
path=/latest/meta-data/instance-id
proxy_log=/tmp/imds-proxy-bench.log

if ! command -v wrk >/dev/null; then
	echo "bench-wrk: wrk is not installed (apt-get install -y wrk); nothing measured" >&2
	exit 0
fi

cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building into $work" >&2
go build -o "$work/imds-proxy" ./cmd/imds-proxy
go build -o "$work/bench-baseline" scripts/bench-baseline/main.go

# await_addr FILE PID PATTERN: print the first "ip:port" on a line of FILE
# matching PATTERN, waiting up to 10s; fail if PID exits first.
await_addr() {
	local file=$1 pid=$2 pattern=$3 addr
	for _ in $(seq 100); do
		addr=$(grep -m1 -E "$pattern" "$file" 2>/dev/null | grep -oE '127\.0\.0\.1:[0-9]+' | head -n1 || true)
		if [[ -n $addr ]]; then
			echo "$addr"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

"${server_pin[@]}" "$work/bench-baseline" --listen 127.0.0.1:0 --instance-id "$instance_id" >"$work/baseline.out" 2>&1 </dev/null &
bare_pid=$!
pids+=("$bare_pid")
bare=$(await_addr "$work/baseline.out" "$bare_pid" '^127\.0\.0\.1:') || {
	cat "$work/baseline.out" >&2
	exit 1
}

cat >"$work/imds-proxy.yaml" <<EOF
tenants:
  - name: bench
    sources: ["127.0.0.1"]
    instance: {instance_id: $instance_id}
    limits: {requests_per_second: 1000000000, burst: 1000000000, connections: 4096}
EOF
# The same tenant first among many others, for the 10k-vs-1 figure.
if [[ $many -gt 1 ]]; then
	cp "$work/imds-proxy.yaml" "$work/many.yaml"
	awk -v n="$many" 'BEGIN { for (i = 1; i < n; i++) printf "  - {name: t%d, sources: [\"127.%d.%d.%d\"]}\n", i, 1 + int(i / 65536), int(i / 256) % 256, i % 256 }' >>"$work/many.yaml"
fi
case $mode in
config) proxy_args=(--config "$work/imds-proxy.yaml") ;;
seed) proxy_args=(--instance-id "$instance_id") ;;
*)
	echo "bench-wrk: BENCH_MODE=$mode: use config or seed" >&2
	exit 2
	;;
esac

# start_proxy ADMIN [LOG ARGS...]: start imds-proxy with --admin-listen
# ADMIN, logging to LOG (proxy_log) with ARGS (proxy_args); set proxy to
# its IMDS address.
start_proxy() {
	local admin=$1 log=${2:-$proxy_log}
	local args=("${proxy_args[@]}")
	if [[ $# -gt 2 ]]; then
		args=("${@:3}")
	fi
	"${server_pin[@]}" "$work/imds-proxy" "${args[@]}" --listen 127.0.0.1:0 --admin-listen "$admin" \
		--log-format json >/dev/null 2>"$log" &
	proxy_pid=$!
	pids+=("$proxy_pid")
	proxy=$(await_addr "$log" "$proxy_pid" '"listener":"imds"')
}
if ! start_proxy off; then
	# Builds before seed mode accepted "off" parsed it as an address;
	# an admin listener on a free loopback port costs the benchmark nothing.
	echo "bench-wrk: --admin-listen off refused ($(tail -n1 "$proxy_log")); using 127.0.0.1:0" >&2
	start_proxy 127.0.0.1:0 || {
		cat "$proxy_log" >&2
		exit 1
	}
fi

rss() { awk '/^VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
if [[ $many -gt 1 ]]; then
	one_pid=$proxy_pid one=$proxy
	t0=$(date +%s%N)
	start_proxy off "$proxy_log.many" --config "$work/many.yaml" || {
		cat "$proxy_log.many" >&2
		exit 1
	}
	many_pid=$proxy_pid many_addr=$proxy
	t1=$(date +%s%N)
	proxy_pid=$one_pid proxy=$one
	sleep 2
	echo "imds-proxy with $many tenants: listening $(((t1 - t0) / 1000000)) ms after start; idle RSS $(rss "$many_pid")"
fi

# Equal responses, or the comparison means nothing.
if command -v curl >/dev/null; then
	strip() { tr -d '\r' | grep -v -i '^date:' | sort; }
	want=$(curl -s -D - "http://$bare$path" | strip)
	got=$(curl -s -D - "http://$proxy$path" | strip)
	if [[ $want != "$got" ]]; then
		printf 'bench-wrk: responses differ\nbare:\n%s\nproxy:\n%s\n' "$want" "$got" >&2
		exit 1
	fi
fi

# cpu_ticks PID: user+system CPU time of PID so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure URL PID: run wrk against URL; set req_s to its Requests/sec and
# cpu_us to the CPU time PID spent per request, in microseconds. Wall-clock
# rates swing with whatever else the host runs; CPU per request hardly does.
measure() {
	local out before after n
	before=$(cpu_ticks "$2")
	out=$(timeout 120 "${client_pin[@]}" wrk "-t$threads" "-c$conns" "-d$duration" "$1")
	after=$(cpu_ticks "$2")
	if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
		echo "bench-wrk: errors against $1: the rate below is not of 200s" >&2
		grep 'Non-2xx\|Socket errors\|requests in' <<<"$out" >&2
	fi
	req_s=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	n=$(awk '/requests in/ { print $1 }' <<<"$out")
	cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "wrk -t$threads -c$conns -d$duration http://<server>$path; bare $bare, imds-proxy $proxy ($mode mode), $rounds rounds${server_pin:+; servers on CPU 0, wrk on CPU 1}"
cpus=() manycpus=() tput=() cpur=() manyr=() manycpur=()
for round in $(seq "$rounds"); do
	measure "http://$bare$path" "$bare_pid"
	b=$req_s bc=$cpu_us
	echo "round $round bare:       $req_s req/s, server CPU $cpu_us µs/req"
	measure "http://$proxy$path" "$proxy_pid"
	tput+=("$(ratio "$req_s" "$b")") cpur+=("$(ratio "$bc" "$cpu_us")") cpus+=("$cpu_us") p=$req_s
	echo "round $round imds-proxy: $req_s req/s, server CPU $cpu_us µs/req (throughput ratio ${tput[-1]}, CPU ratio ${cpur[-1]})"
	if [[ $many -gt 1 ]]; then
		measure "http://$many_addr$path" "$many_pid"
		manyr+=("$(ratio "$req_s" "$p")") manycpus+=("$cpu_us") manycpur+=("$(ratio "${cpus[-1]}" "$cpu_us")")
		echo "round $round $many tenants: $req_s req/s, server CPU $cpu_us µs/req (vs 1 tenant: throughput ${manyr[-1]}, CPU ${manycpur[-1]})"
	fi
done
echo "median throughput ratio (imds-proxy / bare): $(median "${tput[@]}")"
echo "median CPU ratio (bare µs/req / imds-proxy µs/req): $(median "${cpur[@]}"); imds-proxy $(median "${cpus[@]}") µs/req"
if [[ $many -gt 1 ]]; then
	echo "median $many-tenant / 1-tenant throughput ratio: $(median "${manyr[@]}"); CPU ratio (1-tenant µs/req / $many-tenant µs/req): $(median "${manycpur[@]}"); $(median "${manycpus[@]}") µs/req"
	echo "imds-proxy with $many tenants: RSS after the rounds $(rss "$many_pid")"
fi
lines=$(grep -c '"path":"/latest/meta-data/instance-id"' "$proxy_log" || true)
dropped=$({ grep -oE 'log buffer full, [0-9]+' "$proxy_log" || true; } | awk '{ s += $4 } END { print s + 0 }')
echo "imds-proxy access log: $lines lines in $proxy_log, $dropped dropped by the diode"
