#!/usr/bin/env bash
# What a backup's heap holds per file of the cluster: the live heap (after a full GC) of a full and of an
# incremental backup, paused just before each is marked complete, on a small cluster and again after TABLES
# empty tables are added (one file each). The difference over the files added is the heap per file, which
# Backup.FILE_HEAP must bound. Usage: bench/heap.sh [TABLES] (default 40000).
set -euo pipefail
tables="${1:-40000}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-heap
"$root/pgproof" --version >/dev/null
start_cluster "archive_mode = on" "archive_command = '$root/pgproof archive-push --cluster bench --repo $work/repo %p'" \
  "max_locks_per_transaction = 1024"
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
as $bin/pgbench -h "$work" -p "$port" -i -s 1 -q postgres >/dev/null 2>&1

live() { # live TYPE: the backup's live heap in bytes, and its file count, at backup-before-complete
  local type="$1" release="$work/release" pid="" i
  rm -f "$release"
  as env PGPROOF_TEST_HOOK=backup-before-complete PGPROOF_TEST_HOOK_RELEASE="$release" \
    "$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" --start-fast --type "$type" \
    >"$work/out" 2>"$work/err" &
  local bg=$!
  for i in $(seq 1 600); do grep -q "^HOOK backup-before-complete" "$work/err" 2>/dev/null && break; sleep 0.5; done
  pid=$(pgrep -u "$user" -f "pgproof.jar backup" | head -1)
  as jcmd "$pid" GC.class_histogram > "$work/histo" 2>&1
  touch "$release"
  wait "$bg"
  local files; files=$(grep -o "copying [0-9]* files" "$work/err" | grep -o "[0-9]*")
  echo "$(awk '/^Total/ {print $3}' "$work/histo") $files"
}

read -r full0 files0 < <(live full)
read -r incr0 _ < <(live incr)
echo "before: $files0 files; live heap at the end of a full backup $((full0 / 1024)) KiB, of an incremental $((incr0 / 1024)) KiB"
sql -c "DO \$\$ BEGIN FOR i IN 1..$tables LOOP EXECUTE format('CREATE TABLE heap_t%s (id int)', i); IF i % 1000 = 0 THEN COMMIT; END IF; END LOOP; END \$\$" >/dev/null
sql -c "CHECKPOINT" >/dev/null
read -r full1 files1 < <(live full)
read -r incr1 _ < <(live incr)
echo "after:  $files1 files; live heap at the end of a full backup $((full1 / 1024)) KiB, of an incremental $((incr1 / 1024)) KiB"
echo "heap per file added: full backup $(( (full1 - full0) / (files1 - files0) )) bytes, incremental $(( (incr1 - incr0) / (files1 - files0) )) bytes"
