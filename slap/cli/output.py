"""Rendering for the client commands: rich tables for people, JSON for scripts.

Cells are plain `rich.text.Text` (never markup), so a value like ``[bold]`` prints as it is.
Tables are rendered to text and written with `click.echo`, without trailing spaces: on a
terminal at its width, elsewhere (pipes, tests) at `PIPE_WIDTH` columns so lines are not wrapped.

`print_fitted_table` fits a table in `output_width` (``$COLUMNS`` when set, even on a pipe, else
as above) instead of wrapping its cells: the widest columns
give up room first, down to their minimum, and each cell is cut to its column by its column's
`Fit` (URLs in the middle, ``https://exam…/software.cfg``; status reasons at the end, on one line).
The cutting rules (`shorten_middle`, `shorten_url`, `shorten_end`, `single_line`, `fit_widths`) are pure.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 240
ELLIPSIS = "…"
URL_HEAD = 10


def output_width() -> int:
    """``$COLUMNS`` when it is a number, else the terminal's width, else `PIPE_WIDTH`."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else PIPE_WIDTH


def render(renderable: RenderableType, width: int | None = None) -> str:
    """A rich renderable as text for the current stdout (colours only on a terminal), `width`
    columns wide (by default the terminal's, else `PIPE_WIDTH`)."""
    terminal = sys.stdout.isatty()
    if width is None:
        width = shutil.get_terminal_size().columns if terminal else PIPE_WIDTH
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=terminal, markup=False, highlight=False,
                      emoji=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def cell(value: Any) -> Text:
    """One value as text: None is empty, strings as they are, the rest as compact JSON."""
    if value is None:
        return Text("")
    if isinstance(value, str):
        return Text(value)
    return Text(json.dumps(value, sort_keys=True, ensure_ascii=False))


def print_json(data: Any) -> None:
    """`data` as indented JSON, keys sorted, on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """A table with a header row."""
    table = Table(*columns, title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    click.echo(render(table))


def print_mapping(mapping: Mapping[str, Any], title: str | None = None, empty: str = "(none)") -> None:
    """A two-column key/value table (keys in the given order), or `empty` when there is nothing."""
    if title:
        click.echo(title)
    if not mapping:
        click.echo(f"  {empty}")
        return
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in mapping.items():
        table.add_row(Text(str(key)), cell(value))
    click.echo(render(table))


def single_line(text: str | None) -> str:
    """`text`'s non-blank lines, stripped, joined with `` | ``."""
    return " | ".join(line.strip() for line in str(text or "").splitlines() if line.strip())


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut in the middle (``https://exam…/software.cfg``):
    the start says where, the end says what. The end gets the larger half."""
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[:max(width, 0)]
    room = width - len(ELLIPSIS)
    head = room // 2
    return text[:head] + ELLIPSIS + text[len(text) - (room - head):]


def shorten_url(text: str, width: int) -> str:
    """`shorten_middle`, keeping the last path segment whole when there is room for it and for
    `URL_HEAD` characters before it (``https://exam…/software.cfg``)."""
    if len(text) <= width:
        return text
    slash = text.rfind("/")
    last = text[slash:] if slash > 0 else ""
    head = width - len(ELLIPSIS) - len(last)
    if not last or head < URL_HEAD:
        return shorten_middle(text, width)
    return text[:head] + ELLIPSIS + last


def shorten_end(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at the end."""
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[:max(width, 0)]
    return text[:width - len(ELLIPSIS)] + ELLIPSIS


def fit_widths(natural: Sequence[int], minimum: Sequence[int], available: int,
               weights: Sequence[float] | None = None) -> list[int]:
    """Column widths that fit in `available` characters: the widest column (width divided by its
    weight) gives up one character at a time, none below its minimum (nor below its natural
    width when that is smaller). When even the minimums do not fit, the minimums."""
    widths = list(natural)
    weights = list(weights) if weights is not None else [1.0] * len(widths)
    floors = [min(low, high) for low, high in zip(minimum, natural)]
    excess = sum(widths) - available
    while excess > 0:
        candidates = [i for i, width in enumerate(widths) if width > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i] / weights[i])
        widths[widest] -= 1
        excess -= 1
    return widths


@dataclass(frozen=True)
class Fit:
    """How a column of `print_fitted_table` gives up room: at least `minimum` characters, its
    cells cut by `shorten` (`shorten_middle` or `shorten_end`), always on one line; a column of
    `weight` 2 keeps about twice the room of a column of weight 1."""

    minimum: int
    shorten: Callable[[str, int], str] = shorten_end
    weight: float = 1.0


def table_overhead(columns: int) -> int:
    """The characters a `print_table` table spends beside its cells (padding and separators)."""
    return max(3 * columns - 1, 0)


def fit_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fits: Sequence[Fit],
             width: int) -> list[list[str]]:
    """`rows` as single-line cells cut to fit a table of `width` characters (pure)."""
    texts = [[single_line(cell(value).plain) for value in row] for row in rows]
    natural = [max([len(name), *(len(row[i]) for row in texts)]) for i, name in enumerate(columns)]
    minimum = [max(fit.minimum, len(name)) for fit, name in zip(fits, columns)]
    widths = fit_widths(natural, minimum, width - table_overhead(len(columns)), [fit.weight for fit in fits])
    return [[fit.shorten(text, size) for text, fit, size in zip(row, fits, widths)] for row in texts]


def print_fitted_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], fits: Sequence[Fit]) -> None:
    """A table that fits `output_width` columns: cells cut by their column's `Fit`, never wrapped."""
    width = output_width()
    fitted = fit_rows(columns, list(rows), fits, width)
    table = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False)
    for column in table.columns:
        column.no_wrap = True
        column.overflow = "ellipsis"
    for row in fitted:
        table.add_row(*(Text(text) for text in row))
    click.echo(render(table, width))


def echo_err(message: str) -> None:
    """One line on stderr."""
    click.echo(message, err=True)
