#!/usr/bin/env bash
# Fault injection, on demand (not part of .ci/run): two Latch instances on a throwaway Postgres
# cluster of their own, refresh chains and registrations running through every fault, and a report
# of what the clients saw: answers by status, lost or duplicated emails, broken refresh chains.
#
# Faults, one after another (2.5 minutes in all on the fixed code; the old code, whose requests hang, takes about five):
#   Postgres restarted, then stopped for 12 s, under refresh load; a table lock held for 12 s;
#   the mail server answering 550, hanging after DATA, tarpitting every reply, and taking 9.5 s to
#   accept each message while registrations pile up (a backlog that outlasts an outbox lease);
#   kill -9 of one instance under load, then SIGTERM of the other.
#
# Everything listens on 127.0.0.1 only and on ports of its own (CHAOS_PORT, default 57400, and the
# next few); the cluster lives in a temporary directory and is removed at the end. The machine's
# own Postgres (and the one on 5432 the tests use) is never touched.
#
# Usage: scripts/chaos.sh
# Knobs (environment):
#   LATCH_BIN=path   run this latch binary instead of building the repository's (how the figures
#                    "before" in docs/reliability.md were taken: a build of the commit before)
#   CHAOS_PORT=57400 first port; Postgres takes it, the instances and the mail sink the next ones
#   CHAINS=16        refresh chains; each refreshes as fast as it gets answers
#   PG_VERSION=15    which /usr/lib/postgresql/<v>/bin to use
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
PG_VERSION=${PG_VERSION:-15}
pgbin=/usr/lib/postgresql/$PG_VERSION/bin
CHAOS_PORT=${CHAOS_PORT:-57400}
CHAINS=${CHAINS:-16}
[[ -x $pgbin/initdb ]] || { echo "chaos: no Postgres $PG_VERSION in $pgbin" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/latch-chaos.XXXXXX")
chmod 755 "$work"
pgdata=$work/pg
# Postgres refuses to run as root: as root, the cluster belongs to the postgres user.
as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	local status=$?
	as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
	if ((status != 0)); then
		for f in "$work"/latch-*.log; do
			[[ -f $f ]] && { echo "--- last lines of $(basename "$f")"; tail -n 20 "$f"; }
		done
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== throwaway Postgres on 127.0.0.1:$CHAOS_PORT ($pgdata)"
mkdir -p "$pgdata"
if ((EUID == 0)); then chown postgres "$pgdata"; fi
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -A trust --no-instructions >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log" >&2; exit 1; }
cat >>"$pgdata/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $CHAOS_PORT
unix_socket_directories = '$pgdata'
max_connections = 100
EOF
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w start >/dev/null
as_pg "$pgbin/psql" -X -q -h 127.0.0.1 -p "$CHAOS_PORT" -U postgres -d postgres -c "CREATE DATABASE latch" >/dev/null

latch=${LATCH_BIN:-}
if [[ -z $latch ]]; then
	echo "== building latch"
	latch=$work/latch
	(cd "$repo" && go build -o "$latch" ./cmd/latch)
fi
echo "== building the chaos driver"
(cd "$repo" && go build -o "$work/chaos" ./scripts/chaos)

"$work/chaos" -latch "$latch" -work "$work" -pgdata "$pgdata" -pgbin "$pgbin" -port "$CHAOS_PORT" -chains "$CHAINS" \
	-as-postgres="$((EUID == 0))"
