"""The command line as Docker's CLI reads it: whole flag names only, Docker's exit codes
for unknown commands, missing arguments and bad flags, one line each."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "args,code,says",
    [
        # argparse would take a prefix: --pids as --pids-limit, --mem as --memory (--pid
        # is a flag of its own now)
        (("run", "--pids", "5", "busybox", "true"), 125, "unrecognized arguments: --pids"),
        (("run", "--mem", "1g", "busybox", "true"), 125, "unrecognized arguments: --mem"),
        (("ps", "--al"), 125, "unrecognized arguments: --al"),
        (("frobnicate",), 1, "'frobnicate' is not a pydock command. See 'pydock --help'."),
        (("image", "frobnicate"), 1, "'frobnicate' is not a pydock command."),
        (("rm",), 1, "\"pydock rm\" requires at least 1 argument. See 'pydock rm --help'."),
        (("rename", "a"), 1, '"pydock rename" requires exactly 2 arguments.'),
        (("ps", "--nosuchflag"), 125, "unrecognized arguments: --nosuchflag"),
    ],
)
def test_bad_command_lines(pd, args: tuple[str, ...], code: int, says: str) -> None:
    before = pd.out("ps", "-aq")
    res = pd(*args)
    err = res.stderr.decode()
    assert res.returncode == code, err
    assert err.startswith("pydock: ") and err.count("\n") == 1 and says in err, err
    assert pd.out("ps", "-aq") == before


def test_whole_flag_names_still_work(pd) -> None:
    assert pd.out("run", "--rm", "--workdir", "/tmp", "busybox", "pwd") == "/tmp\n"
    assert pd("ps", "--all", "--quiet").returncode == 0
