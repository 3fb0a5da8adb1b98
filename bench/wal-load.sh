#!/usr/bin/env bash
# WAL archiving under a write load: a pgbench cluster (scale 50 by default, synchronous_commit = off)
# runs `pgbench -c 8 -j 2 -T 60` once per archiving set-up; every second the script samples the
# number of .ready files in pg_wal/archive_status (the archiver's backlog) and pg_stat_archiver.
# Reports per set-up: segments archived during and after the load, the largest backlog, how long
# after the load stopped the backlog took to reach 0, and pg_stat_archiver.failed_count.
# Set-ups (third argument, any of):
#   pgproof         archive_command = pgproof archive-push (one JVM per segment), local repository
#   pgproof-spool   the same with --spool-path (push-ahead: each call also pushes up to 4 more ready files)
#   pgproof-agent   with --spool-path and `pgproof agent` running (the archiver's calls find them acknowledged)
#   pgbackrest      pgbackrest archive-push (synchronous, zstd 3), for reference
#   s3, s3-agent    pgproof, and pgproof with the agent, into s3proxy (target/s3proxy/s3proxy.jar, on 127.0.0.1)
# Usage: bench/wal-load.sh [PGBENCH_SCALE] [SECONDS] ["pgproof pgproof-spool pgproof-agent pgbackrest"]
set -euo pipefail
scale="${1:-50}"
secs="${2:-60}"
setups="${3:-pgproof pgproof-spool pgproof-agent pgbackrest}"
drain_max="${DRAIN_MAX:-600}"
. "$(dirname "$0")/lib.sh"
new_work pgproof-walload
"$root/pgproof" --version >/dev/null
start_cluster "archive_mode = on" "archive_command = '/bin/true'" "synchronous_commit = off" "max_wal_size = '4GB'"
as $bin/pgbench -h "$work" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
sql -c CHECKPOINT
pgbr_conf
seg=$(sql -c "SHOW wal_segment_size" | sed 's/MB//'); seg=$((seg * 1048576))
echo "pgbench scale $scale, synchronous_commit = off, pgbench -c 8 -j 2 -T $secs; $(nproc) cores; load average $(load)"

agentpid=
agentspool=
s3pid=
# The agent writes its pid into <spool>/<cluster>/agent.lock; stop that JVM itself (runuser does not always pass the signal on).
stop_agent() {
  if [ -n "$agentpid" ]; then
    kill "$(cat "$agentspool/bench/agent.lock" 2>/dev/null)" 2>/dev/null || kill "$agentpid" 2>/dev/null || true
    wait "$agentpid" 2>/dev/null || true; agentpid=
  fi
}
cleanup_hooks+=(stop_agent '[ -n "$s3pid" ] && kill "$s3pid"')
start_s3() {
  [ -n "$s3pid" ] && return 0
  local jar="$root/target/s3proxy/s3proxy.jar"
  [ -f "$jar" ] || { echo "missing $jar: run mvn -q dependency:copy@copy-s3proxy first" >&2; exit 1; }
  s3port=$((30000 + RANDOM % 10000))
  mkdir -p "$work/s3/data/bench-bucket"
  printf "s3proxy.endpoint=http://127.0.0.1:%d\ns3proxy.authorization=aws-v2-or-v4\ns3proxy.identity=bench-identity\ns3proxy.credential=bench-credential\njclouds.provider=filesystem-nio2\njclouds.filesystem.basedir=%s\n" \
    "$s3port" "$work/s3/data" > "$work/s3/s3proxy.conf"
  java -Xmx512m -XX:+UseSerialGC -jar "$jar" --properties "$work/s3/s3proxy.conf" > "$work/s3/log" 2>&1 &
  s3pid=$!
  until curl -s -o /dev/null "http://127.0.0.1:$s3port/"; do sleep 0.2; done
  printf "[global]\ns3-endpoint = http://127.0.0.1:%d\ns3-path-style = true\ns3-access-key = bench-identity\ns3-secret-key = bench-credential\n" "$s3port" > "$work/pgproof.conf"
  chmod 600 "$work/pgproof.conf"; own "$work/pgproof.conf"
}

backlog() { ls "$work/data/pg_wal/archive_status" 2>/dev/null | grep -c '\.ready$' || true; }
# wait_drained: until no .ready file is left (at most drain_max s)
wait_drained() { local i=0; while [ "$(backlog)" -gt 0 ] && [ $i -lt "$drain_max" ]; do sleep 1; i=$((i + 1)); done; }

run_setup() {
  local name="$1" repo cmd spool="" conf=""
  case "$name" in
    s3*) start_s3; repo="s3://bench-bucket/$name"; conf="--config $work/pgproof.conf" ;;
    pgbackrest) repo="" ;;
    *) repo="$work/repo-$name" ;;
  esac
  case "$name" in *agent|pgproof-spool) spool="$work/spool-$name"; mkdir -p "$spool"; own "$spool" ;; esac
  if [ "$name" = pgbackrest ]; then
    cmd="pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push %p"
  else
    as "$root/pgproof" init --cluster bench --repo "$repo" $conf --pgdata "$work/data" >/dev/null 2>&1
    cmd="$root/pgproof archive-push --cluster bench --repo $repo $conf${spool:+ --spool-path $spool} %p"
  fi
  set_archive_command "$cmd"
  # Each load starts after a checkpoint, so each writes the same full-page images.
  sql -c "CHECKPOINT" -c "SELECT pg_switch_wal()" >/dev/null; wait_drained
  if [[ "$name" == *agent ]]; then
    as "$root/pgproof" agent --cluster bench --repo "$repo" $conf --pgdata "$work/data" --spool-path "$spool" > "$work/agent-$name.log" 2>&1 &
    agentpid=$!; agentspool="$spool"
    sleep 2
  fi
  local a0 f0 l0
  read -r a0 f0 < <(sql -F' ' -c "SELECT archived_count, failed_count FROM pg_stat_archiver")
  l0=$(sql -c "SELECT pg_current_wal_lsn() - '0/0'")
  local samples="$work/samples-$name"; : > "$samples"
  as $bin/pgbench -h "$work" -p "$port" -c 8 -j 2 -T "$secs" postgres > "$work/pgbench-$name.out" 2>&1 &
  local pgb=$! t=0 stopped="" t0
  t0=$(date +%s)
  while :; do
    t=$(( $(date +%s) - t0 ))   # seconds since the load started (a sample takes a little more than 1 s)
    if [ -z "$stopped" ] && ! kill -0 "$pgb" 2>/dev/null; then stopped=$t; fi
    local b; b=$(backlog)
    echo "$t $b $(sql -F' ' -c "SELECT archived_count, failed_count FROM pg_stat_archiver") ${stopped:+after}" >> "$samples"
    if [ -n "$stopped" ] && [ "$b" = 0 ]; then break; fi
    if [ -n "$stopped" ] && [ $((t - stopped)) -ge "$drain_max" ]; then break; fi
    sleep 1
  done
  wait "$pgb" || true
  local l1 a1 f1
  l1=$(sql -c "SELECT pg_current_wal_lsn() - '0/0'")
  read -r a1 f1 < <(sql -F' ' -c "SELECT archived_count, failed_count FROM pg_stat_archiver")
  stop_agent
  local maxb drain tps
  maxb=$(awk '{if ($2 > m) m = $2} END {print m + 0}' "$samples")
  drain=$(awk -v s="$stopped" '$2 == 0 && $1 >= s {print $1 - s; exit}' "$samples")
  if [ -n "$drain" ]; then drain="$drain s"; else drain="not within $drain_max s"; fi
  tps=$(grep -E '^tps' "$work/pgbench-$name.out" | head -1 | sed 's/tps = \([0-9.]*\).*/\1/')
  printf "%-14s WAL written %4d segments, archived %4d; max backlog %4d; backlog 0 %s after the load stopped; failed %d; pgbench %.0f tps\n" \
    "$name" $(( (l1 - l0) / seg )) $((a1 - a0)) "$maxb" "$drain" $((f1 - f0)) "${tps:-0}"
  cp "$samples" "${SAMPLES_DIR:-$work}/" 2>/dev/null || true
}
for s in $setups; do run_setup "$s"; done
echo "load average after: $(load)"
