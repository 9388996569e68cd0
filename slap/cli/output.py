"""Rendering for the client commands: rich tables for people, JSON for scripts.

Cells are plain `rich.text.Text` (never markup), so a value like ``[bold]`` prints as it is.
Tables are rendered to text and written with `click.echo`, without trailing spaces: on a
terminal at its width, elsewhere (pipes, tests) at `PIPE_WIDTH` columns so lines are not wrapped.
"""
from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 240


def render(renderable: RenderableType) -> str:
    """A rich renderable as text for the current stdout (colours only on a terminal)."""
    terminal = sys.stdout.isatty()
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


def echo_err(message: str) -> None:
    """One line on stderr."""
    click.echo(message, err=True)
