#!/usr/bin/env bash
# bench-wrk.sh measures imds-proxy with wrk as an external client, side by
# side with a bare net/http server answering the same bytes
# (scripts/bench-baseline) and, where it can be built, Amazon's IMDS mock
# (amazon-ec2-metadata-mock), in alternating rounds:
#
#   metadata GET     /latest/meta-data/instance-id: bare, imds-proxy, the
#                    mock, and imds-proxy serving the same tenant among
#                    BENCH_MANY others (10,000; 0: none)
#   credentials GET  /latest/meta-data/iam/security-credentials/<role>
#                    (mock credentials, served from the credential cache):
#                    bare writing the same document, imds-proxy
#
# Each figure is the median, over BENCH_ROUNDS rounds (5), of one round's
# ratio; the order of the servers is reversed every other round, so drift
# (other load on the host) falls on each side alike. Two ratios a figure:
# throughput (req/s over req/s) and CPU (the other side's server CPU time
# per request over this one's: user+system of the server process from
# /proc/PID/stat around each wrk run, divided by the requests wrk
# completed). On a shared, noisy host the CPU ratio is the steady one; the
# throughput ratio swings with whatever else runs.
#
# Loopback only; every server is started here and stopped on exit. The
# servers run with GOMAXPROCS=1 and, when taskset is there and the host has
# two CPUs or more, pinned to CPU 0 with wrk on CPU 1. imds-proxy runs as
# users run it: JSON access log on at level info, written to
# /tmp/imds-proxy-bench.log, and its configuration lifts the per-source
# request limit (500/s, burst 1000 by default: every wrk request comes from
# 127.0.0.1, and past the burst it would be measured answering 429).
#
# The mock: `ec2-metadata-mock` on PATH, or BENCH_PEER=/path/to/it, or else
# built here once (go install of github.com/aws/amazon-ec2-metadata-mock,
# cached in ${XDG_CACHE_HOME:-~/.cache}/imds-proxy-bench); BENCH_PEER=none
# leaves it out, as does a failed build (no module proxy reachable).
#
#   scripts/bench-wrk.sh                   # wrk -t1 -c32 -d3s, 5 rounds
#   BENCH_DURATION=10s BENCH_ROUNDS=3 BENCH_MANY=0 BENCH_PEER=none scripts/bench-wrk.sh
#
# The last lines are a table (figure, median throughput ratio, median CPU
# ratio, CPU µs per request of each side, goal) for make bench; with
# BENCH_INPROCESS=FILE, the output of the in-process ratio benchmarks
# (BenchmarkMetadataGETRatio, BenchmarkCredentialsGETRatio, any -count),
# their medians are rows of it too (and BenchmarkDockerEvent's time); with
# BENCH_RSS=FILE (the output of scripts/bench-rss.sh) and
# BENCH_BINARY=PATH (the stripped binary), the footprint rows too.
set -euo pipefail

duration=${BENCH_DURATION:-3s}
conns=${BENCH_CONNS:-32}
threads=${BENCH_THREADS:-1}
many=${BENCH_MANY:-10000}
rounds=${BENCH_ROUNDS:-5}
peer=${BENCH_PEER:-}
peer_version=v1.13.0
export GOMAXPROCS=1
server_pin=() client_pin=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
	server_pin=(taskset -c 0) client_pin=(taskset -c 1)
fi
instance_id=i-0a1b2c3d4e5f60001
role=bench-role
meta_path=/latest/meta-data/instance-id
creds_path=/latest/meta-data/iam/security-credentials/$role
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
case $peer in
none) peer= ;;
"")
	if command -v ec2-metadata-mock >/dev/null; then
		peer=$(command -v ec2-metadata-mock)
	else
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/imds-proxy-bench
		if [[ ! -x $cache/ec2-metadata-mock ]]; then
			echo "building Amazon's IMDS mock ($peer_version) into $cache" >&2
			GOBIN=$cache go install "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@$peer_version" >&2 ||
				echo "bench-wrk: cannot build amazon-ec2-metadata-mock: measured without it" >&2
		fi
		[[ -x $cache/ec2-metadata-mock ]] && peer=$cache/ec2-metadata-mock
	fi
	;;
esac

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

# start_bare NAME ARGS...: a bare server; sets addr and pid.
start_bare() {
	local name=$1
	shift
	"${server_pin[@]}" "$work/bench-baseline" --listen 127.0.0.1:0 "$@" >"$work/$name.out" 2>&1 </dev/null &
	pid=$!
	pids+=("$pid")
	addr=$(await_addr "$work/$name.out" "$pid" '^127\.0\.0\.1:') || {
		cat "$work/$name.out" >&2
		exit 1
	}
}

# start_proxy CONFIG LOG: imds-proxy from CONFIG logging to LOG; sets addr
# and pid. The configuration sits in a directory of its own: the proxy
# watches it for edits, and must not be woken by the log.
start_proxy() {
	"${server_pin[@]}" "$work/imds-proxy" --config "$1" --listen 127.0.0.1:0 --admin-listen off \
		--log-format json >/dev/null 2>"$2" </dev/null &
	pid=$!
	pids+=("$pid")
	addr=$(await_addr "$2" "$pid" '"listener":"imds"') || {
		cat "$2" >&2
		exit 1
	}
}

mkdir "$work/one" "$work/many"
cat >"$work/one/imds-proxy.yaml" <<EOF
tenants:
  - name: bench
    sources: ["127.0.0.1"]
    instance: {instance_id: $instance_id}
    credentials: {mock: true, role_name: $role}
    limits: {requests_per_second: 1000000000, burst: 1000000000, connections: 4096}
EOF

declare -A url cpid
start_bare bare --instance-id "$instance_id"
url[bare]=http://$addr$meta_path cpid[bare]=$pid
start_proxy "$work/one/imds-proxy.yaml" "$proxy_log"
url[proxy]=http://$addr$meta_path cpid[proxy]=$pid
url[proxy-creds]=http://$addr$creds_path cpid[proxy-creds]=$pid
proxy=$addr

# The credentials document as the proxy serves it, for the bare server.
for _ in $(seq 100); do
	if curl -sf "http://$proxy$creds_path" -o "$work/creds.json" && grep -q '"Code" : "Success"' "$work/creds.json"; then
		break
	fi
	sleep 0.1
done
grep -q '"Code" : "Success"' "$work/creds.json" || {
	echo "bench-wrk: no credentials from the proxy: $(cat "$work/creds.json")" >&2
	exit 1
}
start_bare bare-creds --body-file "$work/creds.json"
url[bare-creds]=http://$addr$creds_path cpid[bare-creds]=$pid

rss() { awk '/^VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
if [[ $many -gt 1 ]]; then
	head -n6 "$work/one/imds-proxy.yaml" >"$work/many/imds-proxy.yaml"
	awk -v n="$many" 'BEGIN { for (i = 1; i < n; i++) printf "  - {name: t%d, sources: [\"127.%d.%d.%d\"]}\n", i, 1 + int(i / 65536), int(i / 256) % 256, i % 256 }' >>"$work/many/imds-proxy.yaml"
	t0=$(date +%s%N)
	start_proxy "$work/many/imds-proxy.yaml" "$proxy_log.many"
	t1=$(date +%s%N)
	url[many]=http://$addr$meta_path cpid[many]=$pid
	start_ms=$(((t1 - t0) / 1000000))
	sleep 2
	echo "imds-proxy with $many tenants: listening $start_ms ms after start; idle RSS $(rss "$pid")"
fi
if [[ -n $peer ]]; then
	port=$((20000 + RANDOM % 20000))
	(cd "$work" && exec "${server_pin[@]}" "$peer" --hostname 127.0.0.1 --port "$port" >"$work/peer.out" 2>&1 </dev/null) &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$port$meta_path" >/dev/null 2>&1 && break
		sleep 0.1
	done
	url[peer]=http://127.0.0.1:$port$meta_path cpid[peer]=$pid
fi

# Equal responses (Date aside), or the comparison means nothing. The mock
# differs by design (its own instance id, no Server header): it is
# compared as it is.
if command -v curl >/dev/null; then
	strip() { tr -d '\r' | grep -v -i '^date:' | sort; }
	for pair in bare:proxy bare-creds:proxy-creds; do
		a=${pair%:*} b=${pair#*:}
		want=$(curl -s -D - "${url[$a]}" | strip) got=$(curl -s -D - "${url[$b]}" | strip)
		if [[ $want != "$got" ]]; then
			printf 'bench-wrk: responses differ\n%s:\n%s\n%s:\n%s\n' "$a" "$want" "$b" "$got" >&2
			exit 1
		fi
	done
fi

# cpu_ticks PID: user+system CPU time of PID so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure NAME: run wrk against NAME's URL; set req_s[NAME] and
# cpu_us[NAME] (its server's CPU time per request, µs) for this round.
declare -A req_s cpu_us
measure() {
	local name=$1 out before after n
	before=$(cpu_ticks "${cpid[$name]}")
	out=$(timeout 120 "${client_pin[@]}" wrk "-t$threads" "-c$conns" "-d$duration" "${url[$name]}")
	after=$(cpu_ticks "${cpid[$name]}")
	if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
		echo "bench-wrk: errors against ${url[$name]}: the rate below is not of 200s" >&2
		grep 'Non-2xx\|Socket errors\|requests in' <<<"$out" >&2
	fi
	req_s[$name]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	n=$(awk '/requests in/ { print $1 }' <<<"$out")
	cpu_us[$name]=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The comparisons: figure name, this side, the side it is measured against.
comparisons=("metadata GET vs bare:proxy:bare" "credentials GET vs bare:proxy-creds:bare-creds")
[[ -n ${url[peer]:-} ]] && comparisons+=("metadata GET vs Amazon's mock:proxy:peer" "bare net/http vs Amazon's mock (the limit of the one above):bare:peer")
[[ -n ${url[many]:-} ]] && comparisons+=("$many tenants vs 1 (metadata GET):many:proxy")
order=(bare proxy bare-creds proxy-creds)
[[ -n ${url[peer]:-} ]] && order+=(peer)
[[ -n ${url[many]:-} ]] && order+=(many)

# A warm-up, not counted: connections, caches and heaps settle first.
for name in "${order[@]}"; do
	"${client_pin[@]}" wrk "-t$threads" "-c$conns" -d1s "${url[$name]}" >/dev/null
done
echo "wrk -t$threads -c$conns -d$duration per server and round, $rounds rounds${server_pin:+; servers on CPU 0 (GOMAXPROCS=1), wrk on CPU 1}"
declare -A tputs cpurs cpus
for round in $(seq "$rounds"); do
	names=("${order[@]}")
	if ((round % 2 == 0)); then
		names=()
		for ((i = ${#order[@]} - 1; i >= 0; i--)); do names+=("${order[i]}"); done
	fi
	line="round $round:"
	for name in "${names[@]}"; do
		measure "$name"
		cpus[$name]+=" ${cpu_us[$name]}"
		line+=" $name ${req_s[$name]} req/s ${cpu_us[$name]} µs/req;"
	done
	echo "$line"
	for c in "${comparisons[@]}"; do
		IFS=: read -r _ this other <<<"$c"
		tputs[$c]+=" $(ratio "${req_s[$this]}" "${req_s[$other]}")"
		cpurs[$c]+=" $(ratio "${cpu_us[$other]}" "${cpu_us[$this]}")"
	done
done

if [[ -n ${url[many]:-} ]]; then
	echo "imds-proxy with $many tenants: RSS after the rounds $(rss "${cpid[many]}")"
fi
lines=$(grep -c '"path":"/latest/meta-data/' "$proxy_log" || true)
dropped=$({ grep -oE 'log buffer full, [0-9]+' "$proxy_log" || true; } | awk '{ s += $4 } END { print s + 0 }')
echo "imds-proxy access log: $lines lines in $proxy_log, $dropped dropped"

goal() {
	case $1 in
	*"vs bare") echo "≥ 0.90" ;;
	*"the limit"*) echo "—" ;;
	*"Amazon's mock") echo "≥ 1.5" ;;
	*"vs 1"*) echo "≥ 0.95" ;;
	esac
}
echo
echo "| figure (wrk, median of $rounds rounds) | throughput ratio | CPU ratio | server CPU µs/req (this / other) | goal |"
echo "|---|---|---|---|---|"
for c in "${comparisons[@]}"; do
	IFS=: read -r figure this other <<<"$c"
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	echo "| $figure | $(median ${tputs[$c]}) | $(median ${cpurs[$c]}) | $(median ${cpus[$this]}) / $(median ${cpus[$other]}) | $(goal "$figure") |"
done
if [[ -n ${BENCH_INPROCESS:-} && -s $BENCH_INPROCESS ]]; then
	# inprocess BENCHMARK METRIC: the median of METRIC over BENCHMARK's runs.
	inprocess() {
		# shellcheck disable=SC2046 # one value a run
		median $(awk -v b="$1" -v m="$2" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i <= NF; i++) if ($i == m) print $(i - 1) }' "$BENCH_INPROCESS")
	}
	for b in "BenchmarkMetadataGETRatio:metadata GET vs bare" "BenchmarkCredentialsGETRatio:credentials GET vs bare"; do
		name=${b%%:*} figure=${b#*:}
		if grep -q "^$name" "$BENCH_INPROCESS"; then
			echo "| $figure (in process, go test client) | $(inprocess "$name" median-ratio) | $(inprocess "$name" cpu-ratio) | process CPU, client included | $(goal "$figure") |"
		fi
	done
	if grep -q '^BenchmarkDockerEvent' "$BENCH_INPROCESS"; then
		echo "| a Docker event at 10,000 tenants, to its address served (BenchmarkDockerEvent) | $(inprocess BenchmarkDockerEvent ns/op | awk '{ printf "%.2f s", $1 / 1e9 }') | — | — | — |"
	fi
fi
# The footprint, for the table to hold every figure: the start above, the
# RSS of scripts/bench-rss.sh (its output in BENCH_RSS) and the size of the
# stripped binary (BENCH_BINARY, as make build makes it).
if [[ -n ${start_ms:-} ]]; then
	echo "| $many tenants: start to listening | $start_ms ms | — | — | ≤ 1 s |"
fi
if [[ -n ${BENCH_RSS:-} && -s $BENCH_RSS ]]; then
	idle_rss=$(grep -oE 'idle RSS [0-9.]+ MiB' "$BENCH_RSS" | grep -oE '[0-9.]+' | head -n1)
	asked_rss=$(grep 'after every tenant was asked' "$BENCH_RSS" | grep -oE '[0-9.]+ MiB \(anonymous' | grep -oE '^[0-9.]+' | head -n1)
	echo "| RSS with $(grep -oE '^[0-9]+ tenants' "$BENCH_RSS" | head -n1), idle / after each was asked (scripts/bench-rss.sh) | $idle_rss / $asked_rss MiB | — | — | ≤ 64 MiB |"
fi
if [[ -n ${BENCH_BINARY:-} && -f $BENCH_BINARY ]]; then
	echo "| stripped binary ($BENCH_BINARY) | $(stat -c %s "$BENCH_BINARY" | awk '{ printf "%.2f MB", $1 / 1e6 }') | — | — | ≤ 16 MB |"
fi
