"""The ``slapos`` command: global options, then a command (as in SlapOS).

Commands come from two places, both loaded lazily (only the module of the command being run is
imported, so ``slapos --help`` imports nothing from ``master``, ``proxy`` or ``node``):

- the client commands of this package (`BUILTIN_COMMANDS`): ``request``, ``supply``, ``remove``,
  ``info``, ``list``, and SlapOS's names ``service list`` and ``service info`` for the last two;
  ``start``, ``stop`` and ``destroy`` (the state alone);
  the identity commands ``computer token create``, ``computer revoke|list|info``, the placement
  commands ``computer tag set|unset``, ``computer network set``, ``computer open|close|drain``,
  ``user create|token``, ``token create|list|revoke``, ``audit list`` and ``binary-cache list|remove``;
- the entry points of the group ``partita.cli`` declared by the other packages: a name ``a.b``
  becomes the sub-command ``b`` of the group ``a`` (groups are created on the fly).

Errors: a `PartitaError` (a bad configuration, an unreachable master, an error answered by the
master) ends the command with one line on stderr, ``slapos: error: <message>``, and exit status 1,
or 2 when the thing is not ready yet (as SlapOS's "Master is provisioning it"). ``--debug`` shows
the traceback instead. A usage error (an unknown command or option, a missing argument, a value
click refuses) prints click's usage message and exits 64 (``EX_USAGE``), never 2: a script that
waits on exit status 2 ("not ready yet") must not loop on a typo.
"""
from __future__ import annotations

import importlib
import logging
import sys
from importlib.metadata import entry_points
from collections.abc import Callable
from typing import Any

import click

from partita.slap.errors import ConfigurationError, PartitaError

ENTRY_POINT_GROUP = "partita.cli"
EXIT_ERROR = 1
EXIT_NOT_READY = 2
EXIT_USAGE = 64  # sysexits.h's EX_USAGE (click's own is 2, which here means "not ready yet")

BUILTIN_COMMANDS: dict[str, str] = {
    "request": "partita.slap.cli.request:command",
    "supply": "partita.slap.cli.supply:command",
    "remove": "partita.slap.cli.remove:command",
    "start": "partita.slap.cli.start:command",
    "stop": "partita.slap.cli.stop:command",
    "destroy": "partita.slap.cli.destroy:command",
    "info": "partita.slap.cli.info:command",
    "list": "partita.slap.cli.list:command",
    "service.list": "partita.slap.cli.list:command",
    "service.info": "partita.slap.cli.info:command",
    "configure.client": "partita.slap.cli.configure_client:command",
    "computer.token.create": "partita.slap.cli.computer_token_create:command",
    "computer.revoke": "partita.slap.cli.computer_revoke:command",
    "computer.list": "partita.slap.cli.computer_list:command",
    "computer.info": "partita.slap.cli.computer_info:command",
    "computer.tag.set": "partita.slap.cli.computer_tag_set:command",
    "computer.tag.unset": "partita.slap.cli.computer_tag_unset:command",
    "computer.network.set": "partita.slap.cli.computer_network_set:command",
    "computer.open": "partita.slap.cli.computer_open:command",
    "computer.close": "partita.slap.cli.computer_close:command",
    "computer.drain": "partita.slap.cli.computer_drain:command",
    "computer.builder.set": "partita.slap.cli.computer_builder_set:command",
    "computer.builder.unset": "partita.slap.cli.computer_builder_unset:command",
    "user.create": "partita.slap.cli.user_create:command",
    "user.token": "partita.slap.cli.user_token:command",
    "user.revoke": "partita.slap.cli.user_revoke:command",
    "token.create": "partita.slap.cli.token_create:command",
    "token.list": "partita.slap.cli.token_list:command",
    "token.revoke": "partita.slap.cli.token_revoke:command",
    "audit.list": "partita.slap.cli.audit_list:command",
    "software.info": "partita.slap.cli.software_info:command",
    "software.publish": "partita.slap.cli.software_publish:command",
    "binary-cache.list": "partita.slap.cli.binary_cache_list:command",
    "binary-cache.remove": "partita.slap.cli.binary_cache_remove:command",
}

GROUP_HELP: dict[str, str] = {
    "service": "Your instances (SlapOS's names for list and info).",
    "proxy": "The all-in-one proxy: a master with one local computer.",
    "master": "The master: the catalog and its APIs.",
    "master.packages": "The master's package index, for nodes that reach only the master: fetch, list.",
    "configure": "Write configuration files.",
    "node": "The node agent.",
    "experiment": "A cluster on hosts reached over SSH (a Grid'5000 reservation): up, status, collect, down.",
    "computer": "Computers (nodes): enrolment tokens, list, info, revocation, placement.",
    "computer.token": "Single-use tokens a node enrols with.",
    "computer.tag": "Tags placement matches (an SLA's tag.NAME=value).",
    "computer.network": "The network placement matches (network_guid, mode=unique_by_network).",
    "computer.builder": "Builders: the computers whose built software fills the binary cache (admin).",
    "user": "Users of the master (admin).",
    "token": "API tokens for scripts (used instead of a certificate).",
    "audit": "What happened on the master: who did what, when, from where.",
    "software": "Software releases: their parameters, short names (product.NAME).",
    "binary-cache": "The master's binary cache of built software: list, remove (admin).",
}


class LoadError(PartitaError):
    """A command declared by an entry point could not be imported."""


def load_target(target: str, qualified_name: str) -> click.Command:
    """Import ``module:attribute`` and check that it is a click command."""
    module_name, _, attribute = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise LoadError(f"cannot load the command '{qualified_name}' ({target}): {error}") from None
    if not isinstance(found, click.Command):
        raise LoadError(f"the command '{qualified_name}' ({target}) is not a click command")
    return found


class LazyGroup(click.Group):
    """A group whose commands are ``module:attribute`` targets imported on first use."""

    def __init__(self, *args: Any, dotted: str = "", **attrs: Any) -> None:
        super().__init__(*args, **attrs)
        self.targets: dict[str, str] = {}
        self.dotted = dotted  # "computer.token" for ``slapos computer token``; "" for the root

    def add_target(self, path: list[str], target: str) -> None:
        """Declare ``path[0] path[1] ...`` as `target`, creating sub-groups on the fly (their help
        from `GROUP_HELP`, by dotted name)."""
        head, rest = path[0], path[1:]
        if not rest:
            self.targets.setdefault(head, target)
            return
        group = self.commands.get(head)
        if not isinstance(group, LazyGroup):
            dotted = f"{self.dotted}.{head}" if self.dotted else head
            group = LazyGroup(head, dotted=dotted, help=GROUP_HELP.get(dotted, f"The {head} commands."))
            self.add_command(group)
        group.add_target(rest, target)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.targets))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.targets.get(cmd_name)
        if target is None:
            return None
        command = load_target(target, " ".join([*ctx.command_path.split()[1:], cmd_name]))
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Like click's, but the root lists other packages' commands without importing them."""
        rows = []
        for name in self.list_commands(ctx):
            target = self.targets.get(name)
            if name not in self.commands and target and ctx.parent is None and not target.startswith("partita.slap."):
                rows.append((name, f"(from {target.partition(':')[0]})"))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class RootGroup(LazyGroup):
    """``slapos``: discovers the commands on first use and turns errors into one line."""

    _discovered = False

    def discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for name, target in BUILTIN_COMMANDS.items():
            self.add_target(name.split("."), target)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            path = [part for part in entry.name.split(".") if part]
            if path:
                self.add_target(path, entry.value)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.discover()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.discover()
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:  # the global options
            error.exit_code = EXIT_USAGE
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:  # the command, its sub-commands, options and arguments
            error.exit_code = EXIT_USAGE
            raise
        except PartitaError as error:
            if ctx.params.get("debug"):
                raise
            report_error(error)
            ctx.exit(exit_code_for(error))


def one_line(message: str) -> str:
    """A message on one line (lines joined with `` | ``)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return " | ".join(lines)


def report_error(error: PartitaError) -> None:
    click.echo(f"slapos: error: {one_line(str(error)) or type(error).__name__}", err=True)


def exit_code_for(error: PartitaError) -> int:
    """2 when the master says "not ready yet" (as SlapOS's 408), else 1."""
    return EXIT_NOT_READY if getattr(error, "code", None) == "NOT_READY" else EXIT_ERROR


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner replaces it); the
    node's step lines use it too (`partita.node.progress`)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(verbose: int, quiet: bool, log_file: str | None) -> Callable[[], None]:
    """Log to stderr (warnings; -v info; -vv debug; -q errors only) and, with --log-file, to a file.

    Returns what undoes it (the command's context calls it when it closes).
    """
    root = logging.getLogger()
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    stderr_handler = StderrHandler()
    stderr_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [stderr_handler]
    if log_file:
        try:
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(f"cannot open the log file {log_file}: {error.strerror}") from None
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(file_handler)
    previous_level = root.level
    for handler in handlers:
        handler.setLevel(level)
        root.addHandler(handler)
    root.setLevel(level)

    def undo() -> None:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(previous_level)

    return undo


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More output (-vv for debug messages).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--log-file", metavar="FILE", help="Also write the log to FILE.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="partita", prog_name="slapos")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, log_file: str | None, debug: bool) -> None:
    """Partita, a SlapOS-compatible deployment platform.

    Global options go before the command: slapos -v request TITLE URL.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.call_on_close(setup_logging(verbose, quiet, log_file))


def main(argv: list[str] | None = None) -> int:
    """The console script: run `cli` and return its exit status."""
    try:
        cli.main(args=argv, prog_name="slapos")
    except SystemExit as done:
        if done.code is None:
            return 0
        if isinstance(done.code, int):
            return done.code
        click.echo(str(done.code), err=True)
        return EXIT_ERROR
    return 0
