"""The executor of Go's text/template (text/template/exec.go), over Python data.

It follows exec.go function for function (walk, walkIfOrWith, walkRange, evalPipeline,
evalCommand, evalField, evalCall, evalArg, validateType) so that what a template prints and
how it fails are Go's: ``<no value>`` for a missing map key, zero values for absent
``Struct`` fields, ``can't evaluate field X in type T`` for a name a struct does not have,
``error calling index: ...``, and errors located as ``template: NAME:LINE:COL: executing
"NAME" at <NODE>: MESSAGE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from . import parser as P
from .funcs import BUILTINS, Func, FuncError
from .lexer import go_quote
from .values import (
    MISSING,
    GoTemplateError,
    NilPtr,
    NilSlice,
    Struct,
    is_true,
    print_value,
    type_name,
)

MAX_DEPTH = 100000  # exec.go maxExecDepth


class ExecError(GoTemplateError):
    """A template that failed while running; str() is Go's message. ``partial`` is what
    was written before the failure (Go's Execute leaves it in the writer)."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _NoFinal:
    """exec.go missingVal: no value piped in from the previous command."""


NOFINAL: Any = _NoFinal()


class State:
    def __init__(
        self,
        name: str,
        text: str,
        defines: Mapping[str, P.ListNode],
        funcs: Mapping[str, Func],
        missingkey: str,
    ) -> None:
        self.name = name
        self.text_bytes = text.encode()
        self.defines = defines
        self.funcs = funcs
        self.missingkey = missingkey
        self.out: list[str] = []
        self.vars: list[list[Any]] = []
        self.node: P.Node | None = None
        self.depth = 0

    # -- errors ---------------------------------------------------------------------------

    def at(self, node: P.Node) -> None:
        self.node = node

    def errorf(self, msg: str) -> NoReturn:
        loc, ctx = self.name, ""
        if self.node is not None:
            pos = self.node.pos
            before = self.text_bytes[:pos]
            nl = before.rfind(b"\n")
            col = pos if nl < 0 else pos - (nl + 1)
            line = 1 + before.count(b"\n")
            loc = f"{self.name}:{line}:{col}"
            ctx = str(self.node)  # the whole node, untruncated (Tree.ErrorContext)
        if self.node is None:
            raise ExecError(
                f"template: {self.name}: executing {go_quote(self.name)}: {msg}", "".join(self.out)
            )
        raise ExecError(
            f"template: {loc}: executing {go_quote(self.name)} at <{ctx}>: {msg}",
            "".join(self.out),
        )

    # -- variables ------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def set_var(self, name: str, value: Any) -> None:
        for v in reversed(self.vars):
            if v[0] == name:
                v[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[-n][1] = value

    def var_value(self, name: str) -> Any:
        for v in reversed(self.vars):
            if v[0] == name:
                return v[1]
        self.errorf(f"undefined variable: {name}")

    # -- walking the tree -----------------------------------------------------------------

    def walk(self, dot: Any, node: P.Node) -> None:
        self.at(node)
        if isinstance(node, P.TextNode):
            self.out.append(node.text)
        elif isinstance(node, P.ActionNode):
            # Do not pop variables so they persist until next end; also, if the action
            # declares variables, don't print the result (exec.go walk).
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(print_value(val))
        elif isinstance(node, P.ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, P.BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, P.BreakNode):
            raise _Break
        elif isinstance(node, P.ContinueNode):
            raise _Continue
        elif isinstance(node, P.TemplateNode):
            self.walk_template(dot, node)
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: P.BranchNode) -> None:
        mark = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe)
            truth, ok = is_true(val)
            if not ok:
                self.errorf(f"if/with can't use {print_value(val)}")
            if truth:
                self.walk(val if node.kind == "with" else dot, node.body)
            elif node.else_ is not None:
                self.walk(dot, node.else_)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: P.BranchNode) -> None:
        self.at(node)
        outer = self.mark()
        pipe = node.pipe
        try:
            val = self.eval_pipeline(dot, pipe)
            if val is None:
                val = MISSING
            mark = self.mark()

            def one(index: Any, elem: Any) -> None:
                if pipe.decl:
                    if pipe.is_assign:
                        # with two variables the index comes first; with one, the element
                        self.set_var(pipe.decl[0].idents[0], index if len(pipe.decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(pipe.decl) > 1:
                    if pipe.is_assign:
                        self.set_var(pipe.decl[1].idents[0], elem)
                    else:
                        self.set_top_var(2, index)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                finally:
                    self.pop(mark)

            ran = False
            try:
                if isinstance(val, list | tuple):
                    for i, e in enumerate(val):
                        ran = True
                        one(i, e)
                elif isinstance(val, int) and not isinstance(val, bool):
                    # Go 1.22: range over an integer n yields 0..n-1
                    if len(pipe.decl) > 1:
                        self.errorf(f"can't use {val} to iterate over more than one variable")
                    for i in range(val):
                        ran = True
                        one(MISSING, i)
                elif isinstance(val, dict) and not isinstance(val, Struct):
                    # fmtsort: keys in sorted order
                    for k in sorted(val, key=lambda k: (not isinstance(k, int | float), k)):
                        ran = True
                        one(k, val[k])
                elif val is MISSING or isinstance(val, NilPtr):
                    pass  # "an invalid value is likely a nil map, etc. Not an error."
                else:
                    self.errorf(f"range can't iterate over {print_value(val)}")
            except _Break:
                return
            if not ran and node.else_ is not None:
                self.walk(dot, node.else_)
        finally:
            self.pop(outer)

    def walk_template(self, dot: Any, node: P.TemplateNode) -> None:
        self.at(node)
        body = self.defines.get(node.name)
        if body is None:
            self.errorf(f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        saved = self.vars
        self.vars = [["$", new_dot]]
        self.depth += 1
        try:
            self.walk(new_dot, body)
        finally:
            self.depth -= 1
            self.vars = saved

    # -- pipelines and commands -----------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: P.PipeNode) -> Any:
        self.at(pipe)
        value: Any = NOFINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            # If the object has type interface{}, dig down one level to the thing inside:
            # a nil interface (JSON's null) becomes the invalid value.
            if value is None:
                value = MISSING
        for v in pipe.decl:
            if pipe.is_assign:
                self.set_var(v.idents[0], value)
            else:
                self.push(v.idents[0], value)
        return value

    def not_a_function(self, args: list[P.Node] | None, final: Any) -> None:
        if (args is not None and len(args) > 1) or final is not NOFINAL:
            self.errorf(f"can't give argument to non-function {args[0] if args else ''}")

    def eval_command(self, dot: Any, cmd: P.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, P.FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, P.ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, P.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, P.PipeNode):
            # Parenthesized pipeline: the arguments are all inside it; final must be absent.
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, P.VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, P.BoolNode):
            return first.value
        if isinstance(first, P.DotNode):
            return dot
        if isinstance(first, P.NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, P.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, P.StringNode):
            return first.text
        self.errorf(f"can't evaluate command {first}")

    def ideal_constant(self, n: P.NumberNode) -> Any:
        t = n.text
        is_hex_int = t.lower().lstrip("+-").startswith("0x") and "p" not in t.lower()
        if n.is_float and not is_hex_int and not t.startswith("'") and any(c in t for c in ".eEpP"):
            return n.float_value
        if n.is_int:
            if not -(2**63) <= n.int_value < 2**63:
                self.errorf(f"{t} overflows int")
            return n.int_value
        self.errorf(f"{t} overflows int")

    def eval_field_node(self, dot: Any, f: P.FieldNode, args: Any, final: Any) -> Any:
        self.at(f)
        return self.eval_field_chain(dot, dot, f, f.idents, args, final)

    def eval_chain_node(self, dot: Any, c: P.ChainNode, args: Any, final: Any) -> Any:
        self.at(c)
        if isinstance(c.node, P.NilNode):
            self.errorf(f"indirection through explicit nil in {c}")
        pipe = self.eval_arg(dot, "any", c.node)
        return self.eval_field_chain(dot, pipe, c, c.fields, args, final)

    def eval_variable_node(self, dot: Any, v: P.VariableNode, args: Any, final: Any) -> Any:
        self.at(v)
        value = self.var_value(v.idents[0])
        if len(v.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, v, v.idents[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: P.Node, idents: list[str], args: Any, final: Any
    ) -> Any:
        for name in idents[:-1]:
            receiver = self.eval_field(dot, name, node, None, NOFINAL, receiver)
        # Now if it's a method, it gets the arguments.
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_function(
        self, dot: Any, node: P.IdentifierNode, cmd: P.Node, args: Any, final: Any
    ) -> Any:
        self.at(node)
        name = node.name
        if name in self.funcs:
            return self.eval_call(dot, self.funcs[name], False, cmd, name, args, final)
        if name in BUILTINS:
            return self.eval_call(dot, BUILTINS[name], True, cmd, name, args, final)
        self.errorf(f"{go_quote(name)} is not a defined function")

    def eval_field(
        self, dot: Any, name: str, node: P.Node, args: Any, final: Any, receiver: Any
    ) -> Any:
        if receiver is MISSING:
            if self.missingkey == "error":  # treat an invalid value as a missing map key
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return MISSING
        if receiver is None:
            # calling a method on a nil interface can't work; missingkey does not apply
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Struct):
            method = receiver.methods.get(name)
            if method is not None:
                return self.eval_call(dot, _as_func(method), False, node, name, args, final)
        has_args = (args is not None and len(args) > 1) or final is not NOFINAL
        if isinstance(receiver, Struct):
            if receiver.has_field(name):
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver.field(name)
        elif isinstance(receiver, NilPtr):
            self.errorf(f"nil pointer evaluating {receiver.type_name}.{name}")
        elif isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missingkey == "error":
                self.errorf(f"map has no entry for key {go_quote(name)}")
            if self.missingkey == "zero":
                return ""
            return MISSING
        self.errorf(f"can't evaluate field {name} in type {type_name(receiver)}")

    def eval_call(
        self, dot: Any, f: Func, builtin: bool, node: P.Node, name: str, args: Any, final: Any
    ) -> Any:
        args = list(args[1:]) if args is not None else []  # zeroth arg is the function
        num_in = len(args) + (final is not NOFINAL)
        fixed = len(f.params)
        if f.variadic is not None:
            if num_in < fixed:
                self.errorf(
                    f"wrong number of args for {name}: want at least {fixed} got {len(args)}"
                )
        elif num_in != fixed:
            self.errorf(f"wrong number of args for {name}: want {fixed} got {num_in}")
        if builtin and name in ("and", "or"):
            # and/or short-circuit (Go 1.18): the first false (and) or true (or) operand
            v: Any = MISSING
            for a in args:
                v = self.eval_arg(dot, "value", a)
                if is_true(v)[0] == (name == "or"):
                    return v
            if final is not NOFINAL:
                v = self.validate_type(final, "value")
            return v
        argv = []
        for i, a in enumerate(args):
            kind = f.params[i] if i < fixed else f.variadic
            argv.append(self.eval_arg(dot, kind or "any", a))
        if final is not NOFINAL:
            kind = f.params[num_in - 1] if num_in - 1 < fixed else f.variadic
            argv.append(self.validate_type(final, kind or "any"))
        try:
            return f.fn(*argv)
        except FuncError as e:
            self.at(node)
            self.errorf(f"error calling {name}: {e}")
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            self.at(node)
            self.errorf(f"error calling {name}: {e}")

    def eval_arg(self, dot: Any, kind: str, n: P.Node) -> Any:
        self.at(n)
        if isinstance(n, P.DotNode):
            return self.validate_type(dot, kind)
        if isinstance(n, P.NilNode):
            if kind == "value":
                return MISSING  # reflect.Zero(reflect.Value): the invalid value
            if kind in ("any", "[]string"):
                return None
            self.errorf(f"cannot assign nil to {_go_kind(kind)}")
        if isinstance(n, P.FieldNode):
            return self.validate_type(self.eval_field_node(dot, n, [n], NOFINAL), kind)
        if isinstance(n, P.VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, None, NOFINAL), kind)
        if isinstance(n, P.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), kind)
        if isinstance(n, P.IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, NOFINAL), kind)
        if isinstance(n, P.ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, None, NOFINAL), kind)
        if kind == "bool":
            if isinstance(n, P.BoolNode):
                return n.value
            self.errorf(f"expected bool; found {n}")
        if kind == "int":
            if isinstance(n, P.NumberNode) and n.is_int:
                return n.int_value
            self.errorf(f"expected integer; found {n}")
        if kind == "string":
            if isinstance(n, P.StringNode):
                return n.text
            self.errorf(f"expected string; found {n}")
        if kind in ("any", "value"):
            if isinstance(n, P.BoolNode):
                return n.value
            if isinstance(n, P.NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, P.StringNode):
                return n.text
        self.errorf(f"can't handle {n} for arg of type {_go_kind(kind)}")

    def validate_type(self, value: Any, kind: str) -> Any:
        if value is MISSING:
            if kind in ("any", "value"):
                # an untyped nil: accepted as a nil interface (exec.go validateType)
                return MISSING if kind == "value" else None
            if kind == "[]string":
                return NilSlice()
            self.errorf(f"invalid value; expected {_go_kind(kind)}")
        if kind in ("any", "value"):
            return value
        ok = False
        if kind == "string":
            ok = isinstance(value, str)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "[]string":
            ok = isinstance(value, list | tuple) and all(isinstance(x, str) for x in value)
            if ok:
                return list(value)
        if not ok:
            self.errorf(f"wrong type for value; expected {_go_kind(kind)}; got {type_name(value)}")
        return value


def _go_kind(kind: str) -> str:
    return {"any": "interface {}", "value": "reflect.Value"}.get(kind, kind)


def _as_func(m: Any) -> Func:
    if isinstance(m, Func):
        return m
    code = getattr(m, "__code__", None)
    n = code.co_argcount if code is not None else 0
    return Func(m, ("string",) * n)


def execute(
    root: P.ListNode,
    defines: Mapping[str, P.ListNode],
    data: Any,
    *,
    name: str,
    text: str,
    funcs: Mapping[str, Func],
    missingkey: str = "default",
) -> str:
    """Run a parsed template on ``data``; raises ExecError (with the partial output)."""
    st = State(name, text, defines, funcs, missingkey)
    st.push("$", data)
    try:
        st.walk(data, root)
    except (_Break, _Continue):  # parse-time checks keep these inside {{range}}
        pass
    except RecursionError:
        raise ExecError(
            f"template: {name}: executing {go_quote(name)}: template nesting too deep",
            "".join(st.out),
        ) from None
    return "".join(st.out)
