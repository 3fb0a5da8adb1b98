package dev.pgproof.backup;

import dev.pgproof.repo.BackupManifest;
import dev.pgproof.util.Log;
import dev.pgproof.wal.WalFileName;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Verifies the data checksums of relation pages while a backup copies them, in the pass that
 * hashes the blocks (no second read of the file). A page is checked only when it was complete and
 * unchanged since the backup started: an all-zero page (a new page) and a page whose LSN is at or
 * after the backup's start LSN (written during the copy; WAL replay rewrites it) are skipped, as
 * is an incomplete last block (the file is being extended). A page that fails is read again from
 * the file, up to {@link #RETRIES} times with a pause: it passes when a re-read is sound (the first
 * read was torn by a concurrent write), has an LSN at or after the start, is all zeros, or is gone
 * (the file was truncated or dropped). Only a page that keeps failing with an older LSN is
 * reported. The stored copy is never replaced by a re-read: whatever changed after the start is
 * replayed from WAL, as with pg_basebackup.
 */
final class PageVerifier {
    static final int RETRIES = 3;
    private static final long PAUSE_MILLIS = 100;
    /** Relation files whose pages carry checksums: base/DB/REL, global/REL, pg_tblspc/OID/PG_VERSION_CATVERSION/DB/REL. */
    private static final Pattern RELATION = Pattern.compile(
            "(?:base/\\d+|global|pg_tblspc/\\d+/[^/]+/\\d+)/\\d+(?:_(?:fsm|vm|init))?(?:\\.(\\d+))?");

    private final long startLsn;
    private final int blockSize;
    private final long relSegSize;
    final AtomicLong checked = new AtomicLong();
    final AtomicLong skipped = new AtomicLong();
    final AtomicLong failed = new AtomicLong();
    final AtomicLong failedFiles = new AtomicLong();

    PageVerifier(String startLsn, int blockSize, int relSegSize) {
        this.startLsn = WalFileName.parseLsn(startLsn);
        this.blockSize = blockSize;
        this.relSegSize = Integer.toUnsignedLong(relSegSize);
    }

    /**
     * The segment number of a relation data file of the backup ({@code base/5/16384.2} is segment 2,
     * {@code base/5/16384_fsm} segment 0), or -1 for a file whose pages carry no checksum
     * (pg_filenode.map, PG_VERSION, pg_control, ...).
     */
    static long segmentOf(String path) {
        Matcher m = RELATION.matcher(path);
        if (!m.matches()) {
            return -1;
        }
        return m.group(1) == null ? 0 : Long.parseLong(m.group(1));
    }

    /** The page checks of one file: where to re-read from and which block of the relation fork its first block is. */
    File file(Path source, long segment) {
        return new File(source, segment * relSegSize);
    }

    /** One relation file being copied. */
    final class File {
        private final Path source;
        private final long firstBlock;

        private File(Path source, long firstBlock) {
            this.source = source;
            this.firstBlock = firstBlock;
        }

        /** One page of a window, checked in the hashing pass (no I/O); false means "suspect, read it again". */
        boolean pageOk(byte[] buf, int from, int len, long filePos) {
            if (len < blockSize || PageChecksum.isZero(buf, from, blockSize) || PageChecksum.lsn(buf, from) >= startLsn) {
                skipped.incrementAndGet();
                return true;
            }
            checked.incrementAndGet();
            return PageChecksum.compute(buf, from, blockSize, blockOf(filePos)) == PageChecksum.stored(buf, from);
        }

        private long blockOf(long filePos) {
            return firstBlock + filePos / blockSize;
        }

        /** Re-reads the suspect pages (offsets into the window) until each passes or RETRIES reads failed. */
        List<BackupManifest.BadPage> confirm(List<Integer> suspects, long fileOffset) throws IOException, InterruptedException {
            List<Long> positions = new ArrayList<>();
            for (int s : suspects) {
                positions.add(fileOffset + s);
            }
            byte[] page = new byte[blockSize];
            List<BackupManifest.BadPage> bad = new ArrayList<>();
            for (int attempt = 1; attempt <= RETRIES && !positions.isEmpty(); attempt++) {
                Thread.sleep(PAUSE_MILLIS);
                bad.clear();
                try (FileChannel ch = FileChannel.open(source, StandardOpenOption.READ)) {
                    for (Iterator<Long> it = positions.iterator(); it.hasNext(); ) {
                        long pos = it.next();
                        ByteBuffer bb = ByteBuffer.wrap(page);
                        while (bb.hasRemaining() && ch.read(bb, pos + bb.position()) > 0) {
                            // read the whole page
                        }
                        String why = null;
                        int computed = 0;
                        if (bb.hasRemaining()) {
                            why = "the file was truncated";
                        } else if (PageChecksum.isZero(page, 0, blockSize)) {
                            why = "it is all zeros now";
                        } else if (PageChecksum.lsn(page, 0) >= startLsn) {
                            why = "it was written after the backup started (LSN " + WalFileName.formatLsn(PageChecksum.lsn(page, 0)) + ")";
                        } else {
                            computed = PageChecksum.compute(page, 0, blockSize, blockOf(pos));
                            if (computed == PageChecksum.stored(page, 0)) {
                                why = "a re-read is sound (the first read was torn by a concurrent write)";
                            }
                        }
                        if (why != null) {
                            Log.debug("page checksum of %s block %d failed on the first read; not reported: %s", source, pos / blockSize, why);
                            it.remove();
                        } else {
                            bad.add(new BackupManifest.BadPage(pos / blockSize, WalFileName.formatLsn(PageChecksum.lsn(page, 0)),
                                    PageChecksum.stored(page, 0), computed));
                        }
                    }
                } catch (NoSuchFileException e) {
                    Log.debug("file %s vanished while its failed pages were re-read (dropped: WAL replay handles it)", source);
                    return List.of();
                }
            }
            failed.addAndGet(bad.size());
            return List.copyOf(bad);
        }
    }
}
