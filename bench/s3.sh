#!/usr/bin/env bash
# Posix vs S3 (s3proxy 4.1.0 from target/s3proxy, filesystem-nio2, on 127.0.0.1): times
# `pgproof archive-push` per WAL segment (one process per segment, as archive_command runs it) and
# a full backup of a small pgbench cluster into each repository.
# Usage: bench/s3.sh [SEGMENTS] [PGBENCH_SCALE]   (after mvn verify, or mvn dependency:copy@copy-s3proxy; run as root or a user)
set -euo pipefail
n="${1:-10}"
scale="${2:-10}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=/usr/lib/postgresql/15/bin
jar="$root/target/s3proxy/s3proxy.jar"
[ -f "$jar" ] || { echo "missing $jar: run mvn -q dependency:copy@copy-s3proxy first" >&2; exit 1; }
user=$(id -un); [ "$(id -u)" = 0 ] && user=pgproof-test
as() { if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
work=$(mktemp -d /tmp/pgproof-s3bench-XXXX); chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown "$user" "$work"
s3pid=
trap 'as $bin/pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; [ -n "$s3pid" ] && kill "$s3pid" 2>/dev/null; rm -rf "$work"' EXIT
"$root/pgproof" --version >/dev/null

s3port=$((30000 + RANDOM % 10000))
mkdir -p "$work/s3/data/bench-bucket"   # filesystem-nio2: a directory under basedir is a bucket
cat > "$work/s3/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$s3port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=bench-identity
s3proxy.credential=bench-credential
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$work/s3/data
CONF
java -Xmx512m -jar "$jar" --properties "$work/s3/s3proxy.conf" > "$work/s3/log" 2>&1 &
s3pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$s3port/"; do sleep 0.2; done
cat > "$work/pgproof.conf" <<CONF
[global]
s3-endpoint = http://127.0.0.1:$s3port
s3-path-style = true
s3-access-key = bench-identity
s3-secret-key = bench-credential
CONF
chmod 600 "$work/pgproof.conf"; [ "$(id -u)" = 0 ] && chown "$user" "$work/pgproof.conf"

as $bin/initdb -A trust --data-checksums -D "$work/data" >/dev/null
port=$((20000 + RANDOM % 10000))
printf "port = %d\nunix_socket_directories = '%s'\nlisten_addresses = ''\narchive_mode = on\narchive_command = '/bin/true'\nmax_wal_size = '2GB'\nwal_keep_size = '2GB'\n" "$port" "$work" >> "$work/data/postgresql.conf"
as $bin/pg_ctl -w -D "$work/data" -l "$work/log" start >/dev/null
as $bin/pgbench -q -i -s "$scale" -h "$work" -p "$port" postgres >/dev/null 2>&1
as $bin/psql -q -h "$work" -p "$port" -d postgres -c "CREATE TABLE t (x int, y text)" >/dev/null
for i in $(seq "$n"); do
  as $bin/psql -q -h "$work" -p "$port" -d postgres -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 60000) g; SELECT pg_switch_wal()" >/dev/null
done
posix=(--repo "$work/repo")
s3=(--repo s3://bench-bucket/pg --config "$work/pgproof.conf")
as "$root/pgproof" init --cluster bench "${posix[@]}" --pgdata "$work/data" >/dev/null 2>&1
as "$root/pgproof" init --cluster bench "${s3[@]}" --pgdata "$work/data" >/dev/null 2>&1
cur=$(as $bin/psql -Atq -h "$work" -p "$port" -d postgres -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
segs=$(cd "$work/data/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | sort | awk -v c="$cur" '$0 < c' | tail -n "$n")
timeit() {
  for s in $segs; do
    t0=$(date +%s%N); (cd "$work/data" && as "$@" "pg_wal/$s") >/dev/null 2>"$work/err" || { echo "FAILED $s: $(head -c 300 "$work/err")" >&2; }; grep -o "[0-9]* ms)" "$work/err" | tr -d " ms)" >> "$work/inner"
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
  done | sort -n
}
report() { awk -v name="$1" '{a[NR]=$1} END {printf "%-28s %d segments: min %d ms, p50 %d ms, max %d ms\n", name, NR, a[1], a[int((NR+1)/2)], a[NR]}'; }
# Wall time per process, and the time pgproof reports itself (after JVM start and settings: storage set-up, checks, upload, read-back).
: > "$work/inner"; timeit "$root/pgproof" archive-push --cluster bench "${posix[@]}" | report "archive-push posix"
sort -n "$work/inner" | report "  of which inside pgproof"
: > "$work/inner"; timeit "$root/pgproof" archive-push --cluster bench "${s3[@]}" | report "archive-push s3 (s3proxy)"
sort -n "$work/inner" | report "  of which inside pgproof"

# Backups: archive_command must deliver the backup's WAL to each repository; point it at both in turn.
for kind in posix s3; do
  if [ $kind = posix ]; then r=("${posix[@]}"); else r=("${s3[@]}"); fi
  as $bin/psql -q -h "$work" -p "$port" -d postgres -c "ALTER SYSTEM SET archive_command = '$root/pgproof archive-push --cluster bench ${r[*]} %p'" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 1
  t0=$(date +%s%N)
  as "$root/pgproof" backup --cluster bench "${r[@]}" --pgdata "$work/data" --start-fast --jobs "${JOBS:-2}" > /dev/null 2> "$work/backup-$kind.log"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  copied=$(grep -o "copied [0-9]* files, .*" "$work/backup-$kind.log" | head -1)
  echo "backup $kind: $copied; whole backup $ms ms"
done
