#!/usr/bin/env bash
# Incremental backup size, pgproof against pgBackRest: a pgbench cluster (scale 50 by default), a
# full backup with each tool, one `pgbench -c 4 -j 2 -T 20` load, then an incremental with each tool.
# Prints the bytes each incremental stored (its own directory in the repository, manifests
# included; what it references from the full is not counted) and the ratio. pgproof's incremental
# is block-level; Debian's pgBackRest 2.45 is file-level (a file changed at all is stored whole;
# its block incremental came in 2.46 and is not in Debian 12).
# Both tools archive every WAL segment (one archive_command pushes to both), zstd level 3, 2 jobs.
# Usage: bench/incremental.sh [PGBENCH_SCALE] [PGBENCH_SECONDS]   (run as root or as an unprivileged user)
set -euo pipefail
scale="${1:-50}"
secs="${2:-20}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-incr
"$root/pgproof" --version >/dev/null
# pgBackRest insists on its name in archive_command.
cat > "$work/pgbackrest-and-pgproof" <<SH
#!/bin/sh
pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push "\$1" || exit 1
exec $root/pgproof archive-push --cluster bench --repo $work/repo "\$1"
SH
chmod 755 "$work/pgbackrest-and-pgproof"
start_cluster "archive_mode = on" "archive_command = '/bin/true'"
as $bin/pgbench -h "$work" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
sql -c CHECKPOINT
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
pgbr_conf "start-fast=y" "process-max=2"
set_archive_command "$work/pgbackrest-and-pgproof %p"
echo "pgbench scale $scale: data directory $(( $(du -sb --exclude=pg_wal "$work/data" | cut -f1) / 1000000 )) MB; $(nproc) cores; load average $(load)"
: > "$work/times"
settle
timed pgproof-full "$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" --start-fast --jobs 2
timed pgbackrest-full $(pgbr --type=full backup)
as $bin/pgbench -h "$work" -p "$port" -c 4 -j 2 -T "$secs" postgres > "$work/pgbench.out" 2>&1
echo "pgbench -c 4 -j 2 -T $secs: $(grep -E '^number of transactions actually processed' "$work/pgbench.out" | sed 's/.*: //') transactions"
timed pgproof-incr "$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" --start-fast --jobs 2 --type incr
timed pgbackrest-incr $(pgbr --type=incr backup)
echo "load average after: $(load)"

pfull=$(ls "$work/repo/bench/backup" | grep 'F$' | tail -1); pincr=$(ls "$work/repo/bench/backup" | grep 'I$' | tail -1)
bfull=$(ls "$work/pgbr/backup/bench" | grep 'F$' | tail -1); bincr=$(ls "$work/pgbr/backup/bench" | grep 'I$' | tail -1)
size() { du -sb "$1" | cut -f1; }
report() { # NAME DIR
  local b; b=$(size "$2")
  printf "%-32s stored %10d bytes (%7.1f MB)  wall %5.2f s  cpu %5.2f s  peak RSS %4d MB\n" "$1" "$b" "$(echo "$b/1000000" | bc -l)" \
    "$(median "$1" 2)" "$(median "$1" 3)" $(( $(median "$1" 4) / 1024 ))
}
report pgproof-full "$work/repo/bench/backup/$pfull"
report pgbackrest-full "$work/pgbr/backup/bench/$bfull"
report pgproof-incr "$work/repo/bench/backup/$pincr"
report pgbackrest-incr "$work/pgbr/backup/bench/$bincr"
grep -E "unchanged since" "$work/pgproof-incr.err" | sed 's/^/  pgproof: /'
echo "  pgproof incremental: data $(size "$work/repo/bench/backup/$pincr/data") bytes, manifest.json.zst $(size "$work/repo/bench/backup/$pincr/manifest.json.zst") bytes"
echo "  pgBackRest incremental: pg_data $(size "$work/pgbr/backup/bench/$bincr/pg_data") bytes, backup.manifest(.copy) $(( $(size "$work/pgbr/backup/bench/$bincr/backup.manifest") * 2 )) bytes"
as pgbackrest --config="$work/pgbackrest.conf" --stanza=bench info --set="$bincr" 2>/dev/null | grep -E "database size|repo1: backup" | sed 's/^ */  pgBackRest: /'
p=$(size "$work/repo/bench/backup/$pincr"); b=$(size "$work/pgbr/backup/bench/$bincr")
printf "incremental stored, pgproof / pgBackRest (file-level, 2.45): %.3f\n" "$(echo "$p/$b" | bc -l)"
