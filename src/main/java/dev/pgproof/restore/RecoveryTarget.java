package dev.pgproof.restore;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The recovery target a restore writes for PostgreSQL: at most one kind, plus its options. */
public record RecoveryTarget(String kind, String value, Instant time, boolean zoneAssumed, boolean exclusive, String action,
        String timeline) {

    private static final Pattern TIME = Pattern.compile(
            "(\\d{4}-\\d{2}-\\d{2})[T ](\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d{1,9})?)?)\\s*(Z|z|[+-]\\d{2}(?::?\\d{2})?)?");
    private static final DateTimeFormatter PG = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSSSSS'+00'").withZone(ZoneOffset.UTC);

    /** Builds the target from the restore options; at most one of time, lsn, xid, name, immediate. */
    public static RecoveryTarget of(String time, String lsn, String xid, String name, String target, boolean exclusive, String action,
            String timeline, ZoneId clusterZone) {
        List<String> given = new ArrayList<>();
        if (time != null) {
            given.add("--target-time");
        }
        if (lsn != null) {
            given.add("--target-lsn");
        }
        if (xid != null) {
            given.add("--target-xid");
        }
        if (name != null) {
            given.add("--target-name");
        }
        if (target != null) {
            given.add("--target");
        }
        if (given.size() > 1) {
            throw new PgproofException(ExitCode.USAGE, "more than one recovery target given: " + String.join(", ", given),
                    "PostgreSQL accepts one kind of recovery target; keep one of them");
        }
        if (action != null && !List.of("pause", "promote", "shutdown").contains(action)) {
            throw new PgproofException(ExitCode.USAGE, "invalid --target-action \"" + action + "\"", "use pause, promote or shutdown");
        }
        if (given.isEmpty() && (exclusive || action != null)) {
            throw new PgproofException(ExitCode.USAGE, "--target-exclusive and --target-action need a recovery target",
                    "give --target-time, --target-lsn, --target-xid, --target-name or --target immediate");
        }
        if (time != null) {
            Parsed p = parseTime(time, clusterZone);
            return new RecoveryTarget("time", PG.format(p.instant), p.instant, p.zoneAssumed, exclusive, action, timeline);
        }
        if (lsn != null) {
            if (!lsn.matches("[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")) {
                throw new PgproofException(ExitCode.USAGE, "invalid --target-lsn \"" + lsn + "\"", "write an LSN as PostgreSQL prints it, e.g. 0/3000028");
            }
            return new RecoveryTarget("lsn", lsn.toUpperCase(java.util.Locale.ROOT), null, false, exclusive, action, timeline);
        }
        if (xid != null) {
            if (!xid.matches("\\d+")) {
                throw new PgproofException(ExitCode.USAGE, "invalid --target-xid \"" + xid + "\"", "give a transaction id, e.g. 7402");
            }
            return new RecoveryTarget("xid", xid, null, false, exclusive, action, timeline);
        }
        if (name != null) {
            return new RecoveryTarget("name", name, null, false, exclusive, action, timeline);
        }
        if (target != null) {
            if (!target.equals("immediate")) {
                throw new PgproofException(ExitCode.USAGE, "invalid --target \"" + target + "\"", "the only value is immediate");
            }
            return new RecoveryTarget("immediate", "immediate", null, false, false, action, timeline);
        }
        return new RecoveryTarget(null, null, null, false, false, null, timeline);
    }

    record Parsed(Instant instant, boolean zoneAssumed) {}

    static Parsed parseTime(String s, ZoneId clusterZone) {
        Matcher m = TIME.matcher(s.trim());
        if (!m.matches()) {
            throw new PgproofException(ExitCode.USAGE, "invalid --target-time \"" + s + "\"",
                    "use ISO 8601, e.g. 2026-11-25T18:04:12+01:00, or the output of SELECT now(), e.g. 2026-11-25 18:04:12.345678+00");
        }
        String t = m.group(2);
        if (t.length() == 5) {
            t += ":00";
        }
        LocalDateTime local;
        try {
            local = LocalDateTime.parse(m.group(1) + "T" + t);
        } catch (java.time.format.DateTimeParseException e) {
            throw new PgproofException(ExitCode.USAGE, "invalid --target-time \"" + s + "\": " + e.getMessage(),
                    "use ISO 8601, e.g. 2026-11-25T18:04:12+01:00");
        }
        String off = m.group(3);
        if (off == null) {
            return new Parsed(local.atZone(clusterZone).toInstant(), true);
        }
        ZoneOffset zo;
        if (off.equalsIgnoreCase("z")) {
            zo = ZoneOffset.UTC;
        } else if (off.length() == 3) {
            zo = ZoneOffset.of(off + ":00");
        } else if (off.length() == 5) {
            zo = ZoneOffset.of(off.substring(0, 3) + ":" + off.substring(3));
        } else {
            zo = ZoneOffset.of(off);
        }
        return new Parsed(local.toInstant(zo), false);
    }

    public boolean isSet() {
        return kind != null;
    }

    /** The postgresql.auto.conf lines for this target. */
    public List<String> settings() {
        List<String> out = new ArrayList<>();
        if (kind != null) {
            if (kind.equals("immediate")) {
                out.add("recovery_target = 'immediate'");
            } else {
                out.add("recovery_target_" + kind + " = '" + value.replace("'", "''") + "'");
            }
            if (exclusive) {
                out.add("recovery_target_inclusive = 'false'");
            }
            if (action != null) {
                out.add("recovery_target_action = '" + action + "'");
            }
        }
        if (timeline != null) {
            out.add("recovery_target_timeline = '" + timeline + "'");
        }
        return out;
    }
}
