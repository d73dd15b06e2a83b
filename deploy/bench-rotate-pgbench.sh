#!/usr/bin/env bash
# The refresh rotation alone, with pgbench on the local cluster (deploy/local-cluster.sh up): what
# Postgres spends per rotation when the statement is prepared (direct), when it is parsed and planned
# every time (through PgBouncer in transaction mode, as Latch sends it with database.pgbouncer: true),
# and when the same statement sits in a PL/pgSQL function, whose plan each backend caches however
# many clients share it through the pooler (a proposal: docs/deploy.md, "PgBouncer and Latch").
#
# Writes to the cluster's latch database: one user, 1000 sessions, 50,000 spent tokens of history,
# fresh chains per run, and the function latch_bench_rotate. Knobs: DURATION=10 (s) RUNS=3 CLIENTS=16
set -euo pipefail

deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${LATCH_CLUSTER_STATE:-/tmp/latch-cluster}
[[ -f $STATE/cluster.env ]] || { echo "the local cluster is not up (deploy/local-cluster.sh up)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$STATE/cluster.env"
export PATH="$PATH:/usr/lib/postgresql/$PG_VERSION/bin" PGUSER=postgres PGHOST=127.0.0.1
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-16}
MODES=(direct-prepared/cte pgbouncer-unnamed/cte pgbouncer-unnamed/function)
work=$(mktemp -d "${TMPDIR:-/tmp}/latch-rotate-pgbench.XXXXXX")
base=$((RANDOM * 100)) # run ids of this invocation: base+1 .. base+RUNS*modes

psql -X -q -v ON_ERROR_STOP=1 -p "$PRIMARY_PORT" -d latch -v base="$base" -v n=$((RUNS * ${#MODES[@]})) >/dev/null <<'SQL'
INSERT INTO users (id, tenant_id, email, password_hash, email_verified_at, created_at, updated_at)
VALUES ('22222222-2222-2222-2222-222222222222', 'default', 'pgbench-rotate@example.test', 'unused', now(), now(), now())
ON CONFLICT DO NOTHING;
INSERT INTO sessions (id, user_id, tenant_id, amr, created_at, last_used_at, idle_expires_at, expires_at)
SELECT md5('rotate-session-' || s)::uuid, '22222222-2222-2222-2222-222222222222', 'default',
       'pwd otp', now(), now(), now() + interval '7 days', now() + interval '30 days'
FROM generate_series(0, 999) s ON CONFLICT DO NOTHING;
INSERT INTO refresh_tokens (session_id, token_hash, created_at, used_at)
SELECT md5('rotate-session-' || (g % 1000))::uuid, sha256(convert_to('rotate-history-' || g, 'UTF8')), now(), now()
FROM generate_series(1, 50000) g ON CONFLICT DO NOTHING;
INSERT INTO refresh_tokens (session_id, token_hash, created_at)
SELECT md5('rotate-session-' || s)::uuid, sha256(convert_to(r || ':' || s || ':0', 'UTF8')), now()
FROM generate_series(0, 999) s, generate_series(:base + 1, :base + :n) r;
ANALYZE refresh_tokens;
ANALYZE sessions;

-- The statement of internal/store (rotatePostgres), verbatim, inside a function (dropped first: its
-- result columns follow the statement's).
DROP FUNCTION IF EXISTS latch_bench_rotate(timestamptz, bytea, bytea, timestamptz, timestamptz, timestamptz);
CREATE OR REPLACE FUNCTION latch_bench_rotate(p_now timestamptz, p_old bytea, p_new bytea, p_idle timestamptz,
                                              p_idle_floor timestamptz, p_touch_floor timestamptz)
RETURNS TABLE (o_session text, o_user text, o_tenant text, o_email text, o_role text, o_amr text, o_expires timestamptz,
               o_rotated boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
	RETURN QUERY WITH consumed AS (
		UPDATE refresh_tokens rt
		SET used_at = CASE WHEN rt.kept THEN NULL ELSE p_now END,
		    last_used_at = p_now
		WHERE rt.token_hash = p_old AND rt.used_at IS NULL AND coalesce(rt.last_used_at, rt.created_at) > p_idle_floor
		  AND (SELECT s.revoked_at IS NULL AND s.expires_at > p_now AND u.status = 'active'
		       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = rt.session_id)
		RETURNING rt.id, rt.session_id, NOT rt.kept AS rotated
	), successor AS (
		INSERT INTO refresh_tokens (session_id, parent_id, token_hash, created_at)
		SELECT c.session_id, c.id, p_new, p_now FROM consumed c WHERE c.rotated
	), touched AS (
		UPDATE sessions SET last_used_at = p_now, idle_expires_at = LEAST(p_idle, sessions.expires_at)
		FROM consumed c WHERE sessions.id = c.session_id AND sessions.last_used_at < p_touch_floor
	)
	SELECT s.id::text, s.user_id::text, s.tenant_id, u.email::text, u.role, s.amr, s.expires_at, c.rotated
	FROM consumed c JOIN sessions s ON s.id = c.session_id JOIN users u ON u.id = s.user_id;
END
$fn$;
SQL

cat >"$work/cte.sql" <<'SQL'
\set next :gen + 1
WITH consumed AS (
	UPDATE refresh_tokens rt
	SET used_at = CASE WHEN rt.kept THEN NULL ELSE now() END,
	    last_used_at = now()
	WHERE rt.token_hash = sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :gen::int), 'UTF8'))
	  AND rt.used_at IS NULL AND coalesce(rt.last_used_at, rt.created_at) > now() - interval '7 days'
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
cat >"$work/function.sql" <<'SQL'
\set next :gen + 1
SELECT * FROM latch_bench_rotate(now(), sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :gen::int), 'UTF8')),
	sha256(convert_to(format('%s:%s:%s', :run::int, :client_id::int, :next::int), 'UTF8')),
	now() + interval '7 days', now() - interval '7 days', now() - interval '30 seconds');
\set gen :next
SQL

pg_ticks() {
	local node pm sum=0 pid
	for node in primary standby; do
		pm=$(head -n 1 "$STATE/pg/$node/data/postmaster.pid" 2>/dev/null) || continue
		for pid in "$pm" $(pgrep -P "$pm"); do
			[[ -r /proc/$pid/stat ]] && sum=$((sum + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat")))
		done
	done
	echo "$sum"
}
hz=$(getconf CLK_TCK)

printf '%-28s %4s %9s %18s\n' mode run 'tx/s' 'pg CPU ms per tx'
run=$base
for r in $(seq 1 "$RUNS"); do
	for m in "${MODES[@]}"; do
		run=$((run + 1))
		case ${m%/*} in
		direct-prepared) conn=(-p "$PRIMARY_PORT" -M prepared) ;;
		pgbouncer-unnamed) conn=(-p "$PGBOUNCER_PORT" -M extended) ;;
		esac
		t=$(pg_ticks)
		out=$(pgbench -n "${conn[@]}" -c "$CLIENTS" -j 2 -T "$DURATION" -D run="$run" -D gen=0 -f "$work/${m#*/}.sql" latch 2>&1)
		t=$(($(pg_ticks) - t))
		tx=$(awk '/^number of transactions actually processed/ {print $NF}' <<<"$out" | cut -d/ -f1)
		tps=$(awk '/^tps/ {print int($3)}' <<<"$out")
		if [[ -z $tx || $tx == 0 ]]; then
			printf '%-28s %4s  failed: %s\n' "$m" "$r" "$(grep -m 1 -i error <<<"$out")"
			continue
		fi
		awk -v m="$m" -v r="$r" -v tps="$tps" -v t="$t" -v hz="$hz" -v tx="$tx" \
			'BEGIN { printf "%-28s %4s %9d %18.3f\n", m, r, tps, t * 1000 / hz / tx }'
	done
done | tee "$work/lines"
echo
echo "medians:"
for m in "${MODES[@]}"; do
	awk -v m="$m" '$1 == m && $3 ~ /^[0-9]+$/ {print $3, $4}' "$work/lines" | sort -n |
		awk -v m="$m" '{t[NR] = $1; c[NR] = $2} END {if (NR) printf "%-28s %9d tx/s %8s ms\n", m, t[int((NR + 1) / 2)], c[int((NR + 1) / 2)]}'
done
