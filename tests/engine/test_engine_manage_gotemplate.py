"""The Go-template subset behind every --format flag (engine/gotemplate.py)."""

from __future__ import annotations

import pytest
from pydock.engine import gotemplate as g

OBJ = {
    "ID": "abc123",
    "Names": "web",
    "State": {"Status": "running", "Running": True, "Pid": 42},
    "Labels": {"b": "2", "a": "1"},
    "Args": ["-c", "echo"],
    "Label": lambda key: {"a": "1"}.get(key, ""),
}


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("{{.ID}}", "abc123"),
        ("{{.State.Pid}} {{.State.Running}}", "42 true"),
        ("{{json .State}}", '{"Status":"running","Running":true,"Pid":42}'),
        ("{{.Labels}}", "map[a:1 b:2]"),
        ("{{.Args}}", "[-c echo]"),
        ("{{.Missing}}", "<no value>"),
        ('{{.Label "a"}}/{{.Label "zz"}}', "1/"),
        ("{{.Names | upper}}", "WEB"),
        ('{{index .Labels "b"}}', "2"),
        ('{{join .Args ","}}', "-c,echo"),
        ("x {{- .ID -}} y", "xabc123y"),
        ('{{printf "%s:%d" .Names .State.Pid}}', "web:42"),
        ("{{truncate .ID 3}}", "abc"),
    ],
)
def test_render(fmt: str, want: str) -> None:
    assert g.render(fmt, OBJ) == want


@pytest.mark.parametrize(
    "fmt",
    ["{{if .ID}}x{{end}}", "{{range .Args}}{{.}}{{end}}", "{{nosuchfunc .ID}}", "{{(.ID)}}"],
)
def test_unsupported_is_an_error(fmt: str) -> None:
    with pytest.raises(g.TemplateError):
        g.render(fmt, OBJ)


def test_table_has_titles_and_aligned_cells() -> None:
    rows = [{"ID": "a", "Names": "first"}, {"ID": "bbbbbbbbbbbbbbbb", "Names": "x"}]
    out = g.render_all(r"table {{.ID}}\t{{.Names}}", rows, {"ID": "CONTAINER ID"})
    lines = out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "NAMES"]
    # the second column starts at the same offset on every line
    col = lines[0].index("NAMES")
    assert lines[1][col:] == "first" and lines[2][col:] == "x"


def test_json_of_a_row_with_methods_leaves_them_out() -> None:
    from pydock.engine.pslist import _JsonRow

    row = _JsonRow({"ID": "a", "Label": lambda k: k})
    assert g.render("{{json .}}", row) == '{"ID":"a"}'
