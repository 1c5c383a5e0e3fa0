"""Go's text/template behind every --format flag (engine/gotemplate), unit by unit, then
end to end through the ``pydock`` CLI.

The expected texts of the unit tests are what Go's text/template with Docker's functions
printed for the same templates (docker CLI 28.2, ``docker context ls --format``)."""

from __future__ import annotations

import json

import pytest
from pdcli import Pydock
from pydock.engine import gotemplate as g
from pydock.engine.gotemplate import tabwriter

ROW = g.Struct(
    "*formatter.ContainerContext",
    {"ID": "abc123", "Names": "web", "Count": 3},
    methods={"Label": g.Func(lambda k: {"a": "1"}.get(k, ""), ("string",))},
)
DATA = {
    "ID": "abc123",
    "Names": "web",
    "State": {"Status": "running", "Running": True, "Pid": 42, "Health": None},
    "Labels": {"b": "2", "a": "1"},
    "Args": ["-c", "echo"],
    "Nums": [3, 1, 2],
    "Row": ROW,
}


def run(t: str, data: object = DATA, **kw) -> str:
    return g.render(t, data, **kw)


@pytest.mark.parametrize(
    ("t", "want"),
    [
        # fields, dot, maps and slices printed as Go's fmt prints them
        ("{{.ID}}", "abc123"),
        ("{{.State.Pid}} {{.State.Running}}", "42 true"),
        ("{{.Labels}}", "map[a:1 b:2]"),
        ("{{.Args}}", "[-c echo]"),
        ("{{.Missing}}|{{.Missing.Deeper}}", "<no value>|<no value>"),
        ('{{.Labels.zz}}|{{index .Labels "zz"}}', "<no value>|<no value>"),
        ("{{with .State}}{{.Status}}{{end}}", "running"),
        ('{{.Row.Label "a"}}/{{.Row.Label "zz"}}', "1/"),
        # literals
        ("{{\"a\"}}{{1}}{{1.5}}{{true}}{{'a'}}{{0x10}}{{1e3}}", "a11.5true97161000"),
        ("{{ 1.0 }} {{ 1e21 }} {{ 1e20 }} {{ 0.1 }} {{ 1e-5 }}", "1 1e+21 1e+20 0.1 1e-05"),
        # variables
        ("{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}{{if true}}{{$x = 3}}{{end}}{{$x}}", "123"),
        ("{{range .Args}}{{$.ID}}{{end}}", "abc123abc123"),
        # if / else if / else
        ("{{if 1}}yes{{else}}no{{end}}{{if 0}}y{{else if 1}}elif{{end}}", "yeselif"),
        ('{{if ""}}a{{else}}b{{end}}{{if .Missing}}m{{else}}n{{end}}', "bn"),
        # range: index/element, maps in key order, else, break/continue, integers
        ("{{range $i, $e := .Args}}{{$i}}={{$e}};{{end}}", "0=-c;1=echo;"),
        ("{{range $k, $v := .Labels}}{{$k}}{{$v}}{{end}}", "a1b2"),
        ("{{range .Missing}}x{{else}}empty{{end}}", "empty"),
        (
            '{{range $i, $e := split "a,b,c,d" ","}}{{if eq $i 1}}{{continue}}{{end}}'
            "{{if eq $i 3}}{{break}}{{end}}{{$e}}{{end}}",
            "ac",
        ),
        ("{{range 3}}{{.}}{{end}}", "012"),
        # with / else with
        ('{{with ""}}a{{else with "b"}}{{.}}{{end}}', "b"),
        ('{{with $v := "q"}}{{$v}}{{.}}{{end}}', "qq"),
        # pipelines, parentheses, chains on parentheses
        ('{{"abc" | printf "%s-%s" "x"}}|{{"a" | upper | printf "%q"}}', 'x-abc|"A"'),
        ('{{(printf "%s" "x")}}{{(split "a.b" ".") | len}}', "x2"),
        ("{{(.State).Pid}}", "42"),
        # comparisons and logic
        (
            '{{eq 1 1}} {{eq 1 2}} {{eq "a" "b" "a"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}}'
            " {{gt 1 2}} {{ge 3 2}}",
            "true false true true true true false true",
        ),
        ('{{and 1 0 2}} {{and 1 2}} {{or 0 "" "x"}} {{not 0}} {{not "a"}}', "0 2 x true false"),
        ("{{eq .Missing 1}} {{and 0 (index nil 1)}}", "false 0"),  # and short-circuits
        # print, printf, println
        ('{{print 1 2 "a" "b" 3}}|{{println 1 "a"}}|{{print nil}}', "1 2ab3|1 a\n|<nil>"),
        (
            '{{printf "%d|%5d|%-5d|%05d|%x|%X|%o|%b|%c|%q|%U" 42 42 42 42 255 255 8 5 65 65 65}}',
            "42|   42|42   |00042|ff|FF|10|101|A|'A'|U+0041",
        ),
        (
            '{{printf "%s|%q|%v|%10s|%-10s|%.2s|%x" "abc" "a\\"b" "x" "r" "l" "hello" "hi"}}',
            'abc|"a\\"b"|x|         r|l         |he|6869',
        ),
        (
            '{{printf "%f|%.2f|%e|%g|%v|%v" 3.14159 3.14159 1234.5 0.000012 1000000.0 1.5}}',
            "3.141590|3.14|1.234500e+03|1.2e-05|1e+06|1.5",
        ),
        (
            '{{printf "%d" "x"}}|{{printf "%s" 5}}|{{printf "%d"}}|{{printf "%d" 1 2}}',
            "%!d(string=x)|%!s(int=5)|%!d(MISSING)|1%!(EXTRA int=2)",
        ),
        (
            '{{printf "%v %T" .Args .Nums}} {{printf "%+q" "é"}}',
            '[-c echo] []interface {} "\\u00e9"',
        ),  # fmt: skip
        # len, index, slice
        (
            '{{len "héllo"}} {{len .Args}} {{len .Labels}} {{index .Args 1}} {{index "abc" 1}}',
            "6 2 2 echo 98",
        ),  # fmt: skip
        ('{{slice "abcdef" 1 3}} {{slice "abcdef" 2}} {{slice .Args 1}}', "bc cdef [echo]"),
        # Docker's functions
        (
            '{{json "a<b>"}} {{json .State}} {{json .Args}} {{json nil}}',
            '"a<b>" {"Status":"running","Running":true,"Pid":42,"Health":null} ["-c","echo"] null',
        ),
        ('{{join .Args ","}} {{join (split "a:b" ":") "-"}}', "-c,echo a-b"),
        (
            '{{title "hello world-foo x\'y"}} {{lower "ABC"}} {{upper .Names}}',
            "Hello World-Foo X'Y abc WEB",
        ),  # fmt: skip
        (
            '[{{pad "x" 2 3}}][{{pad "" 2 3}}] {{truncate "abcdef" 3}} {{truncate "ab" 3}}',
            "[  x   ][] abc ab",
        ),  # fmt: skip
        # whitespace trimming and comments
        ('a  {{- "b" -}}  c {{- /* comment */ -}} d{{/* c2 */}}e', "abcde"),
        ('{{- "a" }}\n  {{- "b" -}}\n\n c', "abc"),
        # define / template / block
        (
            '{{define "T"}}[{{.}}]{{end}}{{template "T" "x"}}{{block "B" 1}}<{{.}}>{{end}}',
            "[x]<1>",
        ),  # fmt: skip
    ],
)
def test_constructs(t: str, want: str) -> None:
    assert run(t) == want


@pytest.mark.parametrize(
    ("t", "msg"),
    [
        ("{{if}}", "template: :1: missing value for if"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{if 1}}", "template: :1: unexpected EOF"),
        ("{{nosuch 1}}", 'template: :1: function "nosuch" not defined'),
        ("{{$x}}", 'template: :1: undefined variable "$x"'),
        ("{{.A | 3}}", "template: :1: non executable command in pipeline stage 2"),
        ("{{1)}}", "template: :1: unexpected right paren"),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{a#b}}", "template: :1: bad character U+0023 '#'"),
        ("{{1x}}", 'template: :1: bad number syntax: "1x"'),
        ("{{/* abc}}", "template: :1: unclosed comment"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("x\n{{.A", "template: :2: unclosed action"),
    ],
)
def test_parse_errors(t: str, msg: str) -> None:
    with pytest.raises(g.ParseError) as e:
        run(t)
    assert str(e.value) == msg


@pytest.mark.parametrize(
    ("t", "msg"),
    [
        (
            "{{.Row.Foo}}",
            'template: :1:6: executing "" at <.Row.Foo>: '
            "can't evaluate field Foo in type *formatter.ContainerContext",
        ),  # fmt: skip
        (
            "{{.Names.X}}",
            'template: :1:8: executing "" at <.Names.X>: can\'t evaluate field X in type string',
        ),  # fmt: skip
        (
            "{{.State.Health.Status}}",
            'template: :1:8: executing "" at <.State.Health.Status>: '
            "nil pointer evaluating interface {}.Status",
        ),  # fmt: skip
        (
            '{{.Row.ID "a"}}',
            'template: :1:6: executing "" at <.Row.ID>: '
            "ID has arguments but cannot be invoked as function",
        ),  # fmt: skip
        (
            "{{index .Args 5}}",
            'template: :1:2: executing "" at <index .Args 5>: '
            "error calling index: index out of range: 5",
        ),  # fmt: skip
        (
            '{{eq 1 "a"}}',
            'template: :1:2: executing "" at <eq 1 "a">: '
            "error calling eq: incompatible types for comparison",
        ),  # fmt: skip
        (
            "{{upper .Missing}}",
            'template: :1:8: executing "" at <.Missing>: invalid value; expected string',
        ),  # fmt: skip
        ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3'),
        (
            '{{split "a"}}',
            'template: :1:2: executing "" at <split>: wrong number of args for split: want 2 got 1',
        ),  # fmt: skip
        (
            "x\n  {{.Row.Nope}}",
            'template: :2:8: executing "" at <.Row.Nope>: '
            "can't evaluate field Nope in type *formatter.ContainerContext",
        ),  # fmt: skip
        (
            "{{.Labels.x}}",
            'template: :1:9: executing "" at <.Labels.x>: map has no entry for key "x"',
        ),  # fmt: skip
    ],
)
def test_exec_errors(t: str, msg: str) -> None:
    with pytest.raises(g.ExecError) as e:
        run(t, missingkey="error" if ".Labels.x" in t else "default")
    assert str(e.value) == msg


def test_struct_zero_values_and_nil_pointers() -> None:
    from pydock.engine import apitypes

    rec = {"Id": "c1", "State": {"Status": "exited"}, "Config": {"Labels": {"a": "1"}}}
    view = apitypes.typed(rec, apitypes.CONTAINER)
    t = (
        "{{.State.Pid}}|{{.State.Running}}|{{.State.Health}}|{{.HostConfig}}|{{.Args}}"
        '|{{.Config.Labels.zz}}|{{index .Config.Labels "zz"}}|{{.GraphDriver.Data}}'
    )
    assert run(t, view) == "0|false|<nil>|<nil>|[]|<no value>||map[]"
    with pytest.raises(g.ExecError, match=r"nil pointer evaluating \*types.Health.Status"):
        run("{{.State.Health.Status}}", view)


def test_inspect_falls_back_to_the_raw_record_with_missingkey_error() -> None:
    from pydock.engine import apitypes

    rec = {"Id": "c1", "State": {"Status": "exited"}, "Extra": {"k": "v"}}
    pairs = [(apitypes.typed(rec, apitypes.CONTAINER), rec)]
    assert g.inspect("{{.Extra.k}} {{.State.Pid}}", pairs) == ("v 0\n", [])
    out, errs = g.inspect("{{.State.Health.Status}}", pairs)
    assert out == "\n" and errs == [
        'template parsing error: template: :1:8: executing "" at <.State.Health.Status>: '
        'map has no entry for key "Health"'
    ]
    assert g.inspect("json", pairs)[0] == json.dumps([rec], separators=(",", ":")) + "\n"
    with pytest.raises(g.TemplateError) as e:
        g.inspect("{{if}}", pairs)
    assert e.value.exit_code == 64


def test_format_list_json_table_and_header() -> None:
    rows = [
        g.Struct("*x.ctx", {"ID": "a", "Names": "first"}),
        g.Struct("*x.ctx", {"ID": "bbbbbbbbbbbbbbbb", "Names": "x"}),
    ]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    assert g.format_list("{{.ID}}", rows, headers) == "a\nbbbbbbbbbbbbbbbb\n"
    assert g.format_list("json", rows[:1], headers) == '{"ID":"a","Names":"first"}\n'
    out = g.format_list(r"table {{.ID}}\t{{.Names | upper}}", rows, headers)
    # header through Docker's HeaderFunctions (upper keeps the title), tabwriter(10, 1, 3)
    assert out == ("CONTAINER ID       NAMES\na                  FIRST\nbbbbbbbbbbbbbbbb   X\n")
    # a field the header map lacks prints <no value>, as Docker's does
    assert g.format_list(r"table {{.ID}}\t{{.Names}}", rows[:1], {"ID": "I"}) == (
        "I         <no value>\na         first\n"
    )
    assert g.format_list("table {{.ID}}", [], headers) == "CONTAINER ID\n"
    with pytest.raises(g.TemplateError, match="^template parsing error: template: :1:2: "):
        g.format_list("{{.Nope}}", rows, headers)


def test_tabwriter_columns_are_tab_terminated() -> None:
    # tabwriter.go's example: b and c are distinct columns, d and e in none
    assert tabwriter.align("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee", 4, 1) == (
        "aaaa bbb d\naa   b   dd\na    \naa   cccc eee"
    )


def test_the_engine_is_not_imported_by_run() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pydock.engine.cli as c, pydock.engine.cmd_containers;"
        "print('pydock.engine.gotemplate' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# -- end to end ---------------------------------------------------------------------------------


def test_ps_and_inspect_formats_end_to_end(pd: Pydock) -> None:
    pd.out("run", "-d", "--name", "gt1", "-l", "tier=web", "-l", "x=y", "busybox", "sleep", "60")
    try:
        got = pd.out("ps", "--format", '{{.Names}}:{{range split .Labels ","}}<{{.}}>{{end}}')
        assert got == "gt1:<tier=web><x=y>\n"
        rows = [json.loads(x) for x in pd.out("ps", "--format", "json").splitlines()]
        assert [r["Names"] for r in rows] == ["gt1"] and rows[0]["State"] == "running"
        table = pd.out("ps", "--format", r"table {{.Names}}\t{{.Label `tier`}}").splitlines()
        assert table[0].startswith("NAMES     ") and table[1].startswith("gt1       web")
        t = (
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"
            "{{if .State.Running}}up{{else}}down{{end}} {{.HostConfig.Memory}} {{.State.Health}}"
        )
        assert pd.out("inspect", "-f", t, "gt1") == "tier=web;x=y;up 0 <nil>\n"
        doc = json.loads(pd.out("inspect", "-f", "{{json .State}}", "gt1"))
        assert doc["Status"] == "running"
        whole = json.loads(pd.out("inspect", "--format", "json", "gt1"))
        assert isinstance(whole, list) and whole[0]["Name"] == "/gt1"
        bad = pd("inspect", "-f", "{{.State.Nope}}", "gt1")
        assert bad.returncode == 1
        assert bad.stderr.decode() == (
            'pydock: template parsing error: template: :1:8: executing "" at <.State.Nope>: '
            'map has no entry for key "Nope"\n'
        )
        bad = pd("inspect", "-f", "{{if}}", "gt1")
        assert bad.returncode == 64 and b"Traceback" not in bad.stderr
        bad = pd("ps", "--format", "{{.Nope}}")
        assert bad.returncode == 1
        assert bad.stderr.decode().startswith(
            'pydock: template parsing error: template: :1:2: executing "" at <.Nope>: '
            "can't evaluate field Nope in type *formatter.ContainerContext"
        )
    finally:
        pd("rm", "-f", "gt1")


def test_images_history_volume_network_version_info_formats(pd: Pydock) -> None:
    doc = json.loads(pd.out("images", "--format", "json").splitlines()[0])
    assert doc["Repository"] == "busybox" and doc["Tag"] == "latest"
    assert pd.out("images", "--format", '{{.Repository | upper}}{{if eq .Tag "latest"}}!{{end}}') \
        == "BUSYBOX!\n"  # fmt: skip
    table = pd.out("images", "--format", r"table {{.Repository}}\t{{.Tag}}").splitlines()
    assert table == ["REPOSITORY   TAG", "busybox      latest"]
    assert pd.out("image", "inspect", "-f", "{{.RootFS.Type}} {{len .RootFS.Layers}}",
                  "busybox") == "layers 1\n"  # fmt: skip
    hist = pd.out("history", "--format", "{{.ID}}|{{.Size}}", "busybox").splitlines()
    assert len(hist) >= 1 and "|" in hist[0]
    pd.out("volume", "create", "--label", "k=v", "gtvol")
    try:
        assert pd.out("volume", "ls", "--format", "{{.Name}} {{.Label `k`}}") == "gtvol v\n"
        assert pd.out("volume", "inspect", "-f", "{{.Labels.k}} {{.Options}}", "gtvol") == (
            "v map[]\n"
        )
    finally:
        pd("volume", "rm", "gtvol")
    assert "none" in pd.out("network", "ls", "--format", "{{.Name}}").split()
    ver = pd.out("version", "--format", "{{.Client.Version}} {{.Server.Os}}")
    assert ver.split()[1] == "linux"
    assert json.loads(pd.out("version", "--format", "json"))["Client"]["Os"] == "linux"
    assert pd.out("info", "--format", "{{.Driver}}") == "vfs\n"
    bad = pd("version", "--format", "{{.Nope}}")
    assert bad.returncode == 1 and bad.stderr.decode() == (
        'pydock: template: version:1:2: executing "version" at <.Nope>: '
        "can't evaluate field Nope in type system.versionInfo\n"
    )
