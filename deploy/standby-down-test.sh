#!/usr/bin/env bash
# What Latch does when the only synchronous standby goes away (docs/deploy.md, "Standby down"): a
# fresh local cluster, refresh chains through HAProxy, the standby stopped DOWN_AT seconds into the
# load and started again UP_AT seconds in. With synchronous_commit = on every commit on the primary
# then waits for a standby that is not there; this prints what the clients saw, second by second,
# and what was waiting inside Postgres and PgBouncer meanwhile.
#
# Usage: deploy/standby-down-test.sh   (rebuilds the local cluster, takes it down at the end)
# Knobs: CLIENTS=16 LOAD=45s DOWN_AT=10 UP_AT=35 TIMEOUT=60s (the clients' own request timeout;
#        longer than HAProxy's 30 s so that what the server side does is what gets measured) KEEP=1
set -euo pipefail

deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$deploy")
CLIENTS=${CLIENTS:-16}
LOAD=${LOAD:-45s}
DOWN_AT=${DOWN_AT:-10}
UP_AT=${UP_AT:-35}
TIMEOUT=${TIMEOUT:-60s}
KEEP=${KEEP:-}
export LATCH_CLUSTER_STATE=${LATCH_CLUSTER_STATE:-/tmp/latch-cluster}
STATE=$LATCH_CLUSTER_STATE
export PATH="$PATH:/usr/local/go/bin:/usr/lib/postgresql/${PG_VERSION:-15}/bin"
export PGUSER=postgres PGHOST=127.0.0.1 PGCONNECT_TIMEOUT=3

as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
log() { printf '== %s %s\n' "$(date +%T.%3N)" "$*"; }
load_pid=""
finish() {
	local status=$?
	if [[ -n $load_pid ]] && kill -0 "$load_pid" 2>/dev/null; then kill -TERM "$load_pid" 2>/dev/null || true; fi
	if [[ -z $KEEP ]]; then "$deploy/local-cluster.sh" down >/dev/null 2>&1 || true; fi
	exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

log "fresh cluster"
"$deploy/local-cluster.sh" down >/dev/null
"$deploy/local-cluster.sh" up >/dev/null
# shellcheck source=/dev/null
source "$STATE/cluster.env"
(cd "$repo" && go build -o "$STATE/bin/clustercheck" ./deploy/clustercheck)

log "refresh load: $CLIENTS chains for $LOAD, request timeout $TIMEOUT; standby down at ${DOWN_AT}s, back at ${UP_AT}s"
"$STATE/bin/clustercheck" chains -target "http://127.0.0.1:$HAPROXY_PORT" -smtp "127.0.0.1:$MAIL_SINK_PORT" \
	-clients "$CLIENTS" -duration "$LOAD" -timeout "$TIMEOUT" -retry-every 1s >"$STATE/standby-down.txt" 2>&1 &
load_pid=$!
for _ in $(seq 1 300); do
	grep -q '^load:' "$STATE/standby-down.txt" 2>/dev/null && break
	sleep 0.1
done
sleep "$DOWN_AT"
as_pg pg_ctl -D "$STATE/pg/standby/data" -m fast -w stop >/dev/null
log "standby stopped"

# What is waiting, every 5 s while the standby is away.
for ((t = DOWN_AT; t + 5 <= UP_AT; t += 5)); do
	sleep 5
	log "+$((t + 5 - DOWN_AT))s without standby:" \
		"$(psql -X -qAt -p "$PRIMARY_PORT" -d postgres -c "SELECT count(*) FILTER (WHERE wait_event = 'SyncRep') || ' backends waiting for SyncRep, ' || count(*) FILTER (WHERE state = 'active') || ' active'
			FROM pg_stat_activity WHERE datname = 'latch'")," \
		"pgbouncer clients waiting: $(psql -X -qAt -p "$PGBOUNCER_PORT" -d pgbouncer -c 'SHOW POOLS' | awk -F'|' '$1 == "latch" && $2 == "latch" {print $4}')," \
		"readyz latch-1: $(curl -s -o /dev/null -w '%{http_code} in %{time_total}s' --max-time 5 "http://127.0.0.1:${LATCH_PORTS%% *}/readyz" || true)"
done
sleep $((UP_AT - DOWN_AT - (UP_AT - DOWN_AT) / 5 * 5))
as_pg pg_ctl -D "$STATE/pg/standby/data" -l "$STATE/pg/standby/postgres.log" -w start >/dev/null
log "standby started again"

wait "$load_pid" || true
load_pid=""
cat "$STATE/standby-down.txt"
echo
echo "first errors in the first instance's log:"
grep -m 5 '"level":"ERROR"' "$STATE/latch/latch-1.log" | cut -c 1-300 || true
