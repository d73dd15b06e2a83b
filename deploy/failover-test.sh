#!/usr/bin/env bash
# Failover rehearsal on the local cluster (docs/deploy.md, "Failover"): a fresh cluster, the
# cross-instance exactly-once checks, then refresh load through HAProxy while the primary is lost
# and the standby takes over. Prints answers by status, how long refreshes failed, and whether every
# refresh chain continued afterwards. Fails if an acknowledged rotation was lost or a check failed.
#
# Usage: deploy/failover-test.sh   (rebuilds the local cluster: any running one is taken down first)
#
# Knobs (environment):
#   VIA=pgbouncer     pgbouncer: Latch -> PgBouncer -> primary; the failover repoints PgBouncer.
#                     direct: Latch uses the multi-host URL straight to both nodes
#                     (target_session_attrs=read-write) and finds the new primary by itself.
#   ORDER=promote-first
#                     promote-first: promote the standby while the old primary still runs (its
#                     commits then wait for a synchronous standby that is gone), stop the old primary,
#                     repoint. crash: the old primary dies first (pg_ctl stop -m immediate), then the
#                     standby is promoted and PgBouncer repointed.
#   CLIENTS=32 LOAD=40s FAIL_AT=10   chains, length of the load phase, seconds into it to fail over
#   KEEP=1            leave the (failed-over) cluster up for a look; otherwise it is taken down
set -euo pipefail

deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$deploy")
VIA=${VIA:-pgbouncer}
ORDER=${ORDER:-promote-first}
CLIENTS=${CLIENTS:-32}
LOAD=${LOAD:-40s}
FAIL_AT=${FAIL_AT:-10}
KEEP=${KEEP:-}
export LATCH_CLUSTER_STATE=${LATCH_CLUSTER_STATE:-/tmp/latch-cluster}
STATE=$LATCH_CLUSTER_STATE
export PATH="$PATH:/usr/local/go/bin:/usr/lib/postgresql/${PG_VERSION:-15}/bin"
export PGUSER=postgres PGHOST=127.0.0.1 PGCONNECT_TIMEOUT=3
case $VIA in pgbouncer | direct) ;; *) echo "VIA must be pgbouncer or direct" >&2; exit 2 ;; esac
case $ORDER in promote-first | crash) ;; *) echo "ORDER must be promote-first or crash" >&2; exit 2 ;; esac

as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
log() { printf '== %s %s\n' "$(date +%T.%3N)" "$*"; }
started=$(date +%s)
load_pid=""

finish() {
	local status=$?
	if [[ -n $load_pid ]] && kill -0 "$load_pid" 2>/dev/null; then kill -TERM "$load_pid" 2>/dev/null || true; fi
	if [[ -z $KEEP ]]; then "$deploy/local-cluster.sh" down >/dev/null 2>&1 || true; fi
	echo "failover test: $(($(date +%s) - started)) s, exit $status"
}
trap finish EXIT
trap 'exit 130' INT TERM

log "fresh cluster (Latch via $VIA)"
"$deploy/local-cluster.sh" down >/dev/null
DB_VIA=$VIA "$deploy/local-cluster.sh" up | grep -v '^== '
# shellcheck source=/dev/null
source "$STATE/cluster.env"
(cd "$repo" && go build -o "$STATE/bin/clustercheck" ./deploy/clustercheck)
instances=""
for p in $LATCH_PORTS; do instances+="${instances:+,}http://127.0.0.1:$p"; done
check_args=(-target "http://127.0.0.1:$HAPROXY_PORT" -smtp "127.0.0.1:$MAIL_SINK_PORT")

log "exactly-once checks across the instances"
"$STATE/bin/clustercheck" exactly-once "${check_args[@]}" -instances "$instances" \
	-db "postgres://latch@127.0.0.1:$PRIMARY_PORT/latch?sslmode=disable" | tee "$STATE/exactly-once.txt"
passed=$(grep -c '^PASS' "$STATE/exactly-once.txt" || true)

log "refresh load: $CLIENTS chains for $LOAD through HAProxy; failover at ${FAIL_AT}s ($ORDER)"
"$STATE/bin/clustercheck" chains "${check_args[@]}" -clients "$CLIENTS" -duration "$LOAD" \
	-out "$STATE/failover-report.json" >"$STATE/failover-load.txt" 2>&1 &
load_pid=$!
# The chains' setup (sign-ups) comes first; the load phase starts when it says so.
for _ in $(seq 1 300); do
	grep -q '^load:' "$STATE/failover-load.txt" 2>/dev/null && break
	kill -0 "$load_pid" 2>/dev/null || { cat "$STATE/failover-load.txt"; exit 1; }
	sleep 0.1
done
sleep "$FAIL_AT"

primary=$STATE/pg/primary/data standby=$STATE/pg/standby/data
t0=$(date +%s.%N)
since() { awk -v now="$(date +%s.%N)" -v t0="$t0" 'BEGIN { printf "%.2f s", now - t0 }'; }
stop_old_primary() {
	local mode=$1
	as_pg pg_ctl -D "$primary" -m "$mode" -w -t 30 stop >/dev/null
	log "old primary stopped (-m $mode) at +$(since)"
}
promote() {
	as_pg pg_ctl -D "$standby" -w -t 30 promote >/dev/null
	log "standby promoted at +$(since); read-only: $(psql -X -qAt -p "$STANDBY_PORT" -d postgres -c 'SHOW transaction_read_only')"
}
repoint() {
	[[ $VIA == pgbouncer ]] || { log "no repointing: the instances' multi-host URL finds the new primary"; return; }
	# The same line local-cluster.sh writes, with the new primary's port; RELOAD makes PgBouncer
	# open new server connections there (those to the old primary are gone already).
	sed "s/port=$PRIMARY_PORT /port=$STANDBY_PORT /" "$STATE/pgbouncer/databases.ini" | as_pg tee "$STATE/pgbouncer/databases.ini.new" >/dev/null
	as_pg mv "$STATE/pgbouncer/databases.ini.new" "$STATE/pgbouncer/databases.ini"
	psql -X -q -p "$PGBOUNCER_PORT" -d pgbouncer -c RELOAD
	log "pgbouncer repointed to :$STANDBY_PORT at +$(since)"
}
log "failover begins"
if [[ $ORDER == crash ]]; then
	stop_old_primary immediate
	promote
else
	promote
	stop_old_primary fast
fi
repoint

log "waiting for the load phase to end"
wait "$load_pid" && load_status=0 || load_status=$?
load_pid=""
cat "$STATE/failover-load.txt"
echo
"$deploy/local-cluster.sh" status
if ((load_status != 0)); then
	echo "FAIL: the refresh chains reported an error (exit $load_status)" >&2
	echo "failover: $passed passed, 1 failed"
	exit 1
fi
echo "PASS: no acknowledged rotation lost, no chain stuck ($VIA, $ORDER)"
echo "failover: $((passed + 1)) passed, 0 failed"
