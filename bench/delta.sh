#!/usr/bin/env bash
# restore --delta against a full restore: one pgbench cluster backed up, restored, then a little
# damaged in the restored copy (bytes overwritten in the middle of N relation files at the same size
# and modification time, one file deleted, one stray file added) and restored over with --delta.
# Also the delta over an unchanged copy (the cost of reading and hashing everything): right after the
# restore, with whatever the restore left in the page cache (pgproof writes direct, bypassing it;
# pgBackRest through it), and, run as root, again with the page cache dropped ("cold"), both tools then
# reading the copy from disk. And pgBackRest's restore --delta of the same when pgbackrest is installed.
# Usage: bench/delta.sh [PGBENCH_SCALE] [JOBS] [FILES_DAMAGED]   (run as root or as an unprivileged user)
set -euo pipefail
scale="${1:-50}"
jobs="${2:-2}"
damaged="${3:-5}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-bench
"$root/pgproof" --version >/dev/null
start_cluster "archive_mode = on" "archive_command = '$root/pgproof archive-push --cluster bench --repo $work/repo %p'"
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
as $bin/pgbench -h "$work" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
as $bin/psql -q -h "$work" -p "$port" -d postgres -c "CHECKPOINT" >/dev/null
bytes=$(du -sb --exclude=pg_wal "$work/data" | cut -f1)
mb=$(( bytes / 1000000 ))
echo "pgbench scale $scale: data directory $mb MB, $(nproc) cores, jobs $jobs, $damaged files damaged"

run() { # run NAME CMD...: prints one line
  local name="$1"; shift
  local t0 t1
  t0=$(date +%s%N)
  if ! as "$@" >"$work/out" 2>"$work/err"; then echo "$name FAILED: $(tail -c 600 "$work/err")"; exit 1; fi
  t1=$(date +%s%N)
  printf "%-44s %6.2f s\n" "$name" "$(echo "($t1 - $t0)/1000000000" | bc -l)"
  [ -n "${VERBOSE:-}" ] && grep -E "delta restore of backup .*checked|restored and verified" "$work/err" | sed 's/^/    /' || true
}

cold() { # drop the page cache (root only): a delta restore then reads the copy from disk, whichever tool wrote it
  if [ "$(id -u)" = 0 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; return 0; fi
  return 1
}

damage() { # damage DIR: the same damage in any restored copy
  local d="$1" f
  for f in $(cd "$d" && find base -type f -regex '.*/[0-9]+' -size +1M | sort | head -n "$damaged"); do
    local ref; ref=$(mktemp "$work/ref.XXXX"); touch -r "$d/$f" "$ref"
    printf 'damaged!' | as dd of="$d/$f" bs=1 seek=$(( $(stat -c %s "$d/$f") / 2 )) conv=notrunc status=none
    touch -r "$ref" "$d/$f"; rm -f "$ref"
  done
  rm -f "$(find "$d/base" -type f -name '*_fsm' | sort | head -1)"
  as sh -c "echo stray > '$d/base/stray.txt'"
}

as "$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" --start-fast --jobs "$jobs" >/dev/null 2>&1
run "pgproof restore (into an empty directory)" "$root/pgproof" restore --cluster bench --repo "$work/repo" --pgdata "$work/r" --jobs "$jobs"
run "pgproof restore --delta (nothing changed)" "$root/pgproof" restore --delta --cluster bench --repo "$work/repo" --pgdata "$work/r" --jobs "$jobs"
if cold; then
  run "pgproof restore --delta (nothing changed, cold)" "$root/pgproof" restore --delta --cluster bench --repo "$work/repo" --pgdata "$work/r" --jobs "$jobs"
fi
damage "$work/r"
run "pgproof restore --delta (damaged)" "$root/pgproof" restore --delta --cluster bench --repo "$work/repo" --pgdata "$work/r" --jobs "$jobs"
grep -E "delta restore of backup .*checked" "$work/err" | sed 's/^/    /'

if command -v pgbackrest >/dev/null; then
  pgbr_conf "process-max=$jobs" "start-fast=y" "archive-check=n"
  as $(pgbr) --type=full backup >/dev/null 2>&1
  run "pgbackrest restore (into an empty directory)" $(pgbr) --pg1-path="$work/p" restore
  run "pgbackrest restore --delta (nothing changed)" $(pgbr) --pg1-path="$work/p" --delta restore
  if cold; then
    run "pgbackrest restore --delta (nothing changed, cold)" $(pgbr) --pg1-path="$work/p" --delta restore
  fi
  damage "$work/p"
  run "pgbackrest restore --delta (damaged)" $(pgbr) --pg1-path="$work/p" --delta restore
else
  echo "pgbackrest not installed: apt-get install pgbackrest to compare"
fi
