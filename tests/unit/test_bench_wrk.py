"""The bench's wrk helpers: its script and reading its reports (no timing is asserted)."""

from __future__ import annotations

import pytest

from tools.bench.wrk import (
    RESULT_MARK,
    Target,
    lua_script,
    parse_done_line,
    parse_duration_ms,
    parse_output,
    parse_text_report,
)

TEXT_REPORT = """Running 12s test @ http://127.0.0.1:41235
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   150.12ms  120.50ms   1.15s    85.00%
    Req/Sec    97.50     30.12   180.00     70.00%
  Latency Distribution
     50%  127.00ms
     75%  180.00ms
     90%  300.00ms
     99%  811.00ms
  2316 requests in 12.00s, 600.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    193.00
Transfer/sec:     50.00KB
"""

DONE_LINE = (
    RESULT_MARK + '{"duration_us":12000000,"requests":2316,"p50_us":127000,"p90_us":300000,'
    '"p99_us":811000,"max_us":1150000,"status":3,"connect":0,"read":1,"write":0,"timeout":2}'
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("812.00us", 0.812), ("31.50ms", 31.5), ("1.20s", 1200.0), ("2.00m", 120_000.0)],
)
def test_wrk_durations_are_read_in_milliseconds(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == pytest.approx(ms)


def test_a_duration_wrk_never_prints_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_duration_ms("12 parsecs")


def test_the_text_report_gives_rate_percentiles_and_errors() -> None:
    result = parse_text_report(TEXT_REPORT, 32)
    assert result.connections == 32
    assert result.requests == 2316
    assert result.seconds == pytest.approx(12.0)
    assert result.rate == pytest.approx(193.0)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == pytest.approx((127, 300, 811))
    assert result.max_ms == pytest.approx(1150.0)
    assert (result.non_2xx, result.socket_errors, result.errors) == (3, 3, 6)


def test_a_clean_text_report_has_no_error_lines_and_no_errors() -> None:
    clean = "\n".join(
        line for line in TEXT_REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    result = parse_text_report(clean, 32)
    assert result.errors == 0


def test_a_report_without_a_latency_distribution_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_text_report("Requests/sec: 10.00\n", 8)


def test_the_done_line_gives_exact_figures() -> None:
    result = parse_done_line("noise\n" + DONE_LINE + "\n", 32)
    assert result is not None
    assert result.rate == pytest.approx(193.0)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == pytest.approx((127, 811, 1150))
    assert (result.non_2xx, result.socket_errors) == (3, 3)


def test_the_done_line_wins_over_the_text_report() -> None:
    result = parse_output(TEXT_REPORT + DONE_LINE.replace('"status":3', '"status":0') + "\n", 32)
    assert result.non_2xx == 0
    assert parse_output(TEXT_REPORT, 32).non_2xx == 3


def test_the_script_rotates_over_every_target_with_its_token() -> None:
    targets = [Target(f"/v1/engagements/e{n}/homework", f"token-{n}") for n in range(3)]
    script = lua_script(targets, '{"title":"t"}')
    for n in range(3):
        assert f'"/v1/engagements/e{n}/homework"' in script
        assert f'"token-{n}"' in script
    assert '"{\\"title\\":\\"t\\"}"' in script
    assert "function delay()" not in script
    assert RESULT_MARK in script


def test_a_throttled_script_waits_before_each_request() -> None:
    script = lua_script([Target("/p", "t")], "{}", delay_ms=62.5)
    assert "local delay_ms = 62.500" in script
    assert "function delay()" in script


def test_a_script_needs_targets() -> None:
    with pytest.raises(ValueError):
        lua_script([], "{}")
