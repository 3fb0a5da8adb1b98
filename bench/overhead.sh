#!/usr/bin/env bash
# Fixed overhead of a full backup: a pgbench scale-1 cluster (about 23 MB), so the time is start-up,
# connection, checkpoint, pg_backup_start/stop, manifests and the wait for the last WAL segment to be
# archived. pgproof and pgBackRest run alternately, each with its own archive-push as
# archive_command (one wrapper reads which tool's turn it is) and both with a fast checkpoint; both
# wait for the backup's last segment to be archived (pgBackRest's default archive-check=y).
# Prints the median (and range) of wall seconds, CPU seconds (user+sys) and peak RSS.
# Usage: bench/overhead.sh [RUNS] [PGBENCH_SCALE]   (run as root or as an unprivileged user)
set -euo pipefail
runs="${1:-5}"
scale="${2:-1}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-overhead
"$root/pgproof" --version >/dev/null
cat > "$work/pgbackrest-or-pgproof" <<SH
#!/bin/sh
# archive_command of this benchmark (pgBackRest wants its name in archive_command): the archive-push of the tool whose backup runs now
if [ "\$(cat $work/turn)" = pgbackrest ]; then exec pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push "\$1"; fi
exec $root/pgproof archive-push --cluster bench --repo $work/repo "\$1"
SH
chmod 755 "$work/pgbackrest-or-pgproof"; echo pgproof > "$work/turn"; chmod 666 "$work/turn"
start_cluster "archive_mode = on" "archive_command = '$work/pgbackrest-or-pgproof %p'"
as $bin/pgbench -h "$work" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
pgbr_conf "start-fast=y" "process-max=2"
echo "pgbench scale $scale: data directory $(( $(du -sb --exclude=pg_wal "$work/data" | cut -f1) / 1000000 )) MB; load before: $(load)"
: > "$work/times"
for i in $(seq 0 "$runs"); do   # run 0 warms up and is not counted
  n=""; [ "$i" = 0 ] && n=-warmup
  echo pgproof > "$work/turn"
  PGPROOF_TIMINGS=1 timed "pgproof$n" "$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" --start-fast --jobs 2
  echo pgbackrest > "$work/turn"
  timed "pgbackrest$n" $(pgbr --type=full backup)
done
echo "load after: $(load)"
for t in pgproof pgbackrest; do
  printf "%-30s wall %s s (%s), cpu %s s (%s), peak RSS %d MB\n" "$t backup (full)" "$(median $t 2)" "$(spread $t 2)" \
    "$(median $t 3)" "$(spread $t 3)" $(( $(median $t 4) / 1024 ))
done
awk '$1=="pgproof" {p[++i]=$2} $1=="pgbackrest" {b[++j]=$2} END {for (k=1;k<=i;k++) print p[k]/b[k]}' "$work/times" | sort -g |
  awk '{r[NR]=$1} END {printf "pgproof/pgBackRest wall, pair by pair: median %.2f (%.2f..%.2f)\n", r[int((NR+1)/2)], r[1], r[NR]}'
[ -n "${VERBOSE:-}" ] && { echo "last pgproof backup (seconds since its JVM started):"; sed 's/^/    /' "$work/pgproof.err"; }
exit 0
