#!/usr/bin/env bash
# The side-by-side benchmark in one run: one pgbench cluster, then for each compression ROUNDS rounds
# in which pgproof, pgBackRest and pg_basebackup each take a full backup (the order rotates every
# round), pgproof and pgBackRest each restore the backup they just took, and then a full backup with
# each of pgproof and pgBackRest in the first compression, one pgbench load, and an incremental
# backup with each.
# Fair by construction: the same compression and level for all three, pgBackRest's process-max and
# pg_basebackup's zstd workers equal to pgproof's --jobs, fast checkpoints, fsync on for pgproof and
# pgBackRest (pg_basebackup runs with --no-sync, so it is flattered), and every backup waits for its
# last WAL segment to be archived: pgproof's and pgBackRest's by their own archive-push,
# pg_basebackup's (-X none) by pgBackRest's, the quicker one (archive_command runs the archive-push
# of the tool whose turn it is; during the load it runs both).
# Prints the exact commands, then per compression the median wall time (and range), MB/s of the data
# directory over the median, median CPU seconds (user+sys), median peak RSS (the largest resident set
# of one process, from /usr/bin/time) and the stored bytes of the last backup; the ratios are the
# median of the round-by-round ratios, with their range.
# Usage: bench/compare.sh [PGBENCH_SCALE] [JOBS] [ROUNDS] [COMPRESSIONS] [PGBENCH_SECONDS]
#   defaults: 50 2 3 "zstd:3 lz4 none" 20   (run as root or as an unprivileged user; needs pgbackrest)
set -euo pipefail
scale="${1:-50}"
jobs="${2:-2}"
rounds="${3:-3}"
compressions="${4:-zstd:3 lz4 none}"
secs="${5:-20}"
. "$(dirname "$0")/lib.sh"
command -v pgbackrest >/dev/null || { echo "missing pgbackrest: apt-get install pgbackrest" >&2; exit 1; }
[ "$rounds" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 1; }
new_work pgproof-compare
"$root/pgproof" --version >/dev/null

cat > "$work/pgbackrest-or-pgproof" <<SH
#!/bin/sh
# archive_command of this benchmark: the archive-push of the tool whose turn it is (pgBackRest wants its name in it)
turn=\$(cat $work/turn)
if [ "\$turn" = pgbackrest ] || [ "\$turn" = both ]; then
  pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push "\$1" || exit 1
  [ "\$turn" = both ] || exit 0
fi
exec $root/pgproof archive-push --cluster bench --repo $work/repo "\$1"
SH
chmod 755 "$work/pgbackrest-or-pgproof"; echo pgproof > "$work/turn"; chmod 666 "$work/turn"; own "$work/turn"
start_cluster "archive_mode = on" "archive_command = '$work/pgbackrest-or-pgproof %p'"
as $bin/pgbench -h "$work" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
sql -c CHECKPOINT
as "$root/pgproof" init --cluster bench --repo "$work/repo" --pgdata "$work/data" >/dev/null 2>&1
pgbr_conf "process-max=$jobs" "start-fast=y"
mkdir -p "$work/bb"; own "$work/bb"
bytes=$(du -sb --exclude=pg_wal "$work/data" | cut -f1)   # what a backup copies
mb=$((bytes / 1000000))
cat "$work/data/base"/*/* >/dev/null 2>&1 || true   # warm cache
echo "pgbench scale $scale: data directory $mb MB (pg_wal excluded); $(nproc) cores; jobs $jobs; $rounds rounds; load average $(load)"
echo "versions: $("$root/pgproof" --version 2>&1 | head -1); $(pgbackrest version); $($bin/postgres --version);" \
  "$(java -version 2>&1 | head -1)"

# The commands of one compression ("zstd:3", "lz4", "none"), as arrays.
commands() {
  local type="${1%%:*}" level="${1#*:}"; [ "$level" = "$1" ] && level=""
  pgproof_backup=("$root/pgproof" backup --cluster bench --repo "$work/repo" --pgdata "$work/data" --start-fast --jobs "$jobs"
    --compress "$type" ${level:+--compress-level "$level"})
  pgproof_restore=("$root/pgproof" restore --cluster bench --repo "$work/repo" --jobs "$jobs")   # + --pgdata DIR --set LABEL
  local zt=$type; [ "$type" = zstd ] && zt=zst
  pgbr_backup=($(pgbr --type=full --compress-type="$zt" ${level:+--compress-level="$level"} backup))
  pgbr_restore=($(pgbr restore))                                                                   # + --pg1-path=DIR --set=LABEL
  local bbc=none
  case "$type" in
    zstd) bbc="server-zstd:level=${level:-3},workers=$jobs" ;;
    lz4) bbc="server-lz4${level:+:level=$level}" ;;
    gzip) bbc="server-gzip${level:+:level=$level}" ;;
  esac
  bb_backup=($bin/pg_basebackup -h "$work" -p "$port" -D "$work/bb/b" -Ft -X none --checkpoint=fast --compress="$bbc" --no-sync)
}
size() { du -sb "$1" | cut -f1; }
newest() { ls "$1" | grep -E "$2" | tail -1; }

step() { # step TAG TOOL ROUND: one tool's backup (and restore) in a round
  local tag="$1" tool="$2" r="$3" label
  case "$tool" in
    pgproof)
      echo pgproof > "$work/turn"
      timed "$tag-pgproof-backup" "${pgproof_backup[@]}"
      label=$(newest "$work/repo/bench/backup" 'F$')
      echo "$tag pgproof $(size "$work/repo/bench/backup/$label")" >> "$work/stored"
      timed "$tag-pgproof-restore" "${pgproof_restore[@]}" --pgdata "$work/r" --set "$label"
      rm -rf "$work/r" ;;
    pgbackrest)
      echo pgbackrest > "$work/turn"
      timed "$tag-pgbackrest-backup" "${pgbr_backup[@]}"
      label=$(newest "$work/pgbr/backup/bench" 'F$')
      echo "$tag pgbackrest $(size "$work/pgbr/backup/bench/$label")" >> "$work/stored"
      timed "$tag-pgbackrest-restore" "${pgbr_restore[@]}" --pg1-path="$work/r" --set="$label"
      rm -rf "$work/r" ;;
    pg_basebackup)
      echo pgbackrest > "$work/turn"   # with -X none it waits for its last segment to be archived: by the quicker archive-push
      timed "$tag-pg_basebackup-backup" "${bb_backup[@]}"
      echo "$tag pg_basebackup $(size "$work/bb/b")" >> "$work/stored"
      rm -rf "$work/bb/b" ;;
  esac
}

: > "$work/times"; : > "$work/stored"
settle
order=(pgproof pgbackrest pg_basebackup)
for c in $compressions; do
  commands "$c"
  tag=${c//:/}
  echo; echo "== $c: commands"
  printf '  %s\n' "${pgproof_backup[*]}" "${pgproof_restore[*]} --pgdata DIR --set LABEL" "${pgbr_backup[*]}" \
    "${pgbr_restore[*]} --pg1-path=DIR --set=LABEL" "${bb_backup[*]}"
  for r in $(seq 1 "$rounds"); do
    for i in 0 1 2; do step "$tag" "${order[$(( (i + r - 1) % 3 ))]}" "$r"; done
  done
done

# The incremental: a full backup with each tool in the first compression (not reported: a tool's incremental over a full
# in another compression would not be like for like), one load, then each tool's incremental in that compression.
commands "${compressions%% *}"
echo pgproof > "$work/turn"; timed base-pgproof-backup "${pgproof_backup[@]}"
echo pgbackrest > "$work/turn"; timed base-pgbackrest-backup "${pgbr_backup[@]}"
echo both > "$work/turn"
as $bin/pgbench -h "$work" -p "$port" -c 4 -j 2 -T "$secs" postgres > "$work/pgbench.out" 2>&1
echo pgproof > "$work/turn"
timed incr-pgproof-backup "${pgproof_backup[@]}" --type incr
echo pgbackrest > "$work/turn"
timed incr-pgbackrest-backup "${pgbr_backup[@]/--type=full/--type=incr}"
echo "incr pgproof $(size "$work/repo/bench/backup/$(newest "$work/repo/bench/backup" 'I$')")" >> "$work/stored"
echo "incr pgbackrest $(size "$work/pgbr/backup/bench/$(newest "$work/pgbr/backup/bench" 'I$')")" >> "$work/stored"
echo "load average after: $(load)"

# Report.
ms() { echo "$1 * 1000 / 1" | bc; }
line() { # line NAME TAG TOOL KIND
  local n="$2-$3-$4" w; w=$(median "$n" 2)
  local st=""; [ "$4" = backup ] && st=$(awk -v t="$2" -v o="$3" '$1==t && $2==o {s=$3} END {printf "%.1f", s/1000000}' "$work/stored")
  printf "  %-26s %6.2f s (%s)  %5d MB/s  cpu %5.2f s  peak RSS %4d MB  %s\n" "$1" "$w" "$(spread "$n" 2)" \
    $(( mb * 1000 / $(ms "$w") )) "$(median "$n" 3)" $(( $(median "$n" 4) / 1024 )) "${st:+stored $st MB}"
}
ratio() { # ratio LABEL SLOWER FASTER: median (range) of SLOWER/FASTER wall, round by round
  paste <(awk -v n="$2" '$1==n {print $2}' "$work/times") <(awk -v n="$3" '$1==n {print $2}' "$work/times") |
    awk '{print $1/$2}' | sort -g | awk -v l="$1" '{r[NR]=$1} END {printf "  %-52s %.2fx (%.2fx..%.2fx)\n", l, r[int((NR+1)/2)], r[1], r[NR]}'
}
for c in $compressions; do
  tag=${c//:/}
  echo; echo "== $c: median of $rounds (range)"
  line "pgproof backup (full)" "$tag" pgproof backup
  line "pgBackRest backup (full)" "$tag" pgbackrest backup
  line "pg_basebackup" "$tag" pg_basebackup backup
  line "pgproof restore" "$tag" pgproof restore
  line "pgBackRest restore" "$tag" pgbackrest restore
  ratio "backup, pgproof as fast as pgBackRest:" "$tag-pgbackrest-backup" "$tag-pgproof-backup"
  ratio "backup, pgproof as fast as pg_basebackup:" "$tag-pg_basebackup-backup" "$tag-pgproof-backup"
  ratio "restore, pgproof as fast as pgBackRest:" "$tag-pgbackrest-restore" "$tag-pgproof-restore"
done
echo; echo "== incremental after pgbench -c 4 -j 2 -T $secs ($(grep -E '^number of transactions actually processed' "$work/pgbench.out" | sed 's/.*: //') transactions), ${compressions%% *}"
for t in pgproof pgbackrest; do
  printf "  %-26s %6.2f s  cpu %5.2f s  peak RSS %4d MB  stored %.1f MB\n" "$t incremental" "$(median "incr-$t-backup" 2)" \
    "$(median "incr-$t-backup" 3)" $(( $(median "incr-$t-backup" 4) / 1024 )) \
    "$(awk -v o="$t" '$1=="incr" && $2==o {printf "%.3f", $3/1000000}' "$work/stored")"
done
awk '$1=="incr" {s[$2]=$3} END {printf "  incremental stored, pgproof / pgBackRest: %.3f (pgproof is block-level; Debian'"'"'s pgBackRest 2.45 is file-level)\n", s["pgproof"]/s["pgbackrest"]}' "$work/stored"
