"""The parser of Go's text/template (text/template/parse/parse.go, node.go).

Builds the same tree Go does, with the same parse-time checks and messages: functions
must exist (``function "x" not defined``), variables must be declared, ``{{break}}`` only
inside ``{{range}}``, a pipeline stage after ``|`` must be executable, and so on. Errors are
``ParseError("template: NAME:LINE: message")``, Go's text.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from . import lexer as L
from .lexer import Item
from .values import GoTemplateError


class ParseError(GoTemplateError):
    """A template that does not parse; str() is Go's message."""


# -- nodes (node.go) ------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    pos: int


@dataclass(slots=True)
class TextNode(Node):
    text: str


@dataclass(slots=True)
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode(Node):
    text: str
    is_int: bool = False
    is_float: bool = False
    int_value: int = 0
    float_value: float = 0.0
    is_complex: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class FieldNode(Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass(slots=True)
class VariableNode(Node):
    idents: list[str]  # $x.Field.Sub -> ["$x", "Field", "Sub"]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(slots=True)
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class ChainNode(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        s = str(self.node)
        if isinstance(self.node, PipeNode):
            s = f"({s})"
        return s + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(slots=True)
class PipeNode(Node):
    line: int
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)
    is_assign: bool = False

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


@dataclass(slots=True)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class ActionNode(Node):
    line: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class BranchNode(Node):
    """if, range, with: ``pipe``, then ``body``, else ``else_``."""

    kind: str
    line: int
    pipe: PipeNode
    body: ListNode
    else_: ListNode | None

    def __str__(self) -> str:
        return "{{" + self.kind + " " + str(self.pipe) + "}}"


@dataclass(slots=True)
class BreakNode(Node):
    line: int

    def __str__(self) -> str:
        return "{{break}}"


@dataclass(slots=True)
class ContinueNode(Node):
    line: int

    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(slots=True)
class TemplateNode(Node):
    line: int
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        return "{{template " + L.go_quote(self.name) + (f" {self.pipe}" if self.pipe else "") + "}}"


@dataclass(slots=True)
class _End(Node):
    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class _Else(Node):
    line: int

    def __str__(self) -> str:
        return "{{else}}"


# -- parser (parse.go) ----------------------------------------------------------------------


class Parser:
    """One template's tree; ``{{define}}``/``{{block}}`` bodies land in ``defines``."""

    def __init__(self, text: str, name: str, funcs: set[str], defines: dict[str, ListNode]):
        self.text = text
        self.name = name
        self.funcs = funcs
        self.defines = defines
        self.items = L.lex(text)
        self.i = 0
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0

    # token access with Go's look-ahead helpers
    def next(self) -> Item:
        # the last item (EOF or a lexer error) repeats for as long as it is read
        it = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        return it

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        while True:
            it = self.next()
            if it.typ != L.SPACE:
                return it

    def peek_non_space(self) -> Item:
        it = self.next_non_space()
        self.backup()
        return it

    def errorf(self, msg: str, line: int | None = None) -> None:
        if line is None:
            line = self.items[max(self.i - 1, 0)].line
        raise ParseError(f"template: {self.name}:{line}: {msg}")

    def expect(self, typ: int, context: str) -> Item:
        it = self.next_non_space()
        if it.typ != typ:
            self.unexpected(it, context)
        return it

    def unexpected(self, it: Item, context: str) -> None:
        if it.typ == L.ERROR:
            extra = ""
            if self.action_line and self.action_line != it.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if it.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(f"{it}{extra}", it.line)
        self.errorf(f"unexpected {it} in {context}", it.line)

    # -- top level ------------------------------------------------------------------------

    def parse(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().typ != L.EOF:
            if self.peek().typ == L.LDELIM:
                start = self.i
                self.next()
                if self.next_non_space().typ == L.DEFINE:
                    self.parse_definition()
                    continue
                self.i = start
            n = self.text_or_action()
            if isinstance(n, _End | _Else):
                self.errorf(f"unexpected {n}")
            root.nodes.append(n)
        return root

    def parse_definition(self) -> None:
        name_tok = self.expect_one_of(L.STRING, L.RAWSTRING, "define clause")
        name = _unquote(self, name_tok)
        self.expect(L.RDELIM, "define clause")
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in define clause")
        self.defines[name] = body

    def expect_one_of(self, a: int, b: int, context: str) -> Item:
        it = self.next_non_space()
        if it.typ not in (a, b):
            self.unexpected(it, context)
        return it

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != L.EOF:
            n = self.text_or_action()
            if isinstance(n, _End | _Else):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError  # not reached

    def text_or_action(self) -> Node:
        it = self.next_non_space()
        if it.typ == L.TEXT:
            return TextNode(it.pos, it.val)
        if it.typ == L.LDELIM:
            self.action_line = it.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(it, "input")
        raise AssertionError

    def action(self) -> Node:
        it = self.next_non_space()
        t = it.typ
        if t == L.BLOCK:
            return self.block_control()
        if t == L.BREAK:
            return self.break_control(it, "break")
        if t == L.CONTINUE:
            return self.break_control(it, "continue")
        if t == L.ELSE:
            return self.else_control()
        if t == L.END:
            self.expect(L.RDELIM, "end")
            return _End(it.pos)
        if t in (L.IF, L.RANGE, L.WITH):
            return self.control(it.val)
        if t == L.TEMPLATE:
            return self.template_control()
        self.backup()
        tok = self.peek()
        # Variables are not popped here: they persist until "end" (parse.go).
        return ActionNode(tok.pos, tok.line, self.pipeline("command", L.RDELIM))

    def break_control(self, it: Item, word: str) -> Node:
        tok = self.next_non_space()
        if tok.typ != L.RDELIM:
            self.unexpected(tok, "{{" + word + "}}")
        if self.range_depth == 0:
            self.errorf("{{" + word + "}} outside {{range}}")
        return BreakNode(it.pos, it.line) if word == "break" else ContinueNode(it.pos, it.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        # "{{else if ...}}" / "{{else with ...}}" are "{{else}}{{if ...}}...{{end}}"
        if peek.typ in (L.IF, L.WITH):
            return _Else(peek.pos, peek.line)
        tok = self.expect(L.RDELIM, "else")
        return _Else(tok.pos, tok.line)

    def control(self, kind: str) -> BranchNode:
        n_vars = len(self.vars)
        try:
            pipe = self.pipeline(kind, L.RDELIM)
            if kind == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if kind == "range":
                self.range_depth -= 1
            else_: ListNode | None = None
            if isinstance(nxt, _Else):
                if kind in ("if", "with") and self.peek().typ == (L.IF if kind == "if" else L.WITH):
                    self.next()
                    else_ = ListNode(nxt.pos, [self.control(kind)])
                else:
                    else_, nxt = self.item_list()
                    if not isinstance(nxt, _End):
                        self.errorf(f"expected end; found {nxt}")
            return BranchNode(pipe.pos, kind, pipe.line, pipe, body, else_)
        finally:
            del self.vars[n_vars:]

    def template_control(self) -> TemplateNode:
        tok = self.next_non_space()
        name = self.parse_template_name(tok, "template clause")
        line = tok.line
        pipe = None
        if self.next_non_space().typ != L.RDELIM:
            self.backup()
            pipe = self.pipeline("template clause", L.RDELIM)
        return TemplateNode(tok.pos, line, name, pipe)

    def block_control(self) -> TemplateNode:
        tok = self.next_non_space()
        name = self.parse_template_name(tok, "block clause")
        pipe = self.pipeline("block clause", L.RDELIM)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in block clause")
        self.defines.setdefault(name, body)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def parse_template_name(self, tok: Item, context: str) -> str:
        if tok.typ in (L.STRING, L.RAWSTRING):
            return _unquote(self, tok)
        self.unexpected(tok, context)
        raise AssertionError

    # -- pipelines and commands -------------------------------------------------------------

    def pipeline(self, context: str, end: int) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        while True:  # declarations: "$x :=", "$x =", "$i, $e :="
            start = self.i
            v = self.peek_non_space()
            if v.typ != L.VARIABLE:
                break
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (L.ASSIGN, L.DECLARE):
                pipe.is_assign = nxt.typ == L.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
            elif nxt.typ == L.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (L.VARIABLE, L.RDELIM, L.RPAREN):
                        continue  # the second variable of a range
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:
                self.i = start  # "$x" is an operand, not a declaration
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in (L.BOOL, L.CHARCONST, L.COMPLEX, L.DOT, L.FIELD, L.IDENT, L.NUMBER,
                           L.NIL, L.RAWSTRING, L.STRING, L.VARIABLE, L.LPAREN):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        # only the first command of a pipeline can start with a non-executable operand
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            op = self.operand()
            if op is not None:
                cmd.args.append(op)
            tok = self.next()
            if tok.typ == L.SPACE:
                continue
            if tok.typ in (L.RDELIM, L.RPAREN):
                self.backup()
            elif tok.typ != L.PIPE:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == L.FIELD:
            chain_pos = self.peek().pos
            fields = []
            while self.peek().typ == L.FIELD:
                fields.append(self.next().val[1:])
            # Compatibility with Go's API: fields on a field or variable extend it, and the
            # node takes the position of the chain (so errors say :1:8 for .A.B at 2).
            if isinstance(node, FieldNode):
                node = FieldNode(chain_pos, node.idents + fields)
            elif isinstance(node, VariableNode):
                node = VariableNode(chain_pos, node.idents + fields)
            elif isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                self.errorf(f"unexpected . after term {L.go_quote(str(node))}")
            else:
                node = ChainNode(chain_pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        t = tok.typ
        if t == L.IDENT:
            if tok.val not in self.funcs:
                self.errorf(f"function {L.go_quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if t == L.DOT:
            return DotNode(tok.pos)
        if t == L.NIL:
            return NilNode(tok.pos)
        if t == L.VARIABLE:
            return self.use_var(tok)
        if t == L.FIELD:
            return FieldNode(tok.pos, [tok.val[1:]])
        if t == L.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if t in (L.CHARCONST, L.NUMBER, L.COMPLEX):
            return self.number(tok)
        if t == L.LPAREN:
            return self.pipeline("parenthesized pipeline", L.RPAREN)
        if t in (L.STRING, L.RAWSTRING):
            return StringNode(tok.pos, tok.val, _unquote(self, tok))
        self.backup()
        return None

    def use_var(self, tok: Item) -> VariableNode:
        name = tok.val.split(".")[0]
        if name not in self.vars:
            self.errorf(f"undefined variable {L.go_quote(name)}")
        return VariableNode(tok.pos, [tok.val])

    def number(self, tok: Item) -> NumberNode:
        """node.go newNumber: which of int/float a literal can be (ideal constants)."""
        n = NumberNode(tok.pos, tok.val)
        text = tok.val
        if tok.typ == L.CHARCONST:
            try:
                ch = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                self.errorf(f"malformed character constant: {text}")
            if len(ch) != 1:
                self.errorf(f"malformed character constant: {text}")
            n.is_int = n.is_float = True
            n.int_value, n.float_value = ord(ch), float(ord(ch))
            return n
        if text.endswith("i"):
            n.is_complex = True
            self.errorf("complex numbers are not supported in pydock's templates")
        clean = text.replace("_", "")
        try:
            n.int_value = int(clean, 0)
            n.is_int = True
            n.float_value = float(n.int_value)
            n.is_float = True
        except ValueError:
            try:
                f = (
                    float.fromhex(clean)
                    if clean.lower().lstrip("+-").startswith("0x")
                    else float(clean)
                )
            except ValueError:
                self.errorf(f"illegal number syntax: {L.go_quote(text)}")
            n.is_float = True
            n.float_value = f
            if f == int(f) and abs(f) < 2**63:
                n.is_int = True
                n.int_value = int(f)
        else:
            if not -(2**63) <= n.int_value < 2**64:
                n.is_int = False
        return n


def _unquote(p: Parser, tok: Item) -> str:
    """strconv.Unquote of a "..." or `...` literal (Go escapes map onto Python's)."""
    if tok.typ == L.RAWSTRING:
        return tok.val[1:-1].replace("\r", "")
    body = tok.val[1:-1]
    if "\\" not in body:
        return body
    # Go's escapes are Python's (\a \b \f \n \r \t \v \\ \" \xhh \ooo \uhhhh \Uhhhhhhhh);
    # escapes Python has and Go refuses (\N{...}, \', unknown letters) are refused here.
    if re.search(r"\\[^abfnrtv\\\"xuU0-7]", body.replace("\\\\", "")):
        p.errorf("invalid syntax", tok.line)
    try:
        return ast.literal_eval('"' + body + '"')
    except (ValueError, SyntaxError):
        p.errorf("invalid syntax", tok.line)
        raise AssertionError from None


def parse(text: str, name: str, funcs: set[str]) -> tuple[ListNode, dict[str, ListNode]]:
    """Parse ``text``; returns the root list and the ``{{define}}``d templates."""
    defines: dict[str, ListNode] = {}
    root = Parser(text, name, funcs, defines).parse()
    return root, defines
