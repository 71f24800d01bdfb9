# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Env files and ``${VAR}`` interpolation as Compose reads them, for the preflight checks.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

Besides parsing env files and interpolating, ``literal_defaults(text)`` finds every
``${NAME:-value}`` / ``${NAME-value}`` of a compose file with its line, so the tokens check can
tell when a secret falls back to a default committed in the file. Nothing here prints a value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


class EnvFileError(Exception):
    """An env file that cannot be read or parsed."""


# --- env files ------------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)\s*(?P<eq>=)?\s*(?P<rest>.*)$")


def parse_env_text(text, lookup=None, source="env file"):
    """Parses dotenv text the way Compose reads env files. Returns {key: value}.

    Unquoted values lose a trailing ` # comment` and surrounding blanks; single quotes are literal;
    double quotes may span lines and understand \\n, \\t, \\" and \\\\; unquoted and double-quoted
    values interpolate ${VAR} from earlier keys, then from `lookup`. A bare `KEY` takes its value
    from `lookup` when set there.
    """
    lookup = lookup or {}
    result = {}
    lines = text.lstrip("\ufeff").splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _ENV_LINE.match(raw)
        if not m:
            raise EnvFileError(f"{source} line {lineno}: not KEY=VALUE")
        key = m.group("key")
        if not m.group("eq"):
            if m.group("rest").strip():
                raise EnvFileError(f"{source} line {lineno}: not KEY=VALUE")
            if key in lookup:
                result[key] = lookup[key]
            continue
        rest = m.group("rest")
        env = dict(lookup)
        env.update(result)
        if rest.startswith("'"):
            end = rest.find("'", 1)
            while end < 0 and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
                end = rest.find("'", 1)
            if end < 0:
                raise EnvFileError(f"{source} line {lineno}: unterminated single quote")
            result[key] = rest[1:end]
        elif rest.startswith('"'):
            value, end = _read_double_quoted(rest)
            while end < 0 and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
                value, end = _read_double_quoted(rest)
            if end < 0:
                raise EnvFileError(f"{source} line {lineno}: unterminated double quote")
            result[key] = interpolate(value, env)
        else:
            value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
            result[key] = interpolate(value, env)
    return result


def _read_double_quoted(text):
    out = []
    j = 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            out.append(escapes.get(text[j + 1], "\\" + text[j + 1]))
            j += 2
            continue
        if c == '"':
            return "".join(out), j
        out.append(c)
        j += 1
    return "".join(out), -1


def read_env_file(path, lookup=None):
    try:
        with open(path, encoding="utf-8-sig") as fh:  # a BOM is accepted, as Compose does
            text = fh.read()
    except FileNotFoundError:
        raise EnvFileError(f"{path} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"{path} cannot be read: {exc.__class__.__name__}")
    return parse_env_text(text, lookup, source=path)


# --- interpolation --------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def _closing_brace(text, start):
    """Index of the } closing the ${ that ends at start (nested ${...} allowed), or -1."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _pieces(text):
    """Text as Compose reads it, in order: ("text", s) for literal text (``$$`` is one ``$``) and
    ("var", name, op, arg) for ``${NAME<op><arg>}`` and ``$NAME`` (op None when there is none)."""
    i = 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if c == "$" and i + 1 < len(text) else ""
        if nxt == "$":
            yield ("text", "$")
            i += 2
            continue
        if nxt == "{":
            end = _closing_brace(text, i + 2)
            m = _BRACED.match(text[i + 2:end]) if end >= 0 else None
            if m:
                yield ("var", m.group("name"), m.group("op"), m.group("arg") or "")
                i = end + 1
                continue
        m = _NAME.match(text, i + 1) if nxt and nxt != "{" else None
        if m:
            yield ("var", m.group(0), None, "")
            i = m.end()
            continue
        yield ("text", c)
        i += 1


def interpolate(value, env, missing=None):
    """Compose-style ${VAR} interpolation of one string (defaults may nest). Names of unset
    required variables (${VAR:?msg}) go into the `missing` list when one is given."""
    if not isinstance(value, str) or "$" not in value:
        return value
    return "".join(piece[1] if piece[0] == "text" else _substitute(*piece[1:], env, missing)
                   for piece in _pieces(value))


def _substitute(name, op, arg, env, missing):
    val = env.get(name)
    if op is None:
        return val if val is not None else ""
    if op == ":-":
        return val if val else interpolate(arg, env, missing)
    if op == "-":
        return val if val is not None else interpolate(arg, env, missing)
    if op in (":?", "?"):
        if (op == ":?" and not val) or (op == "?" and val is None):
            if missing is not None:
                missing.append(name)
            return ""
        return val
    if op == ":+":
        return interpolate(arg, env, missing) if val else ""
    return interpolate(arg, env, missing) if val is not None else ""


def interpolate_tree(node, env, missing=None):
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, missing) for v in node]
    return interpolate(node, env, missing)


# --- committed defaults ---------------------------------------------------------------------


@dataclass(frozen=True)
class LiteralDefault:
    """One ``${NAME:-default}`` (or ``${NAME-default}``) of a file: where, and what it falls back to.

    `literal` is the text the default contributes when the variables it nests are unset too;
    it is a secret when NAME names one, so it is only ever compared and redacted, never shown.
    """
    name: str
    op: str
    line: int
    literal: str


def _strip_yaml_comment(line):
    """The line without a YAML comment (a # at the start or after a blank, outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def literal_defaults(text, env):
    """[LiteralDefault] for every ``${NAME:-x}`` / ``${NAME-x}`` of `text` (a compose file) whose
    default applies with `env` (NAME unset, or empty for ``:-``) and holds literal text.

    Nested defaults are followed (``${A:-${B:-x}}`` with A and B unset reports A and B, both
    falling back to ``x``; with B set it reports nothing); ``$$`` escapes and YAML comments are
    not interpolated by Compose and are skipped here too.
    """
    out = []
    for lineno, raw in enumerate(str(text).splitlines(), 1):
        line = _strip_yaml_comment(raw)
        if "${" in line:
            _scan_defaults(line, lineno, env, out)
    return out


def _scan_defaults(text, lineno, env, out):
    """Walks text, appending LiteralDefaults; returns the literal text the walk contributes."""
    literal = []
    for piece in _pieces(text):
        if piece[0] == "text":
            literal.append(piece[1])
            continue
        name, op, arg = piece[1:]
        val = env.get(name)
        if op in (":-", "-") and (val is None or (op == ":-" and not val)):
            sub = _scan_defaults(arg, lineno, env, out)
            if sub.strip():
                out.append(LiteralDefault(name, op, lineno, sub))
            literal.append(sub)
    return "".join(literal)
