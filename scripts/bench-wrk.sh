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
#   scripts/bench-wrk.sh                     # wrk -t2 -c32 -d10s
#   BENCH_DURATION=5s BENCH_CONNS=64 scripts/bench-wrk.sh
set -euo pipefail

duration=${BENCH_DURATION:-10s}
conns=${BENCH_CONNS:-32}
threads=${BENCH_THREADS:-2}
mode=${BENCH_MODE:-config}
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

"$work/bench-baseline" --listen 127.0.0.1:0 --instance-id "$instance_id" >"$work/baseline.out" 2>&1 </dev/null &
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
case $mode in
config) proxy_args=(--config "$work/imds-proxy.yaml") ;;
seed) proxy_args=(--instance-id "$instance_id") ;;
*)
	echo "bench-wrk: BENCH_MODE=$mode: use config or seed" >&2
	exit 2
	;;
esac

# start_proxy ADMIN: start imds-proxy with --admin-listen ADMIN; set proxy
# to its IMDS address.
start_proxy() {
	"$work/imds-proxy" "${proxy_args[@]}" --listen 127.0.0.1:0 --admin-listen "$1" \
		--log-format json >/dev/null 2>"$proxy_log" &
	proxy_pid=$!
	pids+=("$proxy_pid")
	proxy=$(await_addr "$proxy_log" "$proxy_pid" '"listener":"imds"')
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
	out=$(timeout 120 wrk "-t$threads" "-c$conns" "-d$duration" "$1")
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
sum() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }

echo "wrk -t$threads -c$conns -d$duration http://<server>$path; bare $bare, imds-proxy $proxy ($mode mode)"
bare_rate=0 proxy_rate=0 bare_cpu=0 proxy_cpu=0
for round in 1 2; do
	measure "http://$bare$path" "$bare_pid"
	echo "round $round bare:       $req_s req/s, server CPU $cpu_us µs/req"
	bare_rate=$(sum "$bare_rate" "$req_s") b=$req_s
	bare_cpu=$(sum "$bare_cpu" "$cpu_us") bc=$cpu_us
	measure "http://$proxy$path" "$proxy_pid"
	echo "round $round imds-proxy: $req_s req/s, server CPU $cpu_us µs/req (throughput ratio $(ratio "$req_s" "$b"), CPU ratio $(ratio "$bc" "$cpu_us"))"
	proxy_rate=$(sum "$proxy_rate" "$req_s")
	proxy_cpu=$(sum "$proxy_cpu" "$cpu_us")
done
awk -v p="$proxy_rate" -v b="$bare_rate" -v pc="$proxy_cpu" -v bc="$bare_cpu" 'BEGIN {
	printf "mean bare %.0f req/s, imds-proxy %.0f req/s: throughput ratio %.3f\n", b / 2, p / 2, p / b
	printf "server CPU per request: bare %.2f µs, imds-proxy %.2f µs: CPU ratio (bare/proxy) %.3f\n", bc / 2, pc / 2, bc / pc
}'
lines=$(grep -c '"path":"/latest/meta-data/instance-id"' "$proxy_log" || true)
dropped=$({ grep -oE 'log buffer full, [0-9]+' "$proxy_log" || true; } | awk '{ s += $4 } END { print s + 0 }')
echo "imds-proxy access log: $lines lines in $proxy_log, $dropped dropped by the diode"
