"""The ``slapos`` root: lazy command discovery, global options, one-line errors, the console script."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from partita.slap.cli.main import RootGroup, cli, main
from tests.slap.live_master import closed_port, write_client_cfg

SLAPOS = Path(sys.executable).parent / "slapos"


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SLAPOS), *args], capture_output=True, text=True, timeout=60, env=env)


def test_console_script_bad_config_path_is_one_line_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.cfg"
    done = run_script("request", "--cfg", str(missing), "web", "/srv/sr/software.cfg")
    assert done.returncode == 1
    assert done.stderr == f"slapos: error: configuration file not found: {missing} (give one with --cfg)\n"
    assert done.stdout == ""


def test_console_script_unreachable_master_is_one_line_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    cfg = write_client_cfg(tmp_path / "client.cfg", url)
    done = run_script("list", "--cfg", str(cfg))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"slapos: error: cannot reach the master at {url}: ")


def test_help_imports_neither_master_nor_proxy() -> None:
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from partita.slap.cli.main import cli
        result = CliRunner().invoke(cli, ["--help"])
        assert result.exit_code == 0, result.output
        assert "proxy" in result.output and "request" in result.output, result.output
        loaded = sorted(m for m in sys.modules if m.split(".")[:2][-1] in ("master", "proxy", "node")
                        and m.startswith("partita."))
        assert not loaded, loaded
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_service_group_lists_its_aliases() -> None:
    result = CliRunner().invoke(cli, ["service", "--help"])
    assert result.exit_code == 0, result.output
    assert "list" in result.stdout and "info" in result.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--debug", "list", "--cfg", str(tmp_path / "nope.cfg")])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ConfigurationError"


def test_global_options_and_log_file(tmp_path: Path) -> None:
    log = tmp_path / "slapos.log"
    cfg = write_client_cfg(tmp_path / "client.cfg", f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(cli, ["-vv", "--log-file", str(log), "list", "--cfg", str(cfg)])
    assert result.exit_code == 1
    assert log.exists()
    assert CliRunner().invoke(cli, ["-q", "list", "--cfg", str(cfg)]).exit_code == 1


def test_unloadable_entry_point_is_one_error_line() -> None:
    group = RootGroup("slapos", params=cli.params, callback=cli.callback)
    group.add_target(["broken", "cmd"], "no_such_module_for_partita:command")
    result = CliRunner().invoke(group, ["broken", "cmd"])
    assert result.exit_code == 1
    assert result.stderr.startswith("slapos: error: cannot load the command 'broken cmd'")
    assert len(result.stderr.splitlines()) == 1


def test_main_returns_the_exit_status(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--help"]) == 0
    assert main(["list", "--cfg", str(tmp_path / "nope.cfg")]) == 1
    assert "slapos: error: configuration file not found" in capsys.readouterr().err


def test_usage_errors_exit_64_with_clicks_message() -> None:
    """Issue 11: exit status 2 means "not ready yet"; a usage error is EX_USAGE (64)."""
    cases = {
        ("bogus",): ("Usage: slapos [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'bogus'."),
        ("--bogus", "list"): ("Usage: slapos [OPTIONS] COMMAND [ARGS]...", "Error: No such option '--bogus'"),
        ("request",): ("Usage: slapos request [OPTIONS] TITLE URL", "Error: Missing argument 'TITLE'."),
        ("list", "--format", "xml"): ("Usage: slapos list [OPTIONS]", "Error: Invalid value for '--format'"),
        ("proxy", "start", "--port", "x"): ("Usage: slapos proxy start [OPTIONS]",
                                           "Error: Invalid value for '--port': 'x' is not a valid integer."),
        ("node", "bogus"): ("Usage: slapos node [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'bogus'."),
    }
    for args, (usage, error) in cases.items():
        done = run_script(*args)
        assert done.returncode == 64, (args, done.returncode, done.stderr)
        lines = done.stderr.splitlines()
        assert lines[0] == usage and lines[-1].startswith(error), (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert main(["list", "--format", "xml"]) == 64
    assert CliRunner().invoke(cli, ["info"]).exit_code == 64
