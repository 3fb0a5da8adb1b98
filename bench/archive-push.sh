#!/usr/bin/env bash
# Times `pgproof archive-push` per WAL segment, one process per segment as archive_command runs it,
# on fresh segments of a throwaway cluster; with pgBackRest installed, times its archive-push on the
# same segments (synchronous, zstd level 3, local repository) for comparison.
# Usage: bench/archive-push.sh [SEGMENTS]   (run as root or as an unprivileged user)
set -euo pipefail
n="${1:-20}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-bench
"$root/pgproof" --version >/dev/null
start_cluster "archive_mode = off" "wal_keep_size = '2GB'"
sql -c "CREATE TABLE t (x int, y text)" >/dev/null
for i in $(seq "$n"); do
  sql -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 60000) g; SELECT pg_switch_wal()" >/dev/null
done
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
cur=$(sql -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
# only segments PostgreSQL has finished (recycled future segments still carry old headers)
segs=$(cd "$work/data/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | sort | awk -v c="$cur" '$0 < c' | tail -n "$n")
timeit() { # prints milliseconds per call, sorted
  for s in $segs; do
    t0=$(date +%s%N); (cd "$work/data" && as "$@" "pg_wal/$s") >/dev/null 2>"$work/err" || { echo "FAILED $s: $(head -c 300 "$work/err")" >&2; }
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
  done | sort -n
}
report() { awk -v name="$1" '{a[NR]=$1} END {printf "%-28s %d segments: min %d ms, p50 %d ms, max %d ms\n", name, NR, a[1], a[int((NR+1)/2)], a[NR]}'; }
timeit "$root/pgproof" archive-push --cluster bench --repo "$work/repo" | report "pgproof archive-push"
# The same segments once they are acknowledged in a spool (as after the agent or a push-ahead stored
# them): the launcher answers without starting Java. The first pass writes the acknowledgements.
mkdir -p "$work/spool"; own "$work/spool"
timeit "$root/pgproof" archive-push --cluster bench --repo "$work/repo" --spool-path "$work/spool" >/dev/null
timeit "$root/pgproof" archive-push --cluster bench --repo "$work/repo" --spool-path "$work/spool" | report "pgproof, acknowledged (agent)"
if command -v pgbackrest >/dev/null; then
  pgbr_conf
  timeit $(pgbr) archive-push | report "pgbackrest archive-push"
fi

# archive-get of the same segments (restore_command), one process per segment; with a spool and
# prefetch, most calls take their segment from the spool.
gettime() {
  for s in $segs; do
    t0=$(date +%s%N); (cd "$work" && as "$@" "$s" "$work/got/$s") >/dev/null 2>"$work/err" || { echo "FAILED $s: $(head -c 300 "$work/err")" >&2; }
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
  done | sort -n
}
mkdir -p "$work/got" "$work/gspool"; own "$work/got" "$work/gspool"
gettime "$root/pgproof" archive-get --cluster bench --repo "$work/repo" | report "pgproof archive-get"
gettime "$root/pgproof" archive-get --cluster bench --repo "$work/repo" --spool-path "$work/gspool" | report "pgproof archive-get, prefetch"
if command -v pgbackrest >/dev/null; then
  gettime $(pgbr) archive-get | report "pgbackrest archive-get"
fi
