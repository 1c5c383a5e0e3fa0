"""``network ls`` and ``network inspect`` of the predefined networks (host, none): ids as
Docker's daemon gives every network, the same in every listing. No bridge is made."""

from __future__ import annotations

import json
import re


def test_host_and_none_have_ids_that_ls_and_inspect_agree_on(pd) -> None:
    p = pd
    rows = [line.split() for line in p.out("network", "ls").splitlines()]
    assert rows[0] == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["host"][2:] == ["host", "local"] and by_name["none"][2:] == ["null", "local"]
    names = [r[1] for r in rows[1:]]
    assert names == sorted(names)  # Docker's CLI sorts by name
    quiet = p.out("network", "ls", "-q")
    assert "\n\n" not in quiet and not quiet.startswith("\n")
    short = quiet.split()
    assert all(re.fullmatch("[0-9a-f]{12}", i) for i in short) and len(short) == len(names)
    full = dict(
        line.split()
        for line in p.out(
            "network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}}"
        ).splitlines()
    )
    assert all(re.fullmatch("[0-9a-f]{64}", i) for i in full.values())
    for name in ("host", "none"):
        assert full[name][:12] == by_name[name][0]
        info = json.loads(p.out("network", "inspect", name))[0]
        assert info["Id"] == full[name] and info["Name"] == name
        assert info["Driver"] == ("null" if name == "none" else "host")
        # by id prefix too, and the same id on every call
        assert p.out("network", "inspect", "-f", "{{.Name}}", full[name][:12]).strip() == name
    assert p.out("network", "ls", "-q") == quiet
