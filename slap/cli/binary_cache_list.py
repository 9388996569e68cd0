"""``slapos binary-cache list [--uploader COMP-ID] [--software URL]``: the entries of the master's
binary cache (admin only), newest first, in 80 columns: the key (shortened; ``--format json`` has
it whole), the release, the platform, the size, the builder that uploaded it and its age
(``uploading`` for an upload still in progress)."""
from __future__ import annotations

from typing import Any

import click

from partita.slap.cli.common import cfg_option, format_option, open_client
from partita.slap.cli.durations import ago
from partita.slap.cli.output import ELLIPSIS, Fit, print_fitted_table, print_json, shorten_end, shorten_middle

COLUMNS = ("key", "release", "platform", "size", "uploader", "age")
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def shorten_start(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at the start (``…/theia/software.cfg``): a
    release's URL ends with what it is."""
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[len(text) - max(width, 0):]
    return ELLIPSIS + text[len(text) - width + len(ELLIPSIS):]


FITS = (Fit(9, shorten_end), Fit(16, shorten_start, 2.0), Fit(10, shorten_end), Fit(7), Fit(8, shorten_middle),
        Fit(9))


def human_size(size: Any) -> str:
    """``512 B``, ``1.5 KiB``, ``700 MiB``: one decimal below 10 units; as it is when it is not a
    number of bytes."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return str(size)
    value, unit = float(size), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{size} B"
    return f"{value:.1f} {UNITS[unit]}" if value < 10 else f"{value:.0f} {UNITS[unit]}"


def row(entry: dict[str, Any]) -> list[Any]:
    """One entry as a row of `COLUMNS` (an upload in progress: ``uploading`` for its age)."""
    age = ago(entry.get("created_at")).removesuffix(" ago")
    if entry.get("state") != "complete":
        age = "uploading"
    return [entry.get("key"), entry.get("software_release_uri"), entry.get("platform"),
            human_size(entry.get("size")), entry.get("uploader"), age]


@click.command("list")
@click.option("--uploader", metavar="COMP-ID", help="Only the entries this computer uploaded.")
@click.option("--software", "software_release_uri", metavar="URL", help="Only the entries of this release.")
@cfg_option
@format_option
def command(uploader: str | None, software_release_uri: str | None, cfg: str | None, output_format: str) -> None:
    """List the binary cache: key, release, platform, size, uploader, age."""
    with open_client(cfg) as client:
        entries = client.list_binary_cache_entries(uploader, software_release_uri)
    if output_format == "json":
        print_json(entries)
        return
    if not entries:
        click.echo("The binary cache is empty." if uploader is None and software_release_uri is None
                   else "No entries.")
        return
    print_fitted_table(COLUMNS, [row(entry) for entry in entries], FITS)
