"""Numbers in sentences (umask.text)."""

from umask.text import change, count, duration, percent, percent_number


def test_percent():
    assert (percent(1 / 64), percent(1 / 64, digits=3), percent(None), percent(float("nan"))) == ("1.56 %", "1.562 %", "n/a", "n/a")
    # Never a certainty that is not there: more digits, then cut rather than rounded up.
    assert [percent(p, 0) for p in (0.995, 0.9996, 0.99999999, 1.0, 0.7326)] == ["99.5 %", "99.96 %", "99.999 %", "100 %", "73 %"]
    assert percent(199 / 200, 1) == "99.5 %" and percent(0.99995, 2) == "99.995 %"
    # Nor an absence: 1 of 1000 masks on target is not "0 %".
    assert [percent(p, 0) for p in (0.001, 0.004, 0.0, 1e-9)] == ["0.1 %", "0.4 %", "0 %", "< 0.001 %"]


def test_a_time_span_reads_as_a_clock_does():
    assert [duration(s) for s in (None, 9.4, 1005, 3900, 9 * 86400 + 7 * 3600 + 59)] == [
        "...", "9 s", "16 min 45 s", "1 h 05 min", "9 days 07 h"]
    assert duration(86400) == "1 day 00 h"
    # A finished run's time: tenths under a minute, the clock above.
    assert [duration(s, tenths=True) for s in (5.72, 59.94, 59.96, 433.5)] == ["5.7 s", "59.9 s", "1 min 00 s", "7 min 14 s"]


def test_count_takes_the_noun_in_its_number():
    assert (count(1, "run"), count(3, "run"), count(2, "class", "classes")) == ("1 run", "3 runs", "2 classes")


def test_a_change_carries_its_sign():
    assert (change(0.059), change(-0.041), change(0.0), change(0.12345, 2)) == ("+5.9 %", "-4.1 %", "+0.0 %", "+12.35 %")


def test_a_table_cell_never_rounds_a_share_to_all_or_nothing():
    assert [percent_number(s) for s in (999 / 1000, 1.0, 1 / 1000, 0.0, 0.4567)] == [99.9, 100.0, 0.1, 0.0, 45.7]
    assert [percent_number(s, digits=2) for s in (0.99999, 0.000001)] == [99.99, 0.01]
