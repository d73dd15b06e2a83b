#!/usr/bin/env bash
# Benchmarks Latch on Postgres on this machine: builds latch and the load generator (cmd/latch-bench),
# starts latch on a fresh database with its mail going to the generator's SMTP listener, runs every
# scenario of latch-bench, samples the server's memory during a 200-client login storm, then runs
# pgbench on the same schema with the refresh rotation: as the issue's reference transaction, as
# Latch's own one statement (one rotation alone), and as Latch's grouped statement with 1 and 8
# rotations per statement (what a busy Latch sends: internal/store, rotatePostgresBatch). It ends with a
# summary: the refresh figures against the reference transaction (the issue's ratio, target >= 0.8).
#
# Usage: scripts/bench.sh            (from anywhere in the repo)
# Knobs (environment):
#   DURATION=20s   measured time of each run (Go duration: 500ms, 20s, 1m)
#   RUNS=1         repetitions of every run; report the median
#   WARMUP=2s      unmeasured time before each run
#   PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres   where the database server is (psql, pgbench)
#   SMTP_PORT=2525 the generator's SMTP listener (a free port is used when 2525 is taken)
#   RESULTS=dir    where the JSON reports go (default: a new temporary directory)
#   SCENARIOS="refresh-16 refresh-64 me-64 verify-64 mixed-16 login-8 login-storm-200"
#                  the generator runs to do (default all of them; pgbench always runs)
#   LATCH_DATABASE_BATCH_MAX, LATCH_DATABASE_BATCHES_IN_FLIGHT, ... any LATCH_* setting is passed on
#                  to the server (BATCH_MAX=1 measures Latch without grouping)
# Needs: go, psql, pgbench, curl.
set -euo pipefail

DURATION=${DURATION:-20s}
RUNS=${RUNS:-1}
WARMUP=${WARMUP:-2s}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
SMTP_PORT=${SMTP_PORT:-2525}
SCENARIOS=${SCENARIOS:-refresh-16 refresh-64 me-64 verify-64 mixed-16 login-8 login-storm-200}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/latch-bench.XXXXXX")
RESULTS=${RESULTS:-$work/results}
mkdir -p "$RESULTS"
db="latch_bench_$$_$RANDOM"
latch_pid=""

cleanup() {
	local status=$?
	if [[ -n $latch_pid ]] && kill -0 "$latch_pid" 2>/dev/null; then
		kill -TERM "$latch_pid" 2>/dev/null || true
		wait "$latch_pid" 2>/dev/null || true
	fi
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -f "$work/latch" "$work/latch-bench"
	if ((status != 0)) && [[ -f $work/latch.log ]]; then
		echo "--- last lines of the latch log ---" >&2
		tail -n 30 "$work/latch.log" >&2
	fi
	echo "JSON reports kept in $RESULTS; latch log in $work/latch.log" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# seconds turns a Go duration of whole seconds or minutes into seconds for pgbench -T (at least 1).
seconds() {
	local d=$1
	case $d in
	*ms) echo 1 ;;
	*m) echo $((${d%m} * 60)) ;;
	*s) local s=${d%s}; s=${s%%.*}; echo $((s > 0 ? s : 1)) ;;
	*) echo "DURATION must be a Go duration like 20s or 1m, not $d" >&2; exit 2 ;;
	esac
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if port_free "$p"; then echo "$p"; return; fi
	done
	echo "no free port found" >&2
	exit 1
}

echo "== building latch and latch-bench"
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/latch" ./cmd/latch && CGO_ENABLED=0 go build -o "$work/latch-bench" ./cmd/latch-bench)
latch=$work/latch
latch_bench=$work/latch-bench

if ! port_free "$SMTP_PORT"; then
	SMTP_PORT=$(free_port)
	echo "== port 2525 is taken; the generator's SMTP listener uses $SMTP_PORT"
fi
http_port=$(free_port)
target=http://127.0.0.1:$http_port

echo "== creating database $db"
psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null
db_url="postgres://$PGUSER@$PGHOST:$PGPORT/$db?sslmode=disable"

echo "== starting latch on $target (log: $work/latch.log)"
# From $work, where no config.yaml is: the environment below is the whole configuration.
(cd "$work" && LATCH_DATABASE_URL=$db_url \
	LATCH_SERVER_ADDR=127.0.0.1:$http_port \
	LATCH_MAIL_DRIVER=smtp LATCH_MAIL_SMTP_HOST=127.0.0.1 LATCH_MAIL_SMTP_PORT=$SMTP_PORT LATCH_MAIL_SMTP_TLS=none \
	LATCH_RATELIMIT_IP_PER_MINUTE=0 LATCH_CODES_RESEND_COOLDOWN=0s LATCH_CODES_MAX_PER_HOUR=1000000 \
	LATCH_SECRETS_ENCRYPTION_KEY_FILE="$work/latch.kek" LATCH_LOG_LEVEL=info \
	exec "$latch" serve >"$work/latch.log" 2>&1) &
latch_pid=$!
for i in $(seq 1 100); do
	if curl -fsS -o /dev/null "$target/readyz" 2>/dev/null; then break; fi
	if ! kill -0 "$latch_pid" 2>/dev/null; then echo "latch exited at start-up" >&2; exit 1; fi
	if ((i == 100)); then echo "latch not ready after 20s" >&2; exit 1; fi
	sleep 0.2
done
echo "== latch ready (pid $latch_pid); $(nproc) CPUs; DURATION=$DURATION RUNS=$RUNS"

# bench NAME SCENARIO CONCURRENCY: one generator run, text to stdout and $RESULTS/NAME-RUN.txt, JSON to
# $RESULTS/NAME-RUN.json. Runs not named in SCENARIOS are skipped.
bench() {
	local name=$1 scenario=$2 clients=$3 run
	[[ " $SCENARIOS " == *" $name "* ]] || return 0
	for run in $(seq 1 "$RUNS"); do
		echo
		echo "== $name (run $run of $RUNS, $(date +%T))"
		"$latch_bench" --target "$target" --smtp-addr "127.0.0.1:$SMTP_PORT" --scenario "$scenario" \
			--duration "$DURATION" --warmup "$WARMUP" --concurrency "$clients" \
			--out "$RESULTS/$name-$run.json" | tee "$RESULTS/$name-$run.txt"
	done
}

# median reads numbers, one a line, and prints their median (the lower middle one of an even count).
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }

bench refresh-16 refresh 16
bench refresh-64 refresh 64
bench me-64 me 64
bench verify-64 verify 64
bench mixed-16 mixed 16
bench login-8 login 8

# The storm: sample the server's resident memory while 200 clients log in at once.
rss_file=$work/rss-max
echo 0 >"$rss_file"
(
	max=0
	while kill -0 "$latch_pid" 2>/dev/null; do
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$latch_pid/status" 2>/dev/null || echo 0)
		if ((rss > max)); then max=$rss; echo "$max" >"$rss_file"; fi
		sleep 0.1
	done
) &
sampler=$!
bench login-storm-200 login 200
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$latch_pid/status")
echo
if [[ " $SCENARIOS " == *" login-storm-200 "* ]]; then
	echo "== memory: largest sampled VmRSS during the storm $(($(cat "$rss_file") / 1024)) MiB; VmHWM (peak since start) $((hwm / 1024)) MiB"
fi
echo "== password hashing and grouped statements, from /metrics:"
curl -fsS "$target/metrics" | grep -E '^latch_(password_hash_wait_seconds_(sum|count)|db_batche(s|d_calls)_total)' || echo "(none exposed)"

# pgbench: one rotation per transaction, on the real schema (latch migrated it), with a
# history of used tokens so the indexes have a realistic size. In run r, client c owns session c and
# the token of generation g of its chain is sha256('r:c:g'): each transaction finds its token by hash,
# as Latch does, and every run starts fresh chains.
clients=16
echo
echo "== pgbench: refresh rotation transaction, $clients clients, $(seconds "$DURATION")s"
psql -X -q -v ON_ERROR_STOP=1 -v runs="$RUNS" -d "$db" >/dev/null <<'SQL'
INSERT INTO users (id, tenant_id, email, password_hash, email_verified_at, created_at, updated_at)
VALUES ('11111111-1111-1111-1111-111111111111', 'default', 'pgbench@example.test', 'unused', now(), now(), now());
INSERT INTO sessions (id, user_id, tenant_id, amr, created_at, last_used_at, idle_expires_at, expires_at)
SELECT md5('pgbench-session-' || s)::uuid, '11111111-1111-1111-1111-111111111111', 'default',
       'pwd otp', now(), now(), now() + interval '7 days', now() + interval '30 days'
FROM generate_series(0, 999) s;
INSERT INTO refresh_tokens (session_id, token_hash, created_at, used_at)
SELECT md5('pgbench-session-' || (g % 1000))::uuid, sha256(convert_to('history-' || g, 'UTF8')), now(), now()
FROM generate_series(1, 200000) g;
INSERT INTO refresh_tokens (session_id, token_hash, created_at)
SELECT md5('pgbench-session-' || s)::uuid, sha256(convert_to(r || ':' || s || ':0', 'UTF8')), now()
FROM generate_series(0, 999) s, generate_series(1, 4 * :runs) r;
VACUUM ANALYZE refresh_tokens;
VACUUM ANALYZE sessions;
SQL
cat >"$work/rotate.sql" <<'SQL'
\set next :gen + 1
BEGIN;
SELECT id AS parent FROM refresh_tokens
 WHERE token_hash = sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :gen::int), 'UTF8')) AND used_at IS NULL
 FOR UPDATE \gset
UPDATE refresh_tokens SET used_at = now() WHERE id = :parent;
INSERT INTO refresh_tokens (session_id, parent_id, token_hash, created_at)
VALUES (md5('pgbench-session-' || :client_id::int)::uuid, :parent,
        sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :next::int), 'UTF8')), now());
COMMIT;
\set gen :next
SQL
# pgbench_runs NAME FIRST-RUN-ID SCRIPT [VARS...]: RUNS pgbench runs, output to stdout and
# $RESULTS/pgbench-NAME-RUN.txt; run ids FIRST-RUN-ID+1.. keep every run's chains fresh.
pgbench_runs() {
	local name=$1 first=$2 script=$3 run
	shift 3
	for run in $(seq 1 "$RUNS"); do
		echo "-- pgbench run $run of $RUNS"
		pgbench -n -M prepared -c "$clients" -j 2 -T "$(seconds "$DURATION")" -D run="$((first + run))" -D gen=0 "$@" \
			-f "$script" "$db" 2>&1 | tee "$RESULTS/pgbench-$name-$run.txt" |
			grep -E '^(number of (transactions actually processed|failed)|latency average|tps)|error|abort'
	done
}
pgbench_runs naive 0 "$work/rotate.sql"

# The same rotation as Latch sends it: one statement (a data-modifying CTE), one round trip, with the
# session and user checks and the lazy session touch. Chains of runs RUNS+1..2*RUNS, so they are fresh.
cat >"$work/rotate-cte.sql" <<'SQL'
\set next :gen + 1
WITH consumed AS (
	UPDATE refresh_tokens rt
	SET used_at = CASE WHEN rt.kept THEN NULL ELSE now() END,
	    last_used_at = now()
	WHERE rt.token_hash = sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :gen::int), 'UTF8'))
	  AND rt.used_at IS NULL AND coalesce(rt.last_used_at, rt.created_at) > now() - interval '30 days'
	  AND (SELECT s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'active'
	       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = rt.session_id)
	RETURNING rt.id, rt.session_id, NOT rt.kept AS rotated
), successor AS (
	INSERT INTO refresh_tokens (session_id, parent_id, token_hash, created_at)
	SELECT session_id, id, sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :next::int), 'UTF8')), now()
	FROM consumed WHERE rotated
), touched AS (
	UPDATE sessions SET last_used_at = now(), idle_expires_at = LEAST(now() + interval '7 days', sessions.expires_at)
	FROM consumed WHERE sessions.id = consumed.session_id AND sessions.last_used_at < now() - interval '30 seconds'
)
SELECT s.id::text, s.user_id::text, s.tenant_id, u.email, u.role, s.amr, s.expires_at, c.rotated
FROM consumed c JOIN sessions s ON s.id = c.session_id JOIN users u ON u.id = s.user_id;
\set gen :next
SQL
echo
echo "== pgbench: Latch's one-statement rotation, $clients clients, $(seconds "$DURATION")s"
pgbench_runs cte "$RUNS" "$work/rotate-cte.sql"

# The grouped statement a busy Latch sends (internal/store, rotatePostgresBatch): K rotations of K
# chains in one statement and one commit. Client c owns the chains of sessions c*K .. c*K+K-1.
cat >"$work/rotate-group.sql" <<'SQL'
\set next :gen + 1
WITH input AS (
	SELECT * FROM unnest(
		ARRAY(SELECT sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int * :k + j, :gen::int), 'UTF8')) FROM generate_series(0, :k - 1) j),
		ARRAY(SELECT sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int * :k + j, :next::int), 'UTF8')) FROM generate_series(0, :k - 1) j),
		ARRAY(SELECT now() + interval '7 days' FROM generate_series(0, :k - 1) j),
		ARRAY(SELECT now() - interval '7 days' FROM generate_series(0, :k - 1) j)) WITH ORDINALITY
		AS i(old_hash, new_hash, idle_end, idle_floor, n)
	WHERE i.n >= 1 AND i.n <= :k
), consumed AS (
	UPDATE refresh_tokens rt
	SET used_at = CASE WHEN rt.kept THEN NULL ELSE now() END,
	    last_used_at = now()
	FROM input i
	WHERE rt.token_hash = i.old_hash AND rt.used_at IS NULL AND coalesce(rt.last_used_at, rt.created_at) > i.idle_floor
	  AND (SELECT s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'active'
	       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = rt.session_id)
	RETURNING i.n, i.new_hash, i.idle_end, rt.id, rt.session_id, NOT rt.kept AS rotated
), successor AS (
	INSERT INTO refresh_tokens (session_id, parent_id, token_hash, created_at)
	SELECT session_id, id, new_hash, now() FROM consumed WHERE rotated
), touched AS (
	UPDATE sessions SET last_used_at = now(), idle_expires_at = LEAST(consumed.idle_end, sessions.expires_at)
	FROM consumed WHERE sessions.id = consumed.session_id AND sessions.last_used_at < now() - interval '30 seconds'
)
SELECT c.n, s.id::text, s.user_id::text, s.tenant_id, u.email, u.role, s.amr, s.expires_at, s.created_at, c.rotated
FROM consumed c JOIN sessions s ON s.id = c.session_id JOIN users u ON u.id = s.user_id;
\set gen :next
SQL
for k in 1 8; do
	echo
	echo "== pgbench: Latch's grouped statement, $k rotation(s) per statement, $clients clients, $(seconds "$DURATION")s"
	pgbench_runs "group-$k" "$(((k == 1 ? 2 : 3) * RUNS))" "$work/rotate-group.sql" -D k="$k"
done

# The summary: medians over the runs, and the issue's ratio.
gen_median() { # NAME COLUMN: the refresh line's column (2 req/s, 6 p99 ms, 8 errors) of NAME's runs
	cat "$RESULTS/$1"-*.txt 2>/dev/null | awk -v c="$2" '$1 == "refresh" || $1 == "me" {print $c}' | median
}
pg_median() { cat "$RESULTS/pgbench-$1"-*.txt | awk '/^tps/ {print $3}' | median; }
naive=$(pg_median naive)
echo
echo "== summary (medians of $RUNS run(s) of $DURATION; pgbench at $clients clients)"
printf '%-44s %10s\n' "pgbench, reference rotation transaction" "$naive tx/s"
printf '%-44s %10s\n' "pgbench, Latch's one-statement rotation" "$(pg_median cte) tx/s"
printf '%-44s %10s\n' "pgbench, grouped statement, 1 per statement" "$(pg_median group-1) tx/s"
g8=$(pg_median group-8)
printf '%-44s %10s   (%s rotations/s)\n' "pgbench, grouped statement, 8 per statement" "$g8 tx/s" "$(awk -v t="$g8" 'BEGIN {printf "%.0f", 8 * t}')"
for name in refresh-16 refresh-64 me-64; do
	[[ -n $(ls "$RESULTS/$name"-*.txt 2>/dev/null) ]] || continue
	rps=$(gen_median "$name" 2)
	line=$(printf '%-12s %9s req/s  p99 %s ms  errors %s' "$name" "$rps" "$(gen_median "$name" 6)" "$(gen_median "$name" 8)")
	if [[ $name == refresh-* ]]; then
		line+=$(awk -v r="$rps" -v n="$naive" 'BEGIN {printf "   ratio to the reference transaction %.2f (target >= 0.80)", r / n}')
	fi
	echo "$line"
done