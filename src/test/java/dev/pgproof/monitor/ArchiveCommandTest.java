package dev.pgproof.monitor;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ArchiveCommandTest {
    @Test
    void parse_whatInitWrites() {
        ArchiveCommand ac = ArchiveCommand.parse("/usr/local/bin/pgproof archive-push --cluster main --repo /backup/pgproof %p");
        assertThat(ac.callsPgproof()).isTrue();
        assertThat(ac.cluster()).isEqualTo("main");
        assertThat(ac.repo()).isEqualTo("/backup/pgproof");
        assertThat(ac.config()).isNull();
    }

    @Test
    void parse_quotedPathsEqualsFormsAndConfig() {
        ArchiveCommand ac = ArchiveCommand.parse("java -jar '/opt/pg proof/pgproof.jar' archive-push --cluster=reports "
                + "--config \"/etc/pg proof/p.conf\" --repo=/r\\ x %p");
        assertThat(ac.callsPgproof()).isTrue();
        assertThat(ac.cluster()).isEqualTo("reports");
        assertThat(ac.repo()).isEqualTo("/r x");
        assertThat(ac.config()).isEqualTo("/etc/pg proof/p.conf");
    }

    @Test
    void parse_environmentAssignmentsInFront() {
        ArchiveCommand ac = ArchiveCommand.parse("PGPROOF_CLUSTER=main PGPROOF_REPO=/b pgproof archive-push %p");
        assertThat(ac.callsPgproof()).isTrue();
        assertThat(ac.cluster()).isEqualTo("main");
        assertThat(ac.repo()).isEqualTo("/b");
    }

    @Test
    void parse_notPgproof() {
        assertThat(ArchiveCommand.parse("cp %p /mnt/archive/%f").callsPgproof()).isFalse();
        assertThat(ArchiveCommand.parse("pgbackrest --stanza=main archive-push %p").callsPgproof()).isFalse();
        assertThat(ArchiveCommand.parse("").callsPgproof()).isFalse();
        assertThat(ArchiveCommand.parse(null).callsPgproof()).isFalse();
        assertThat(ArchiveCommand.parse("pgproof archive-get --cluster main %f %p").callsPgproof()).isFalse();
    }

    @Test
    void parse_noCluster() {
        ArchiveCommand ac = ArchiveCommand.parse("pgproof archive-push %p");
        assertThat(ac.callsPgproof()).isTrue();
        assertThat(ac.cluster()).isNull();
        assertThat(ac.repo()).isNull();
    }

    @Test
    void parse_lastClusterWins_andFlagsBeforeArchivePushAreNotItsOwn() {
        ArchiveCommand ac = ArchiveCommand.parse("/x/pgproof archive-push --cluster a --cluster b %p");
        assertThat(ac.cluster()).isEqualTo("b");
    }
}
