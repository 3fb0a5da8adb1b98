package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The README's first quick-start command works: `./pgproof demo` restores the dropped table. */
class DemoIT {
    @Test
    void demo_restoresTheDroppedTable() {
        PgCluster.ProcessResult r = Pgproof.run(Map.of(), "demo");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(0);
        assertThat(r.stderr()).contains("orders had 15000 rows at ")
                .contains("== 8. The table is back with all 15000 rows.")
                .contains("== 9. Clean up");
    }
}
