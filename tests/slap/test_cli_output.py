"""`slap.cli.output`'s cutting rules: tables that fit 80 columns (issue 11)."""
from __future__ import annotations

import pytest

from partita.slap.cli.output import (
    Fit, fit_rows, fit_widths, output_width, shorten_end, shorten_middle, shorten_url, single_line,
    table_overhead,
)

URL = "https://example.org/some/long/path/to/software-releases/hello-web/software.cfg"


def test_shorten_middle_keeps_both_ends() -> None:
    assert shorten_middle(URL, 26) == "https://exam…/software.cfg"
    assert len(shorten_middle(URL, 26)) == 26
    assert shorten_middle("short", 26) == "short"
    assert shorten_middle("abcdef", 1) == "a"
    assert shorten_middle("abcdef", 0) == ""


def test_shorten_url_keeps_the_last_segment() -> None:
    assert shorten_url(URL, 26) == "https://exam…/software.cfg"
    assert shorten_url(URL, 24) == "https://ex…/software.cfg"
    assert shorten_url(URL, 20) == shorten_middle(URL, 20)  # no room for 8 characters before it
    assert shorten_url("no-slash-at-all-in-this-long-value", 12) == "no-sl…-value"
    assert shorten_url(URL, 200) == URL


def test_shorten_end_and_single_line() -> None:
    assert shorten_end("promise check-port failing: refused", 20) == "promise check-port …"
    assert shorten_end("ok", 20) == "ok"
    assert single_line("Traceback (most recent call last):\n  File x\n\nValueError: y\n") == \
        "Traceback (most recent call last): | File x | ValueError: y"
    assert single_line(None) == ""


def test_fit_widths_shrinks_the_widest_first_down_to_the_minimums() -> None:
    assert fit_widths([10, 5], [3, 3], 20) == [10, 5]           # fits: unchanged
    assert fit_widths([30, 5, 10], [8, 5, 8], 30) == [15, 5, 10]
    assert fit_widths([30, 30], [8, 8], 30, weights=[2, 1]) == [20, 10]
    assert fit_widths([30, 30], [20, 20], 30) == [20, 20]        # minimums win over the total
    assert fit_widths([4, 30], [8, 8], 20) == [4, 16]            # a short column keeps its width


def test_fit_rows_fit_the_width() -> None:
    rows = [["a-rather-long-instance-title", "started", "promise x failing:\nTraceback …", URL, "slappart12 on COMP-1"]]
    fits = (Fit(10, shorten_middle), Fit(9), Fit(12), Fit(16, shorten_url, weight=2.5), Fit(9))
    columns = ("title", "state", "status", "software release", "partition")
    fitted = fit_rows(columns, rows, fits, 80)
    assert sum(map(len, fitted[0])) + table_overhead(len(columns)) <= 80
    assert all("\n" not in text for text in fitted[0])
    assert fitted[0][3].startswith("https://") and fitted[0][3].endswith("…/software.cfg")
    assert fit_rows(columns, rows, fits, 400)[0][3] == URL


def test_output_width_follows_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert output_width() == 80
    monkeypatch.setenv("COLUMNS", "not a number")
    assert output_width() == 240  # not a terminal here: the pipe width
