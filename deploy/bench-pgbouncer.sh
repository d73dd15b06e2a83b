#!/usr/bin/env bash
# Refresh throughput of one Latch instance on the local cluster (deploy/local-cluster.sh up), once
# per way of reaching Postgres, interleaved so that load from anything else on the machine falls on
# every mode alike:
#
#   direct/cache_statement    straight to the primary, pgx's named prepared statements (the default)
#   direct/exec               straight to the primary, unnamed statements (isolates the mode's cost)
#   pgbouncer/exec            through PgBouncer, unnamed statements, types inferred, text format
#   pgbouncer/cache_describe  through PgBouncer, database.pgbouncer: true (what Latch does there:
#                             unnamed statements, binary, descriptions cached per connection)
#   pgbouncer/simple_protocol through PgBouncer, client-side interpolation, no extended protocol
#   pgbouncer/cache_statement through PgBouncer with named prepared statements: expected to fail
#
# Each run starts a fourth instance on BENCH_PORT with that database URL, runs the load generator's
# refresh scenario against it, and stops it. Output: one line per run, then medians per mode. Besides
# requests/s (which depends on whatever else the machine runs), each line gives the CPU time spent per
# refresh by that Latch instance, by both Postgres nodes (backends, walsender, standby replay:
# the postmasters' own and their children's ticks) and by PgBouncer, and the WAL written per
# refresh: figures that do not depend on the load from elsewhere, for capacity planning. They cover
# the whole run including the generator's sign-ups (16 argon2 hashes, about 2 % of the total).
#
# Knobs: DURATION=15s WARMUP=2s RUNS=3 CONCURRENCY=16 BENCH_PORT=10964 MODES="..." (names above)
# Needs: the cluster up, jq, go (builds cmd/latch-bench, the load generator, into the state directory).
set -euo pipefail

deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${LATCH_CLUSTER_STATE:-/tmp/latch-cluster}
[[ -f $STATE/cluster.env ]] || { echo "the local cluster is not up (deploy/local-cluster.sh up)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$STATE/cluster.env"
export PATH="$PATH:/usr/local/go/bin:/usr/lib/postgresql/$PG_VERSION/bin"
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-2s}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-16}
BENCH_PORT=${BENCH_PORT:-10964}
MODES=${MODES:-"direct/cache_statement direct/exec pgbouncer/exec pgbouncer/cache_describe pgbouncer/simple_protocol pgbouncer/cache_statement"}
latch=$STATE/bin/latch
bench=$STATE/bin/latch-bench
repo=$(dirname "$deploy")
if [[ ! -x $bench ]]; then (cd "$repo" && CGO_ENABLED=0 go build -o "$bench" ./cmd/latch-bench); fi
results=$(mktemp -d "${TMPDIR:-/tmp}/latch-bench-pgbouncer.XXXXXX")
pid=""

cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# url_and_flag MODE: the database URL and the database.pgbouncer value for a mode.
url_and_flag() {
	local via=${1%/*} mode=${1#*/} port=$PRIMARY_PORT flag=false
	if [[ $via == pgbouncer ]]; then port=$PGBOUNCER_PORT; fi
	if [[ $1 == pgbouncer/cache_describe ]]; then
		# What an operator writes: the flag alone, Latch picks the mode.
		echo "postgres://latch@127.0.0.1:$port/latch?sslmode=disable true"
		return
	fi
	echo "postgres://latch@127.0.0.1:$port/latch?sslmode=disable&default_query_exec_mode=$mode $flag"
}

# ticks PID...: user+system CPU ticks of the processes, plus those of their reaped children.
ticks() {
	local pid sum=0
	for pid in "$@"; do
		[[ -r /proc/$pid/stat ]] || continue
		sum=$((sum + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat")))
	done
	echo "$sum"
}
# pg_ticks: both Postgres nodes, every process (the postmasters and their live children).
pg_ticks() {
	local node pm pids=()
	for node in primary standby; do
		pm=$(head -n 1 "$STATE/pg/$node/data/postmaster.pid" 2>/dev/null) || continue
		pids+=("$pm")
		mapfile -t -O "${#pids[@]}" pids < <(pgrep -P "$pm")
	done
	ticks "${pids[@]}"
}
hz=$(getconf CLK_TCK)
wal_lsn() { psql -X -qAt -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -c "SELECT pg_current_wal_lsn() - '0/0'"; }

printf '%-27s %4s %9s %8s %8s %25s %8s  %s\n' mode run 'req/s' 'p50 ms' 'p99 ms' 'CPU ms/refresh latch/pg/pgb' 'WAL B' errors
for run in $(seq 1 "$RUNS"); do
	for m in $MODES; do
		read -r url flag < <(url_and_flag "$m")
		env -u LATCH_CLUSTER_STATE "LATCH_SERVER_ADDR=127.0.0.1:$BENCH_PORT" "LATCH_DATABASE_URL=$url" "LATCH_DATABASE_PGBOUNCER=$flag" \
			"LATCH_MAIL_SMTP_PORT=$MAIL_SINK_PORT" "LATCH_SECRETS_ENCRYPTION_KEY_FILE=$STATE/latch/latch.kek" LATCH_LOG_LEVEL=warn \
			"$latch" --config "$deploy/latch/latch.yaml" serve >"$results/${m//\//-}-$run.log" 2>&1 &
		pid=$!
		for _ in $(seq 1 100); do
			curl -fsS -o /dev/null "http://127.0.0.1:$BENCH_PORT/readyz" 2>/dev/null && break
			sleep 0.2
		done
		out=$results/${m//\//-}-$run.json
		bouncer_pid=$(head -n 1 "$STATE/pgbouncer/pgbouncer.pid")
		t_latch=$(ticks "$pid") t_pg=$(pg_ticks) t_pgb=$(ticks "$bouncer_pid") wal=$(wal_lsn)
		"$bench" --target "http://127.0.0.1:$BENCH_PORT" --smtp-addr "127.0.0.1:$MAIL_SINK_PORT" \
			--scenario refresh --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" \
			--json --out "$out" >/dev/null 2>"$results/${m//\//-}-$run.bench.err" || true
		t_latch=$(($(ticks "$pid") - t_latch)) t_pg=$(($(pg_ticks) - t_pg)) t_pgb=$(($(ticks "$bouncer_pid") - t_pgb)) wal=$(($(wal_lsn) - wal))
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
		if [[ -s $out ]] && jq -e '.scenarios[0].endpoints' "$out" >/dev/null 2>&1; then
			jq -r --arg m "$m" --arg r "$run" '.scenarios[0].endpoints[] | select(.endpoint == "refresh") |
				[$m, $r, (.rps | floor), .latency.p50Ms, .latency.p99Ms, (.errors | tostring), .requests] | @tsv' "$out" |
				awk -F'\t' -v hz="$hz" -v tl="$t_latch" -v tp="$t_pg" -v tb="$t_pgb" -v wal="$wal" '{
					ms = 1000 / hz / $7
					printf "%-27s %4s %9s %8.1f %8.1f %11.3f/%.3f/%.3f %8d  %s\n", $1, $2, $3, $4, $5, tl * ms, tp * ms, tb * ms, wal / $7, $6
				}' | tee -a "$results/lines"
		else
			printf '%-27s %4s  failed: %s; first server error: %s\n' "$m" "$run" \
				"$(tail -n 1 "$results/${m//\//-}-$run.bench.err")" \
				"$(grep -m 1 -o '"err":"[^"]*' "$results/${m//\//-}-$run.log" | cut -c 8-160)" | tee -a "$results/lines"
		fi
	done
done

echo
echo "medians of $RUNS runs ($CONCURRENCY clients, $DURATION each):"
for m in $MODES; do
	awk -v m="$m" '$1 == m && $3 ~ /^[0-9]+$/ {print $3}' "$results/lines" | sort -n |
		awk -v m="$m" '{v[NR] = $1} END {if (NR) printf "%-27s %9d req/s\n", m, v[int((NR + 1) / 2)]; else printf "%-27s %9s\n", m, "no run succeeded"}'
done
echo "reports and logs: $results"
