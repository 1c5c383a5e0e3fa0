"""The lexer of Go's text/template (text/template/parse/lex.go), token for token.

Hand-written because the parser's error messages and the positions that execution errors
report (``template: :1:7: executing ...``) come from the lexer's view of the text: a Python
regex tokenizer would split ``{{- .X -}}``, comments and raw strings differently.

Tokens are ``Item(typ, val, pos, line)``; ``pos`` is the byte offset Go uses (we count
characters of the UTF-8 text as bytes, see ``_byte_offsets``) and ``line`` the 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass

# item types (lex.go's itemType); keywords after KEYWORD
ERROR, BOOL, CHAR, CHARCONST, COMPLEX, ASSIGN, DECLARE, EOF, FIELD, IDENT, LDELIM, LPAREN = range(
    12
)
NUMBER, PIPE, RAWSTRING, RDELIM, RPAREN, SPACE, STRING, TEXT, VARIABLE = range(12, 21)
KEYWORD, DOT, BLOCK, BREAK, CONTINUE, DEFINE, ELSE, END, IF, NIL, RANGE = range(21, 32)
TEMPLATE, WITH = range(32, 34)

KEYWORDS = {
    ".": DOT, "block": BLOCK, "break": BREAK, "continue": CONTINUE, "define": DEFINE,
    "else": ELSE, "end": END, "if": IF, "range": RANGE, "nil": NIL, "template": TEMPLATE,
    "with": WITH,
}  # fmt: skip

LEFT, RIGHT = "{{", "}}"
SPACES = " \t\r\n"


@dataclass(slots=True)
class Item:
    typ: int
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        # lex.go item.String(): what parse errors quote
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ > KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return f"{go_quote(self.val[:10])}..."
        return go_quote(self.val)


def go_quote(s: str) -> str:
    """strconv.Quote: double-quoted with Go escapes (non-printables as \\x, \\u)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class Lexer:
    """Turns template text into Items; ``items()`` runs it to the end (or to an error)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.out: list[Item] = []
        self._bytepos = _byte_offsets(text)

    # -- helpers --------------------------------------------------------------------------

    def _emit(self, typ: int) -> None:
        val = self.text[self.start : self.pos]
        self.out.append(Item(typ, val, self._bytepos(self.start), self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def _ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def _advance(self, n: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _error(self, msg: str) -> None:
        self.out.append(Item(ERROR, msg, self._bytepos(self.start), self.start_line))
        raise _Stop

    def items(self) -> list[Item]:
        try:
            self._lex_text()
        except _Stop:
            pass
        return self.out

    # -- text and delimiters ----------------------------------------------------------------

    def _lex_text(self) -> None:
        text = self.text
        while True:
            i = text.find(LEFT, self.pos)
            if i < 0:
                self._advance(len(text) - self.pos)
                if self.pos > self.start:
                    self._emit(TEXT)
                self.out.append(Item(EOF, "", self._bytepos(self.pos), self.line))
                return
            # "{{- " trims the spaces before it (the marker needs a space after it)
            trim = text.startswith("-", i + 2) and i + 3 < len(text) and text[i + 3] in SPACES
            self._advance(i - self.pos)
            end = self.pos
            if trim:
                end = self.start + len(text[self.start : self.pos].rstrip(SPACES))
            if end > self.start:
                keep, self.pos = self.pos, end
                line = self.line
                self.line = self.start_line + text.count("\n", self.start, end)
                self._emit(TEXT)
                self.pos, self.line = keep, line
            self._ignore()
            self._lex_left_delim(trim)

    def _lex_left_delim(self, trim: bool) -> None:
        self._advance(len(LEFT))
        after = 2 if trim else 0  # "- "
        if self.text.startswith("/*", self.pos + after):
            self._advance(after)
            self._ignore()
            self._lex_comment()
            return
        self._emit(LDELIM)
        self._advance(after)
        self._ignore()
        self.paren_depth = 0
        self._lex_inside()

    def _lex_comment(self) -> None:
        self._advance(2)
        i = self.text.find("*/", self.pos)
        if i < 0:
            self._error("unclosed comment")
        self._advance(i + 2 - self.pos)
        delim, trim = self._at_right_delim()
        if not delim:
            self._error("comment ends before closing delimiter")
        self._advance((2 if trim else 0) + len(RIGHT))
        self._ignore()
        if trim:
            self._trim_following()

    def _at_right_delim(self) -> tuple[bool, bool]:
        t, p = self.text, self.pos
        if p + 1 < len(t) and t[p] in SPACES and t[p + 1] == "-" and t.startswith(RIGHT, p + 2):
            return True, True
        return t.startswith(RIGHT, p), False

    def _trim_following(self) -> None:
        n = len(self.text) - self.pos - len(self.text[self.pos :].lstrip(SPACES))
        self._advance(n)
        self._ignore()

    def _lex_right_delim(self, trim: bool) -> None:
        if trim:
            self._advance(2)  # " -"
            self._ignore()
        self._advance(len(RIGHT))
        self._emit(RDELIM)
        if trim:
            self._trim_following()

    # -- inside an action -------------------------------------------------------------------

    def _lex_inside(self) -> None:
        while True:
            delim, trim = self._at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    self._lex_right_delim(trim)
                    return
                self._error("unclosed left paren")
            ch = self._peek()
            if ch == "":
                self._error("unclosed action")
            if ch in SPACES:
                self._lex_space()
            elif ch == "=":
                self._advance(1)
                self._emit(ASSIGN)
            elif ch == ":":
                self._advance(1)
                if self._peek() != "=":
                    self._error("expected :=")
                self._advance(1)
                self._emit(DECLARE)
            elif ch == "|":
                self._advance(1)
                self._emit(PIPE)
            elif ch == '"':
                self._lex_quote()
            elif ch == "`":
                self._lex_raw_quote()
            elif ch == "$":
                self._lex_field_or_variable(VARIABLE)
            elif ch == "'":
                self._lex_char()
            elif ch == ".":
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt and "0" <= nxt <= "9":
                    self._lex_number()
                else:
                    self._lex_field_or_variable(FIELD)
            elif ch in "+-" or "0" <= ch <= "9":
                self._lex_number()
            elif _is_alnum(ch):
                self._lex_identifier()
            elif ch == "(":
                self._advance(1)
                self._emit(LPAREN)
                self.paren_depth += 1
            elif ch == ")":
                self._advance(1)
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self._error("unexpected right paren")
                self._emit(RPAREN)
            elif ch.isascii() and ch.isprintable():
                self._advance(1)
                self._emit(CHAR)
            else:
                self._error(f"unrecognized character in action: {_go_rune(ch)}")

    def _lex_space(self) -> None:
        n = 0
        while self._peek() and self._peek() in SPACES:
            self._advance(1)
            n += 1
        # a trim-marked closing delimiter: " -}}" belongs to the delimiter
        t, p = self.text, self.pos - 1
        if t[p] in SPACES and t.startswith("-" + RIGHT, p + 1):
            self.pos -= 1
            if n == 1:
                return
        if self.pos > self.start:
            self._emit(SPACE)

    def _lex_identifier(self) -> None:
        while self._peek() and _is_alnum(self._peek()):
            self._advance(1)
        word = self.text[self.start : self.pos]
        if not self._at_terminator():
            self._error(f"bad character {_go_rune(self._peek())}")
        if word in KEYWORDS and KEYWORDS[word] > KEYWORD:
            self._emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self._emit(BOOL)
        else:
            self._emit(IDENT)

    def _lex_field_or_variable(self, typ: int) -> None:
        self._advance(1)
        if self._at_terminator():  # "." or "$" alone
            self._emit(DOT if typ == FIELD else VARIABLE)
            return
        while self._peek() and _is_alnum(self._peek()):
            self._advance(1)
        if not self._at_terminator():
            self._error(f"bad character {_go_rune(self._peek())}")
        self._emit(typ)

    def _at_terminator(self) -> bool:
        ch = self._peek()
        if ch == "" or ch in SPACES or ch in ".,|:()":
            return True
        return self.text.startswith(RIGHT, self.pos)

    def _lex_char(self) -> None:
        self._lex_quoted("'", "unterminated character constant", CHARCONST)

    def _lex_quote(self) -> None:
        self._lex_quoted('"', "unterminated quoted string", STRING)

    def _lex_quoted(self, close: str, unterminated: str, kind: int) -> None:
        """A '...' or "..." literal, as Go's lexChar/lexQuote: a backslash escapes the next
        character, a newline or the end of input before ``close`` is an error."""
        self._advance(1)
        while True:
            ch = self._peek()
            if ch == "\\":
                self._advance(1)
                if self._peek() not in ("", "\n"):
                    self._advance(1)
                    continue
                ch = self._peek()
            if ch in ("", "\n"):
                self._error(unterminated)
            self._advance(1)
            if ch == close:
                break
        self._emit(kind)

    def _lex_raw_quote(self) -> None:
        i = self.text.find("`", self.pos + 1)
        if i < 0:
            self._error("unterminated raw quoted string")
        self._advance(i + 1 - self.pos)
        self._emit(RAWSTRING)

    def _lex_number(self) -> None:
        t = self.text
        p = self.pos
        if p < len(t) and t[p] in "+-":
            p += 1
        digits = "0123456789_"
        if t.startswith(("0x", "0X"), p):
            p += 2
            digits = "0123456789abcdefABCDEF_"
        elif t.startswith(("0o", "0O"), p):
            p += 2
            digits = "01234567_"
        elif t.startswith(("0b", "0B"), p):
            p += 2
            digits = "01_"
        while p < len(t) and t[p] in digits:
            p += 1
        if p < len(t) and t[p] == ".":
            p += 1
            while p < len(t) and t[p] in digits:
                p += 1
        exp = "pP" if len(digits) > 11 else "eE"
        if p < len(t) and t[p] in exp:
            p += 1
            if p < len(t) and t[p] in "+-":
                p += 1
            while p < len(t) and t[p] in "0123456789_":
                p += 1
        if p < len(t) and t[p] == "i":
            p += 1
        self._advance(p - self.pos)
        if self._peek() and _is_alnum(self._peek()):
            self._advance(1)
            self._error(f"bad number syntax: {go_quote(t[self.start : self.pos])}")
        self._emit(NUMBER)


class _Stop(Exception):
    pass


def _go_rune(ch: str) -> str:
    """fmt's %#U: U+0023 '#'."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _byte_offsets(text: str):
    """Character index -> UTF-8 byte offset (what Go's positions count)."""
    if text.isascii():
        return lambda i: i
    table = [0]
    for ch in text:
        table.append(table[-1] + len(ch.encode()))
    return lambda i: table[i]


def lex(text: str) -> list[Item]:
    return Lexer(text).items()
