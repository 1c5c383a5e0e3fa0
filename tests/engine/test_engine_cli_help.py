"""``--help`` says what every command and flag does (issue 11: Docker's help has a line
for each); the lines come from engine/helptext.py, filled in only when help is printed."""

from __future__ import annotations

from pydock.engine import cli, helptext


def test_every_command_and_flag_has_a_line() -> None:
    assert helptext.missing(cli.build_parser()) == []


def test_top_level_help_lists_each_command_with_its_summary(pd) -> None:
    res = pd("--help")
    out = res.stdout.decode()
    assert res.returncode == 0, res.stderr
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ")}
    for word in ("run", "ps", "images", "network", "volume", "system", "exec"):
        assert word in lines, out
    assert "Create a container from an image and start it" in lines["run"]
    assert "COMMAND ..." in out and "{run," not in out  # no wall of choices in the usage


def test_run_help_explains_its_flags(pd) -> None:
    res = pd("run", "--help")
    out = res.stdout.decode()
    assert res.returncode == 0, res.stderr
    assert out.splitlines()[0].startswith("usage: pydock run")
    flat = " ".join(out.split())
    assert "-d, --detach Run in the background and print the container's ID" in flat
    assert "--pids-limit PIDS_LIMIT Most processes the container may have" in flat
    assert "--help Print this help" in flat


def test_a_shared_flag_reads_right_for_each_command(pd) -> None:
    prune = " ".join(pd.out("image", "prune", "--help").split())
    ps = " ".join(pd.out("ps", "--help").split())
    assert "-a, --all Remove every image no container uses" in prune
    assert "-a, --all Show every container" in ps
    sub = pd.out("image", "--help")
    assert "Download an image from a registry" in sub  # image pull is pull's line


def test_help_lines_are_not_built_on_the_run_path() -> None:
    """The table is read only when help is printed: building the parser leaves the
    flags without lines (the run path builds one on every start)."""
    import sys

    sys.modules.pop("pydock.engine.helptext", None)
    p = cli.build_parser("run")
    assert "pydock.engine.helptext" not in sys.modules
    run = p._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    assert next(a for a in run._actions if "--detach" in a.option_strings).help is None
