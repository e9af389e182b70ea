"""mrod's own named.conf reader: a tokenizer and a generic statement parser, then the zones.

Used when named-checkconf is not installed, and to read ``named-checkconf -p`` output (the
canonical form is the same grammar, includes already inlined). It follows BIND where that
matters for finding zones: the three comment styles, quoted and unquoted words, ``include``
(glob patterns too) anywhere a statement may stand, relative include paths taken from the
``options { directory }`` in force (before it: from the named.conf's own directory), views
and zone classes. It checks syntax only; meaning (option names, values) is BIND's business.
Every error names FILE:LINE.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mrod.bindimport import zonenames
from mrod.infra.errors import MrodError

# An include chain deeper than this is a loop (BIND itself runs out of file handles).
MAX_INCLUDE_DEPTH = 32
MAX_FILE_BYTES = 64 * 1024 * 1024

_TOKEN = re.compile(
    r"""
      (?P<space>[ \t\r\f\v]+)
    | (?P<newline>\n)
    | (?P<block_comment>/\*.*?\*/)
    | (?P<line_comment>(?://|\#)[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<punct>[{};])
    | (?P<word>(?:[^\s{};"/\#]|/(?![/*]))+)
    """,
    re.VERBOSE | re.DOTALL,
)


class ConfError(MrodError):
    """A named.conf that cannot be read or parsed; the message is ``FILE:LINE: what``."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    quoted: bool
    line: int


@dataclass(slots=True)
class Statement:
    """``word word { statements } word ;`` — parts are Words and blocks (lists of Statements)."""

    parts: list[Word | list["Statement"]]
    file: str
    line: int

    @property
    def keyword(self) -> str | None:
        first = self.parts[0] if self.parts else None
        return first.text.lower() if isinstance(first, Word) and not first.quoted else None

    @property
    def words(self) -> list[Word]:
        return [p for p in self.parts if isinstance(p, Word)]

    @property
    def block(self) -> list["Statement"] | None:
        return next((p for p in self.parts if isinstance(p, list)), None)


def tokenize(text: str, file: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) for strings, words and punctuation; comments and space dropped."""
    tokens: list[tuple[str, str, int]] = []
    line, pos, end = 1, 0, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            rest = text[pos:pos + 2]
            if rest == "/*":
                raise ConfError(file, line, "unterminated /* comment")
            if rest.startswith('"'):
                raise ConfError(file, line, "unterminated quoted string")
            raise ConfError(file, line, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        value = m.group()
        if kind == "string":
            tokens.append(("string", _unescape(value[1:-1]), line))
        elif kind in ("word", "punct"):
            tokens.append((kind, value, line))
        line += value.count("\n")
        pos = m.end()
    return tokens


def _unescape(text: str) -> str:
    """BIND's lexer drops the backslash of ``\\"`` only; every other backslash stays in the
    string, for the reader of the value (a zone name's ``\\DDD``, see zonenames.py)."""
    return re.sub(r'\\(.)', lambda m: m.group(1) if m.group(1) == '"' else m.group(0), text,
                  flags=re.DOTALL) if "\\" in text else text


class _Reader:
    """Parses one file (and, through include, the files it names) into Statements."""

    def __init__(self, base_dir: Path, stack: tuple[str, ...] = ()) -> None:
        self.base_dir = base_dir          # where relative include paths start (BIND: the cwd)
        self.stack = stack                # files being read, for loop detection

    def read_file(self, path: Path, where: tuple[str, int] | None = None) -> list[Statement]:
        name = str(path)
        if len(self.stack) >= MAX_INCLUDE_DEPTH or name in self.stack:
            file, line = where or (name, 0)
            raise ConfError(file, line, f"include loop: {name} includes itself")
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            file, line = where or (name, 0)
            raise ConfError(file, line, f"cannot read {name}: {exc.strerror or exc}") from None
        if len(data) > MAX_FILE_BYTES:
            raise ConfError(name, 0, f"larger than {MAX_FILE_BYTES} bytes")
        text = data.decode("utf-8", errors="replace")
        self.stack = (*self.stack, name)
        try:
            return self.parse(text, name)
        finally:
            self.stack = self.stack[:-1]

    def parse(self, text: str, file: str) -> list[Statement]:
        tokens = tokenize(text, file)
        statements, pos = self._body(tokens, 0, file, context=())
        if pos < len(tokens):   # only a stray '}' stops the top level early
            raise ConfError(file, tokens[pos][2], "unexpected '}'")
        return statements

    def _body(self, tokens: list[tuple[str, str, int]], pos: int, file: str,
              context: tuple[str, ...]) -> tuple[list[Statement], int]:
        """Statements up to a closing '}' (not consumed) or the end of the tokens."""
        out: list[Statement] = []
        current: Statement | None = None
        end = len(tokens)
        while pos < end:
            kind, text, line = tokens[pos]
            if kind == "punct" and text == "}":
                if current is not None:
                    raise ConfError(file, line, f"missing ';' before '}}' (after {_show(current)})")
                return out, pos
            if kind == "punct" and text == ";":
                if current is None:     # BIND refuses empty statements too
                    raise ConfError(file, line, "syntax error near ';'")
                self._finish(current, out, context)
                current = None
                pos += 1
                continue
            if current is None:
                current = Statement([], file, line)
            elif current.parts and isinstance(current.parts[-1], list) and kind != "punct" \
                    and (not context or (context[-1] == "view" and current.keyword == "zone")):
                # `zone "a" { ... } zone "b" ...`: no top-level statement (nor a zone) goes on
                # after its block, so BIND wants the ';' there. (Inside options, `controls`
                # and the like, words may follow a block.)
                raise ConfError(file, line, f"missing ';' before '{text}'")
            if kind == "punct" and text == "{":
                inner_context = (*context, current.keyword or "")
                block, pos = self._body(tokens, pos + 1, file, inner_context)
                if pos >= end:
                    raise ConfError(file, tokens[-1][2], "'}' expected near end of file")
                current.parts.append(block)
                pos += 1
                continue
            current.parts.append(Word(text, kind == "string", line))
            pos += 1
        if current is not None:
            raise ConfError(file, current.line, f"missing ';' at end of file (after {_show(current)})")
        return out, pos

    def _finish(self, statement: Statement, out: list[Statement], context: tuple[str, ...]) -> None:
        keyword = statement.keyword
        if keyword == "include":
            out.extend(self._include(statement))
            return
        if keyword == "directory" and context == ("options",):
            words = statement.words
            if len(words) == 2:
                self.base_dir = _resolve(self.base_dir, words[1].text)
        out.append(statement)

    def _include(self, statement: Statement) -> list[Statement]:
        words = statement.words
        where = (statement.file, statement.line)
        if len(words) != 2 or statement.block is not None:
            raise ConfError(*where, "include takes one file name: include \"FILE\";")
        pattern = str(_resolve(self.base_dir, words[1].text))
        if glob.has_magic(pattern):
            paths = sorted(glob.glob(pattern))
            if not paths:
                raise ConfError(*where, f"include {words[1].text!r}: no file matches")
        else:
            paths = [pattern]
        included: list[Statement] = []
        for path in paths:
            included.extend(self.read_file(Path(path), where))
        return included


def _resolve(base: Path, name: str) -> Path:
    path = Path(os.path.expanduser(name)) if name.startswith("~") else Path(name)
    return path if path.is_absolute() else base / path


def _show(statement: Statement) -> str:
    words = " ".join(w.text for w in statement.words[:3])
    return f"'{words}'" if words else "a block"


def parse_file(path: Path | str, base_dir: Path | None = None) -> list[Statement]:
    """Parse named.conf and everything it includes. Relative include paths start at
    ``base_dir`` (default: the file's own directory) until ``options { directory }``."""
    path = Path(path).absolute()
    return _Reader(base_dir or path.parent).read_file(path)


def parse_text(text: str, file: str = "<text>", base_dir: Path | None = None) -> list[Statement]:
    return _Reader(base_dir or Path.cwd()).parse(text, file)


# -- zones -----------------------------------------------------------------------------------

CLASSES = {"in": "IN", "ch": "CH", "chaos": "CH", "hs": "HS", "hesiod": "HS", "any": "ANY"}


@dataclass(frozen=True, slots=True)
class ZoneDecl:
    """A zone statement as written: name as spelled (trailing dot, case), class, view, type."""

    name: str
    zone_class: str
    view: str
    type: str | None        # None for an in-view zone
    in_view: str | None
    file: str
    line: int


@dataclass
class Declarations:
    zones: list[ZoneDecl] = field(default_factory=list)
    # Zones that serve BIND itself, not mail: catalog zones (`catalog-zones { zone "..." }`)
    # and response-policy zones (`response-policy { zone "..." }`), in options or a view.
    catalogs: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)


def declarations(statements: list[Statement]) -> Declarations:
    out = Declarations()
    for st in statements:
        keyword = st.keyword
        if keyword == "zone":
            out.zones.append(_zone(st, "_default", "IN"))
        elif keyword == "view":
            words = st.words
            if len(words) < 2 or st.block is None:
                raise ConfError(st.file, st.line, "view needs a name and a { } block")
            view_class = _class_of(words[2:], st) or "IN"
            for inner in st.block:
                if inner.keyword == "zone":
                    out.zones.append(_zone(inner, words[1].text, view_class))
                else:
                    _special_zones(inner, out)
        elif keyword == "options" and st.block is not None:
            for inner in st.block:
                _special_zones(inner, out)
    return out


def _special_zones(st: Statement, out: Declarations) -> None:
    if st.keyword == "catalog-zones":
        out.catalogs.update(_zone_names(st))
    elif st.keyword == "response-policy":
        out.policies.update(_zone_names(st))


def _zone(st: Statement, view: str, default_class: str) -> ZoneDecl:
    words = st.words
    if len(words) < 2:
        raise ConfError(st.file, st.line, "zone needs a name")
    name = words[1].text
    try:
        zonenames.decode(name)
    except zonenames.BadZoneName:
        # BIND refuses the whole file for it (named-checkconf: "zone '...': is not a valid name").
        raise ConfError(st.file, st.line, f"zone '{name}': is not a valid name") from None
    if st.block is None:
        raise ConfError(st.file, st.line, f"zone {name!r} needs a {{ }} block")
    zone_class = _class_of(words[2:], st) or default_class
    zone_type = in_view = None
    for inner in st.block:
        if inner.keyword in ("type", "in-view"):
            args = inner.words[1:]
            if len(args) != 1:
                raise ConfError(inner.file, inner.line, f"zone {name!r}: '{inner.keyword}' takes one value")
            if inner.keyword == "type":
                zone_type = args[0].text.lower()
            else:
                in_view = args[0].text
    if zone_type is None and in_view is None:
        raise ConfError(st.file, st.line, f"zone {name!r}: type not present")
    return ZoneDecl(name, zone_class, view, zone_type, in_view, st.file, st.line)


def _class_of(words: list[Word], st: Statement) -> str | None:
    if not words:
        return None
    cls = CLASSES.get(words[0].text.lower())
    if cls is None or len(words) > 1:
        raise ConfError(st.file, st.line, f"unexpected {words[0].text!r} (expected a class such as IN, or '{{')")
    return cls


def _zone_names(st: Statement) -> set[str]:
    found: set[str] = set()
    for inner in st.block or []:
        words = inner.words
        if inner.keyword == "zone" and len(words) >= 2:
            found.add(words[1].text)
    return found
