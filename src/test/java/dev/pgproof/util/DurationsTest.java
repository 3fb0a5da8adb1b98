package dev.pgproof.util;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DurationsTest {
    @Test
    void parse_units() {
        assertThat(Durations.parse("36h")).isEqualTo(Duration.ofHours(36));
        assertThat(Durations.parse("7d")).isEqualTo(Duration.ofDays(7));
        assertThat(Durations.parse("2w")).isEqualTo(Duration.ofDays(14));
        assertThat(Durations.parse("90m")).isEqualTo(Duration.ofMinutes(90));
        assertThat(Durations.parse("600")).isEqualTo(Duration.ofSeconds(600));
        assertThat(Durations.parse(" 5 s ")).isEqualTo(Duration.ofSeconds(5));
    }

    @Test
    void parse_rejects() {
        assertThat(Durations.parse("soon")).isNull();
        assertThat(Durations.parse("-1h")).isNull();
        assertThat(Durations.parse("1.5h")).isNull();
        assertThat(Durations.parse("3y")).isNull();
        assertThat(Durations.parse("")).isNull();
    }

    @Test
    void setting_roundTrips() {
        for (String s : new String[] {"26h", "8d", "90s", "45m", "2w"}) {
            assertThat(Durations.setting(Durations.parse(s))).isEqualTo(s);
        }
    }

    @Test
    void human() {
        assertThat(Durations.human(Duration.ofSeconds(42))).isEqualTo("42 s");
        assertThat(Durations.human(Duration.ofMinutes(17))).isEqualTo("17 min");
        assertThat(Durations.human(Duration.ofMinutes(312))).isEqualTo("5.2 h");
        assertThat(Durations.human(Duration.ofHours(75))).isEqualTo("3.1 d");
    }
}
