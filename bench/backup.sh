#!/usr/bin/env bash
# Full backup and restore of one pgbench cluster, side by side: pgproof, pgBackRest (when installed)
# and pg_basebackup with server-side zstd. Same data, same run, warm cache, zstd level 3, 2 jobs.
# Prints wall seconds and MB/s of the data directory size, the stored size, CPU seconds (user+sys)
# and peak memory (the largest resident set of one process: the JVM for pgproof, the biggest of
# pgBackRest's processes), both from /usr/bin/time.
# Usage: bench/backup.sh [PGBENCH_SCALE] [JOBS]   (run as root or as an unprivileged user)
set -euo pipefail
scale="${1:-50}"
jobs="${2:-2}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-bench
"$root/pgproof" --version >/dev/null
start_cluster "archive_mode = on" "archive_command = 'true'"
as $bin/pgbench -h "$work" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
as $bin/psql -q -h "$work" -p "$port" -d postgres -c "CHECKPOINT" >/dev/null
bytes=$(du -sb --exclude=pg_wal "$work/data" | cut -f1)   # what a backup copies
mb=$(( bytes / 1000000 ))
echo "pgbench scale $scale: data directory $mb MB, $(nproc) cores, jobs $jobs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Every tool's archive_command: pgproof's (the others do not need WAL archived to finish their backup).
set_archive_command "$root/pgproof archive-push --cluster bench --repo $work/repo %p"
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
cat "$work/data/base"/*/* >/dev/null 2>&1 || true   # warm cache
settle

run() { # run NAME STOREDDIR CMD...: prints one line
  local name="$1" dir="$2"; shift 2
  local t0 t1
  t0=$(date +%s%N)
  if ! /usr/bin/time -f "%U %S %M" -o "$work/time" $([ "$(id -u)" = 0 ] && echo runuser -u "$user" --) "$@" >"$work/out" 2>"$work/err"; then
    echo "$name FAILED: $(tail -c 400 "$work/err")"; return; fi
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  local stored=""; [ -n "$dir" ] && stored=", stored $(( $(du -sb "$dir" | cut -f1) / 1000000 )) MB"
  read -r u s rss < <(tail -1 "$work/time")
  printf "%-34s %6.2f s  %5d MB/s  cpu %5.2f s  peak RSS %4d MB%s\n" "$name" "$(echo "$ms/1000" | bc -l)" $(( mb * 1000 / (ms > 0 ? ms : 1) )) \
    "$(echo "$u + $s" | bc -l)" $(( rss / 1024 )) "$stored"
}

run "pgproof backup" "$work/repo/bench/backup" "$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" \
  --start-fast --jobs "$jobs" --compress zstd --compress-level 3
label=$(ls "$work/repo/bench/backup" | tail -1)
[ -n "${VERBOSE:-}" ] && grep -E "copied|archived|stopped|started|complete" "$work/err" | sed 's/^/    /'

run "pgproof restore" "" "$root/pgproof" restore --cluster bench --repo "$work/repo" --pgdata "$work/r-pgproof" --set "$label" --jobs "$jobs"

mkdir -p "$work/bb"; own "$work/bb"
run "pg_basebackup server-zstd:workers=$jobs" "$work/bb" $bin/pg_basebackup -h "$work" -p "$port" -D "$work/bb/b" -Ft -X none \
  --checkpoint=fast --compress="server-zstd:level=3,workers=$jobs" --no-sync

if command -v pgbackrest >/dev/null; then
  pgbr_conf "process-max=$jobs" "start-fast=y" "archive-check=n"
  run "pgbackrest backup (full)" "$work/pgbr/backup" $(pgbr) --type=full backup
  run "pgbackrest restore" "" $(pgbr) --pg1-path="$work/r-pgbr" restore
else
  echo "pgbackrest not installed: apt-get install pgbackrest to compare"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
