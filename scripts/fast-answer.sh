# Sourced by the pgproof launchers (./pgproof and the installed command); defines ack_answer.
# archive-push's fast answer, without Java: the file is acknowledged in the spool (written by the
# agent or a push-ahead only after it was durable in the repository) and is still exactly the file
# that was stored (inode, size and mtime to the nanosecond). Anything else: return 1, Java pushes.
ack_answer() {
  local spool="" cluster="" file="" name ack a1 a2 a3 _sha key now
  while [ $# -gt 0 ]; do
    case "$1" in
      --spool-path) spool="${2:-}"; shift 2 || return 1 ;;
      --spool-path=*) spool="${1#*=}"; shift ;;
      --cluster) cluster="${2:-}"; shift 2 || return 1 ;;
      --cluster=*) cluster="${1#*=}"; shift ;;
      --) shift; [ $# -eq 1 ] && [ -z "$file" ] || return 1; file="$1"; shift ;;
      --*=*) shift ;;
      --*) shift 2 || return 1 ;;
      *) [ -z "$file" ] || return 1; file="$1"; shift ;;
    esac
  done
  [ -n "$spool" ] && [ -n "$cluster" ] && [ -n "$file" ] || return 1
  name="${file##*/}"
  ack="$spool/$cluster/ack/$name"
  [ -f "$ack" ] || return 1
  read -r a1 a2 a3 _sha key <"$ack" || return 1
  now=$(stat -c '%i %s %.9Y' -- "$file" 2>/dev/null) || return 1
  [ -n "$key" ] && [ "$now" = "$a1 $a2 $a3" ] || return 1
  echo "archive-push: $name is already durable for cluster \"$cluster\" as $key (acknowledged in $spool/$cluster/ack; answered by the launcher)" >&2
}
