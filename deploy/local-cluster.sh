#!/usr/bin/env bash
# The multi-instance topology of SPEC §14 on one machine, for trying it, benchmarking it and
# rehearsing failover (docs/deploy.md):
#
#   clients -> HAProxy :10960 -> Latch x3 :10961-10963 -> PgBouncer :56432 (transaction pooling)
#                                                          -> Postgres primary :55432
#                                                               | synchronous streaming replication
#                                                             Postgres hot standby :55433
#
# Usage: deploy/local-cluster.sh up | down | status
#
# Everything lives under the state directory (default /tmp/latch-cluster, outside the repository so the
# postgres user can enter it wherever the clone lives): data
# directories, sockets, logs, pid files, the built latch binary. `down` stops exactly the processes
# whose pid files are there and deletes the directory. The Postgres nodes are plain initdb/pg_ctl
# clusters in that directory, not pg_createcluster ones, so nothing is written under /etc and the
# machine's own clusters (5432) are never touched. `up` is idempotent: it starts only what is not
# running. Run as root on a bare Debian machine, it installs what is missing (postgresql, pgbouncer,
# haproxy, curl) first; Go >= the go.mod version must be there already.
#
# Knobs (environment):
#   LATCH_CLUSTER_STATE=dir   state directory (default /tmp/latch-cluster)
#   PRIMARY_PORT=55432 STANDBY_PORT=55433 PGBOUNCER_PORT=56432
#   HAPROXY_PORT=10960 HAPROXY_STATS_PORT=10969 LATCH_PORTS="10961 10962 10963"
#   MAIL_SINK_PORT=10925      where the instances send code emails (SMTP, no TLS)
#   MAIL_DRIVER=smtp          or log: codes are written to the instances' logs instead
#   DB_VIA=pgbouncer          or direct: the instances use a multi-host URL straight to both nodes
#                             (target_session_attrs=read-write) instead of PgBouncer
#   PG_VERSION=15             which /usr/lib/postgresql/<v>/bin to use
set -euo pipefail

deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$deploy")
STATE=${LATCH_CLUSTER_STATE:-/tmp/latch-cluster}
PG_VERSION=${PG_VERSION:-15}
PRIMARY_PORT=${PRIMARY_PORT:-55432}
STANDBY_PORT=${STANDBY_PORT:-55433}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-56432}
HAPROXY_PORT=${HAPROXY_PORT:-10960}
HAPROXY_STATS_PORT=${HAPROXY_STATS_PORT:-10969}
LATCH_PORTS=${LATCH_PORTS:-"10961 10962 10963"}
MAIL_SINK_PORT=${MAIL_SINK_PORT:-10925}
MAIL_DRIVER=${MAIL_DRIVER:-smtp}
DB_VIA=${DB_VIA:-pgbouncer}
# Once a cluster exists, the knobs it was brought up with win, so status and down describe what
# is running whatever this shell's environment says; change them with down, then up.
knobs=(PG_VERSION PRIMARY_PORT STANDBY_PORT PGBOUNCER_PORT HAPROXY_PORT HAPROXY_STATS_PORT LATCH_PORTS MAIL_SINK_PORT MAIL_DRIVER DB_VIA)
if [[ -f $STATE/cluster.env ]]; then
	# shellcheck source=/dev/null
	source "$STATE/cluster.env"
fi
export PATH="$PATH:/usr/local/go/bin:/usr/lib/postgresql/$PG_VERSION/bin"
# psql and pg_isready as the superuser over TCP; never the machine's default socket or port.
export PGUSER=postgres PGHOST=127.0.0.1 PGCONNECT_TIMEOUT=3

pgdir=$STATE/pg
bindir=$STATE/bin
log() { printf '== %s\n' "$*"; }
die() { printf 'local-cluster: %s\n' "$*" >&2; exit 1; }

# Postgres and PgBouncer refuse to run as root; as root they run as the postgres user and own
# their directories. As any other user everything runs as that user.
as_pg() {
	if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_owned_dir() {
	mkdir -p "$@"
	if ((EUID == 0)); then chown postgres:postgres "$@"; fi
}

latch_db_url() {
	if [[ $DB_VIA == direct ]]; then
		echo "postgres://latch@127.0.0.1:$PRIMARY_PORT,127.0.0.1:$STANDBY_PORT/latch?sslmode=disable&target_session_attrs=read-write"
	else
		echo "postgres://latch@127.0.0.1:$PGBOUNCER_PORT/latch?sslmode=disable"
	fi
}

# alive PIDFILE NAME: the pid file names a running process whose command line mentions NAME (so a
# recycled pid never gets signalled).
alive() {
	local pid
	[[ -f $1 ]] || return 1
	pid=$(head -n 1 "$1" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# stop_pidfile PIDFILE NAME: TERM, then wait up to 20 s, then KILL.
stop_pidfile() {
	local pid
	alive "$1" "$2" || return 0
	pid=$(head -n 1 "$1")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 200); do
		alive "$1" "$2" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
	local secs=$1 what=$2
	shift 2
	for _ in $(seq 1 $((secs * 5))); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	die "$what: not ready after ${secs}s"
}

install_missing() {
	local pkgs=()
	[[ -x /usr/lib/postgresql/$PG_VERSION/bin/initdb ]] || pkgs+=("postgresql-$PG_VERSION")
	command -v psql >/dev/null || pkgs+=("postgresql-client-$PG_VERSION")
	command -v pgbouncer >/dev/null || pkgs+=(pgbouncer)
	command -v haproxy >/dev/null || pkgs+=(haproxy)
	command -v curl >/dev/null || pkgs+=(curl)
	((${#pkgs[@]} == 0)) && return 0
	((EUID == 0)) || die "missing ${pkgs[*]}: install them (apt-get install ${pkgs[*]}) or run this as root"
	log "installing ${pkgs[*]}"
	# The packages' own services (a default Postgres cluster, pgbouncer and haproxy on their default
	# ports) must not start: this script runs its own. (postgresql-N still creates its default
	# cluster's files; it stays stopped.) policy-rc.d answering 101 tells invoke-rc.d so;
	# put one in place only for the install, and only where the machine has none.
	local policy=/usr/sbin/policy-rc.d added=""
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		added=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
	if [[ -n $added ]]; then rm -f "$policy"; fi
}

build_latch() {
	if [[ -x $bindir/latch ]]; then return; fi
	command -v go >/dev/null || die "go not found (PATH plus /usr/local/go/bin): Latch is built from this repository"
	log "building latch"
	mkdir -p "$bindir"
	(cd "$repo" && CGO_ENABLED=0 go build -o "$bindir/latch" ./cmd/latch)
}

# --- Postgres -------------------------------------------------------------------------------

node_data() { echo "$pgdir/$1/data"; }
node_port() { if [[ $1 == primary ]]; then echo "$PRIMARY_PORT"; else echo "$STANDBY_PORT"; fi; }

# write_node_conf NODE ROLE: the per-node settings, inside the data directory so that pg_basebackup
# carries the includes along and each node's own copy says what it is.
write_node_conf() {
	local node=$1 role=$2 data
	data=$(node_data "$node")
	as_pg tee "$data/latch-node.conf" >/dev/null <<EOF
# Generated by deploy/local-cluster.sh for the $node node.
port = $(node_port "$node")
unix_socket_directories = '$pgdir/$node/run'
EOF
	# Read as the invoking user and written as postgres: the repository may sit in a directory the
	# postgres user cannot enter (a 0700 temporary clone, a home directory).
	as_pg tee "$data/latch-common.conf" <"$deploy/postgres/common.conf" >/dev/null
	as_pg tee "$data/latch-role.conf" <"$deploy/postgres/$role.conf" >/dev/null
}

node_running() { as_pg pg_ctl -D "$(node_data "$1")" status >/dev/null 2>&1; }

start_node() {
	local node=$1
	node_running "$node" && return 0
	log "starting postgres $node on 127.0.0.1:$(node_port "$node")"
	as_pg pg_ctl -D "$(node_data "$node")" -l "$pgdir/$node/postgres.log" -w -t 60 start >/dev/null
}

init_primary() {
	local data
	data=$(node_data primary)
	if [[ ! -f $data/PG_VERSION ]]; then
		log "initdb primary"
		pg_owned_dir "$pgdir" "$pgdir/primary" "$pgdir/primary/run"
		as_pg initdb -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$pgdir/primary/initdb.log"
		as_pg tee -a "$data/postgresql.conf" >/dev/null <<'EOF'

# deploy/local-cluster.sh: shared settings, then this node's port and sockets, then its role.
include 'latch-common.conf'
include 'latch-node.conf'
include 'latch-role.conf'
EOF
		as_pg tee "$data/pg_hba.conf" <"$deploy/postgres/pg_hba.conf" >/dev/null
		write_node_conf primary primary
	fi
	start_node primary
	# Until the standby streams, every commit on the primary would wait for it: set up roles and
	# the database with synchronous_commit = local.
	PGOPTIONS='-c synchronous_commit=local' psql -X -q -p "$PRIMARY_PORT" -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT 'CREATE ROLE replicator WITH REPLICATION LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
SELECT 'CREATE ROLE latch WITH LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'latch') \gexec
SELECT 'CREATE DATABASE latch OWNER latch' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'latch') \gexec
SQL
}

init_standby() {
	local data
	data=$(node_data standby)
	if [[ ! -f $data/PG_VERSION ]]; then
		log "pg_basebackup standby from the primary"
		pg_owned_dir "$pgdir/standby" "$pgdir/standby/run"
		# A slot left by an earlier, interrupted attempt would make -C fail.
		psql -X -q -p "$PRIMARY_PORT" -d postgres -c \
			"SELECT pg_drop_replication_slot('standby1') FROM pg_replication_slots WHERE slot_name = 'standby1'" >/dev/null
		# -R writes standby.signal and primary_conninfo (with application_name=standby1, the name
		# synchronous_standby_names waits for); -C -S creates the slot that keeps its WAL.
		as_pg pg_basebackup -D "$data" -R -X stream -C -S standby1 -c fast \
			-d "host=127.0.0.1 port=$PRIMARY_PORT user=replicator application_name=standby1"
		write_node_conf standby standby
	fi
	start_node standby
	wait_until 30 "standby1 streaming synchronously" sh -c \
		"psql -X -qAt -p $PRIMARY_PORT -d postgres -c \"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'\" | grep -qx sync"
}

# --- PgBouncer ------------------------------------------------------------------------------

# write_pgbouncer_databases PORT: the one line that says where the primary is. A failover rewrites
# it and sends RELOAD. connect_query runs on every new server connection: Latch's keepBackendHeap
# (internal/store), which behind a transaction pooler has to happen here rather than in Latch.
write_pgbouncer_databases() {
	as_pg tee "$STATE/pgbouncer/databases.ini.new" >/dev/null <<EOF
; Generated by deploy/local-cluster.sh: where PgBouncer sends the latch database.
[databases]
latch = host=127.0.0.1 port=$1 dbname=latch connect_query='SELECT length(repeat(chr(120), 1048576))'
EOF
	as_pg mv "$STATE/pgbouncer/databases.ini.new" "$STATE/pgbouncer/databases.ini"
}

start_pgbouncer() {
	local dir=$STATE/pgbouncer
	alive "$dir/pgbouncer.pid" pgbouncer && return 0
	log "starting pgbouncer on 127.0.0.1:$PGBOUNCER_PORT (transaction pooling)"
	pg_owned_dir "$dir"
	sed -e "s|@STATE@|$STATE|g" -e "s|@PORT@|$PGBOUNCER_PORT|g" "$deploy/pgbouncer/pgbouncer.ini" | as_pg tee "$dir/pgbouncer.ini" >/dev/null
	printf '"latch" ""\n"postgres" ""\n' | as_pg tee "$dir/userlist.txt" >/dev/null
	[[ -f $dir/databases.ini ]] || write_pgbouncer_databases "$PRIMARY_PORT"
	as_pg pgbouncer -d -q "$dir/pgbouncer.ini"
	wait_until 10 pgbouncer pg_isready -q -p "$PGBOUNCER_PORT" -d latch
}

# --- Latch ----------------------------------------------------------------------------------

latch_env() { # latch_env PORT: the environment one instance runs with
	# One key-encryption key for the three instances, generated by the first into the state directory.
	printf '%s\n' "LATCH_SERVER_ADDR=127.0.0.1:$1" "LATCH_DATABASE_URL=$(latch_db_url)" \
		"LATCH_MAIL_DRIVER=$MAIL_DRIVER" "LATCH_MAIL_SMTP_PORT=$MAIL_SINK_PORT" \
		"LATCH_SECRETS_ENCRYPTION_KEY_FILE=$STATE/latch/latch.kek"
	if [[ $DB_VIA == direct ]]; then echo "LATCH_DATABASE_PGBOUNCER=false"; fi
}

migrate() {
	log "latch migrate up (once, before any instance starts)"
	mapfile -t env < <(latch_env "${LATCH_PORTS%% *}")
	env -u LATCH_CLUSTER_STATE "${env[@]}" "$bindir/latch" --config "$deploy/latch/latch.yaml" migrate up >"$STATE/latch/migrate.log" 2>&1 ||
		{ cat "$STATE/latch/migrate.log" >&2; die "migration failed"; }
}

start_latch() {
	local i=0 port pidf started=""
	mkdir -p "$STATE/latch"
	for port in $LATCH_PORTS; do
		i=$((i + 1))
		pidf=$STATE/latch/latch-$i.pid
		alive "$pidf" "latch" && continue
		if [[ -z $started ]]; then migrate; fi
		log "starting latch-$i on 127.0.0.1:$port"
		mapfile -t env < <(latch_env "$port")
		# setsid: the instances outlive this script and ignore its terminal's signals.
		setsid env -u LATCH_CLUSTER_STATE "${env[@]}" "$bindir/latch" --config "$deploy/latch/latch.yaml" serve \
			>>"$STATE/latch/latch-$i.log" 2>&1 </dev/null &
		echo $! >"$pidf"
		# One at a time: the first start generates the shared secrets and signing key in the
		# database; the others then load them instead of racing to create their own.
		wait_until 30 "latch-$i" curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz"
		started=1
	done
}

# --- HAProxy --------------------------------------------------------------------------------

start_haproxy() {
	local dir=$STATE/haproxy servers="" i=0 port
	alive "$dir/haproxy.pid" haproxy && return 0
	mkdir -p "$dir"
	for port in $LATCH_PORTS; do
		i=$((i + 1))
		servers+="    server latch$i 127.0.0.1:$port check"$'\n'
	done
	awk -v servers="${servers%$'\n'}" '{ if ($0 == "@SERVERS@") print servers; else print }' "$deploy/haproxy/haproxy.cfg" |
		sed -e "s|@STATE@|$STATE|g" -e "s|@FRONT_PORT@|$HAPROXY_PORT|g" -e "s|@STATS_PORT@|$HAPROXY_STATS_PORT|g" >"$dir/haproxy.cfg"
	haproxy -c -q -f "$dir/haproxy.cfg"
	log "starting haproxy on 127.0.0.1:$HAPROXY_PORT (stats on :$HAPROXY_STATS_PORT)"
	# -db: stay in the foreground under setsid, so its pid is ours and its log goes to a file.
	setsid haproxy -db -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 </dev/null &
	echo $! >"$dir/haproxy.pid"
	wait_until 15 "haproxy with a healthy backend" curl -fsS -o /dev/null "http://127.0.0.1:$HAPROXY_PORT/readyz"
}

# --- commands -------------------------------------------------------------------------------

up() {
	install_missing
	mkdir -p "$STATE"
	chmod 755 "$STATE" # the postgres user runs the nodes and PgBouncer in here
	[[ -f $STATE/cluster.env ]] || declare -p "${knobs[@]}" >"$STATE/cluster.env"
	# After a failover (deploy/failover-test.sh) the standby is the primary: starting the old
	# primary next to it would give two writable nodes. Rebuild instead.
	if [[ -f $(node_data standby)/PG_VERSION && ! -f $(node_data standby)/standby.signal ]]; then
		die "the standby was promoted (failover); run '$0 down' and '$0 up' for a fresh cluster"
	fi
	build_latch
	init_primary
	init_standby
	start_pgbouncer
	start_latch
	start_haproxy
	status
}

down() {
	if [[ ! -d $STATE ]]; then
		log "nothing to stop ($STATE does not exist)"
		return 0
	fi
	local f node
	stop_pidfile "$STATE/haproxy/haproxy.pid" haproxy
	for f in "$STATE"/latch/latch-*.pid; do
		[[ -e $f ]] && stop_pidfile "$f" latch
	done
	stop_pidfile "$STATE/pgbouncer/pgbouncer.pid" pgbouncer
	for node in standby primary; do
		if [[ -f $(node_data "$node")/postmaster.pid ]]; then
			log "stopping postgres $node"
			as_pg pg_ctl -D "$(node_data "$node")" -m fast -w -t 60 stop >/dev/null || true
		fi
	done
	rm -rf "$STATE"
	log "stopped; $STATE removed"
}

status() {
	local node port role i=0 pidf code
	[[ -d $STATE ]] || { echo "down ($STATE does not exist)"; return 0; }
	for node in primary standby; do
		port=$(node_port "$node")
		if ! [[ -f $(node_data "$node")/PG_VERSION ]]; then
			printf '%-10s absent\n' "$node"
		elif ! node_running "$node"; then
			printf '%-10s :%s stopped\n' "$node" "$port"
		else
			role=$(psql -X -qAt -p "$port" -d postgres -c "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby (in recovery)' ELSE 'primary (read-write)' END" 2>/dev/null || echo "not answering")
			printf '%-10s :%s up, %s\n' "$node" "$port" "$role"
			if [[ $role == primary* ]]; then
				psql -X -qAt -p "$port" -d postgres -F ' ' -c \
					"SELECT '           replica ' || application_name || ': ' || state || ', ' || sync_state || ', replay lag ' || coalesce(replay_lag::text, '0')
					   FROM pg_stat_replication UNION ALL
					 SELECT '           synchronous_standby_names = ''' || current_setting('synchronous_standby_names') || ''''" 2>/dev/null || true
			fi
		fi
	done
	if alive "$STATE/pgbouncer/pgbouncer.pid" pgbouncer; then
		printf '%-10s :%s up, latch -> %s\n' pgbouncer "$PGBOUNCER_PORT" \
			"$(grep -E '^latch *=' "$STATE/pgbouncer/databases.ini" | sed 's/^latch *= *//')"
	else
		printf '%-10s :%s down\n' pgbouncer "$PGBOUNCER_PORT"
	fi
	for port in $LATCH_PORTS; do
		i=$((i + 1))
		pidf=$STATE/latch/latch-$i.pid
		if alive "$pidf" latch; then
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$port/readyz" || true)
			printf '%-10s :%s up (pid %s), readyz %s\n' "latch-$i" "$port" "$(head -n 1 "$pidf")" "$code"
		else
			printf '%-10s :%s down\n' "latch-$i" "$port"
		fi
	done
	if alive "$STATE/haproxy/haproxy.pid" haproxy; then
		printf '%-10s :%s up; backends: %s\n' haproxy "$HAPROXY_PORT" \
			"$(curl -s --max-time 3 "http://127.0.0.1:$HAPROXY_STATS_PORT/;csv" | awk -F, '$1 == "latch" && $2 ~ /^latch[0-9]/ {printf "%s %s  ", $2, $18}')"
	else
		printf '%-10s :%s down\n' haproxy "$HAPROXY_PORT"
	fi
	echo "state: $STATE; Latch via $DB_VIA ($(latch_db_url)); mail: $MAIL_DRIVER"
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: $0 up | down | status" >&2
	exit 2
	;;
esac
