# Shared set-up for the bench/ scripts (sourced): a throwaway PostgreSQL 15 cluster owned by an
# unprivileged user, and pgBackRest's configuration next to it.
bin=/usr/lib/postgresql/15/bin
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
user=$(id -un); [ "$(id -u)" = 0 ] && user=pgproof-test
as() { if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
own() { [ "$(id -u)" = 0 ] && chown "$user" "$@"; return 0; }
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time: apt-get install time" >&2; exit 1; }

# new_work PREFIX: sets $work (a directory the cluster owner can write) and removes it on exit.
new_work() {
  work=$(mktemp -d "/var/tmp/$1-XXXX"); chmod 755 "$work"; own "$work"
  trap 'cleanup' EXIT
}
cleanup_hooks=()
cleanup() {
  local h; for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  as $bin/pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}

# start_cluster [EXTRA postgresql.conf LINES...]: initdb with checksums, start on a random port; sets $port.
start_cluster() {
  as $bin/initdb -A trust --data-checksums -D "$work/data" >/dev/null
  port=$((20000 + RANDOM % 10000))
  { printf "port = %d\nunix_socket_directories = '%s'\nlisten_addresses = ''\nmax_wal_size = '2GB'\n" "$port" "$work"
    local l; for l in "$@"; do echo "$l"; done; } >> "$work/data/postgresql.conf"
  as $bin/pg_ctl -w -D "$work/data" -l "$work/log" start >/dev/null
}
# settle: waits until 31 s have passed since the script started. On ext4 without a journal (as on the
# machines this ran on), every file created in the 30 s after files were deleted scans the inodes freed
# meanwhile, which slowed the first tool to create files after a previous run's cleanup (about a tenth
# of a backup's CPU time, in the kernel). Call it before the first timed run. BENCH_SETTLE=0 skips the
# wait (the test suite's run of bench/compare.sh, which only shows that the script works).
settle() { [ "${BENCH_SETTLE:-1}" = 0 ] && return 0; local s=$((31 - SECONDS)); [ "$s" -le 0 ] || sleep "$s"; }
sql() { as $bin/psql -Atq -h "$work" -p "$port" -d postgres "$@"; }
set_archive_command() { sql -c "ALTER SYSTEM SET archive_command = '$1'" -c "SELECT pg_reload_conf()" >/dev/null; }

# pgbr_conf [EXTRA global lines...]: writes $work/pgbackrest.conf (repository $work/pgbr, zstd 3) and creates the stanza.
pgbr_conf() {
  # The spool is not the repository: a restore clears the spool's archive queue, which would be the repository's archive.
  mkdir -p "$work/pgbr" "$work/pgbr-spool"; own "$work/pgbr" "$work/pgbr-spool"
  { printf "[global]\nrepo1-path=%s\ncompress-type=zst\ncompress-level=3\nrepo1-retention-full=99\nlog-level-console=warn\nlog-level-file=off\nlock-path=%s\nspool-path=%s\n" \
      "$work/pgbr" "$work/pgbr-spool" "$work/pgbr-spool"
    local l; for l in "$@"; do echo "$l"; done
    printf "[bench]\npg1-path=%s\npg1-port=%s\npg1-socket-path=%s\n" "$work/data" "$port" "$work"; } > "$work/pgbackrest.conf"
  as pgbackrest --config="$work/pgbackrest.conf" --stanza=bench stanza-create >/dev/null 2>&1
}
pgbr() { echo pgbackrest --config="$work/pgbackrest.conf" --stanza=bench "$@"; }

# timed NAME CMD...: runs CMD as the cluster owner under /usr/bin/time; appends
# "NAME wall_s cpu_s maxrss_kb exit" to $work/times; its stderr goes to $work/NAME.err.
timed() {
  local name="$1"; shift
  local rc=0
  local run=(); [ "$(id -u)" = 0 ] && run=(runuser -u "$user" --)
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.tmp" "${run[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  read -r e u s m < <(tail -1 "$work/time.tmp")
  echo "$name $e $(echo "$u + $s" | bc) $m $rc" >> "$work/times"
  [ $rc = 0 ] || { echo "$name FAILED (exit $rc): $(tail -c 400 "$work/$name.err")" >&2; return $rc; }
}
# median NAME FIELD(2 wall, 3 cpu, 4 maxrss): the median over the runs of NAME in $work/times.
median() { awk -v n="$1" -v f="$2" '$1==n {print $f}' "$work/times" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { awk -v n="$1" -v f="$2" '$1==n {print $f}' "$work/times" | sort -g | awk '{a[NR]=$1} END {printf "%s..%s", a[1], a[NR]}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
