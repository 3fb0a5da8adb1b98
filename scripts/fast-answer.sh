# Sourced by the pgproof launchers (./pgproof and the installed command); defines ack_answer,
# get_answer and heap_cap.

# The Java heap cap of every command but archive-push/get: 384 MiB, or more on hosts with many
# cores (default jobs = cores; a backup holds about 24 MiB per job, an incremental 32, and the JVM
# lets the program use about 88% of the cap). Without a cap the JVM may take a quarter of the host's
# memory. PGPROOF_JAVA_OPTS (e.g. -Xmx2g) comes after it and wins.
heap_cap() {
  local n mb
  n=$(nproc 2>/dev/null || echo 2)
  mb=$((64 + 40 * (n + 2)))
  [ "$mb" -ge 384 ] || mb=384
  echo "-Xmx${mb}m"
}
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

# archive-get's fast answer, without Java: the segment was prefetched into the spool (verified
# against the SHA-256 in its repository name when it was fetched); it is checked again here, by the
# POSIX cksum (CRC-32 and size) recorded from the verified bytes, which coreutils' cksum computes
# several times faster than sha256sum, and moved into place only if it still matches.
# Anything else: return 1, Java fetches it.
get_answer() {
  local spool="" cluster="" name="" dest="" src ok sha crc size now
  while [ $# -gt 0 ]; do
    case "$1" in
      --spool-path) spool="${2:-}"; shift 2 || return 1 ;;
      --spool-path=*) spool="${1#*=}"; shift ;;
      --cluster) cluster="${2:-}"; shift 2 || return 1 ;;
      --cluster=*) cluster="${1#*=}"; shift ;;
      --) shift; break ;;
      --*=*) shift ;;
      --*) shift 2 || return 1 ;;
      *) if [ -z "$name" ]; then name="$1"; elif [ -z "$dest" ]; then dest="$1"; else return 1; fi; shift ;;
    esac
  done
  while [ $# -gt 0 ]; do
    if [ -z "$name" ]; then name="$1"; elif [ -z "$dest" ]; then dest="$1"; else return 1; fi; shift
  done
  [ -n "$spool" ] && [ -n "$cluster" ] && [ -n "$name" ] && [ -n "$dest" ] || return 1
  case "$name" in */*|.*) return 1 ;; esac
  src="$spool/$cluster/get/$name"
  ok="$src.ok"
  [ -f "$src" ] && [ -f "$ok" ] || return 1
  read -r sha crc size <"$ok" || return 1
  if [ -n "$crc" ] && [ -n "$size" ]; then
    now=$(cksum <"$src" 2>/dev/null) || return 1
    [ "$now" = "$crc $size" ]
  else
    now=$(sha256sum <"$src" 2>/dev/null) || return 1
    [ "${now%% *}" = "$sha" ]
  fi || { rm -f -- "$src" "$ok"; return 1; }
  mv -f -- "$src" "$dest" 2>/dev/null || return 1
  rm -f -- "$ok"
  echo "archive-get: restored $name for cluster \"$cluster\" from the prefetch spool (checksum verified; answered by the launcher)" >&2
}

# launch_opts NATIVE_DIR JAR: sets the array jvm_launch to the JVM options that only speed up a start:
# -DZstdNativePath=<library> when the build unpacked zstd-jni's native library for this machine under
# NATIVE_DIR (target/native), so the JVM loads it in place instead of extracting it to a temporary
# file on every start; -Dorg.newsclub.net.unix.library.override=<library> likewise for junixsocket's
# (unix-socket connections; also spares a java.io.tmpdir that is full or mounted noexec), and
# -Djava.library.path=<its directory, then Java's default> for lz4-java's (LZ4 and XXH64);
# -XX:SharedArchiveFile=<JAR without .jar>.jsa when the class-data archive built
# for JAR is there and newer than it (a stale or unusable archive is ignored by the JVM anyway);
# -XX:CompilerDirectivesFile=jit-directives.json (beside this file) unless PGPROOF_JIT_DIRECTIVES=off.
# Those directives let C2 compile only the classes where it pays within a command's few seconds
# (SHA-256 and AES-GCM intrinsics, CRC-32C, the page checksum and block hash loops); every other hot
# method stops at C1 without profiling. A backup spends about 10% less CPU, a restore 30% less
# (docs/benchmarks.md, "Just-in-time compilation"). -XX:-DisplayVMOutput keeps the JVM's note that
# it read them off stdout (warnings and crash reports do not go that way; a kill -3 thread dump does).
launch_opts() {
  local arch="${HOSTTYPE:-}" f cds="${2%.jar}.jsa" jit
  jit="${BASH_SOURCE[0]%/*}/jit-directives.json"
  jvm_launch=()
  [ "$arch" = x86_64 ] && arch=amd64
  for f in "$1"/linux/"$arch"/libzstd-jni-*.so; do
    if [ -r "$f" ]; then jvm_launch=("-DZstdNativePath=$f"); fi
  done
  for f in "$1"/lib/"$arch"-Linux-clang/jni/libjunixsocket-native-*.so; do
    if [ -r "$f" ]; then jvm_launch+=("-Dorg.newsclub.net.unix.library.override=$f"); fi
  done
  f="$1/net/jpountz/util/linux/$arch"
  if [ -r "$f/liblz4-java.so" ]; then jvm_launch+=("-Djava.library.path=$f:/usr/java/packages/lib:/usr/lib64:/lib64:/lib:/usr/lib"); fi
  if [ -r "$cds" ] && [ "$cds" -nt "$2" ]; then jvm_launch+=("-XX:SharedArchiveFile=$cds"); fi
  if [ -r "$jit" ] && [ "${PGPROOF_JIT_DIRECTIVES:-}" != off ]; then
    jvm_launch+=(-XX:+UnlockDiagnosticVMOptions "-XX:CompilerDirectivesFile=$jit" -XX:-DisplayVMOutput)
  fi
}
