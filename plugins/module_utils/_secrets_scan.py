# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret scanning and placeholder detection for the preflight checks.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

Two things live here:

* ``placeholder_reason(value)`` says why a token value is not a real secret (empty, a known
  default such as ``changeme``, a ``<...>`` placeholder), or ``None`` when it looks real.
* ``scan_tree(root, ...)`` walks a project and reports credentials committed in it (private
  keys, well-known token formats, passwords and tokens assigned literally), each finding with
  its file, line, rule and the secret masked. Nothing returned ever contains a secret.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field

# Values that are never real credentials: compared case-insensitively with the whole value.
DEFAULT_PLACEHOLDERS = (
    "changeme", "change-me", "change_me", "change me", "changeit", "changethis", "change-this",
    "replaceme", "replace-me", "replace_me", "your-token-here", "your_token_here", "yourtoken",
    "your-token", "your_token", "your-api-key", "your_api_key", "your-secret", "your_secret",
    "your-password", "your_password", "placeholder", "todo", "tbd", "fixme", "secret",
    "password", "passw0rd", "password123", "123456", "12345678", "token", "apikey", "api-key",
    "api_key", "example", "sample", "dummy", "test", "testing", "default", "admin", "root",
    "none", "null", "nil", "undefined", "xxx", "my-token", "mytoken", "mysecret", "mypassword",
    "insert-token-here", "token-here", "secret-here", "notset", "not-set", "unset",
)

_PLACEHOLDER_PATTERNS = (
    (re.compile(r"^x{3,}$", re.I), "a run of x characters"),
    (re.compile(r"^\*{3,}$"), "a run of asterisks"),
    (re.compile(r"^\.{3,}$"), "an ellipsis"),
    (re.compile(r"^<[^<>]*>$"), "a <...> placeholder"),
    (re.compile(r"^\[[^\[\]]*\]$"), "a [...] placeholder"),
    (re.compile(r"^\$\{[^}]*\}$|^\$[A-Za-z_][A-Za-z0-9_]*$"), "an unexpanded ${...} variable"),
    (re.compile(r"^\{\{.*\}\}$"), "an unrendered {{ ... }} template"),
    (re.compile(r"^(your|my|insert|enter|put|add)[-_ .].*", re.I), "a 'your-...' placeholder"),
    (re.compile(r"^.*[-_ .](here|goes-here|placeholder)$", re.I), "a '...-here' placeholder"),
    (re.compile(r"^(change|replace)[-_ .]?me[-_ .].*|.*[-_ .](change|replace)[-_ .]?me$", re.I), "a 'changeme' placeholder"),
    (re.compile(r"^(change|replace|set|fill)[-_ .]?(with|this|it|in|to|by)([-_ .].*)?$", re.I), "a 'replace-with-...' placeholder"),
    (re.compile(r"(^|[-_ .])(example|sample|dummy|placeholder|fake|redacted)([-_ .]|$)", re.I), "an example or dummy value"),
)


def placeholder_reason(value, extra=()):
    """Why `value` is not a usable secret, or None when it looks like a real one.

    The answer never repeats the value: it names the kind of placeholder only.
    """
    if value is None:
        return "not set"
    text = str(value).strip()
    if not text:
        return "empty"
    low = text.lower()
    if low in DEFAULT_PLACEHOLDERS:
        return "a known default or placeholder value"
    if any(low == str(e).strip().lower() for e in extra if str(e).strip()):
        return "a value on the inventory's list of known defaults"
    for pattern, label in _PLACEHOLDER_PATTERNS:
        if pattern.match(text):
            return label
    if len(text) >= 4 and len(set(text)) == 1:
        return "one character repeated"
    return None


def mask(secret, keep_prefix=False):
    """A masked form of `secret`: stars, after the format marker of a long token when asked."""
    secret = str(secret)
    if keep_prefix and len(secret) >= 20:
        return secret[:4] + "********"
    return "********"


def fingerprint(secret):
    """A short, stable fingerprint of a secret, for allow lists (never the secret itself)."""
    return hashlib.sha256(str(secret).encode("utf-8", "replace")).hexdigest()[:12]


def baseline_key(rule, path, secret):
    """The baseline's fingerprint of a finding: sha256 of rule, path and the secret's sha256
    (the line is left out, so it survives lines moving)."""
    inner = hashlib.sha256(str(secret).encode("utf-8", "replace")).hexdigest()
    return hashlib.sha256(f"{rule}\0{path}\0{inner}".encode("utf-8", "replace")).hexdigest()


def make_finding(relpath, lineno, rule, masked, secret):
    """A Finding with every fingerprint of `secret` (which it does not keep)."""
    return Finding(relpath, lineno, rule, masked, fingerprint(secret), baseline_key(rule, relpath, secret),
                   hashlib.sha1(str(secret).encode("utf-8", "replace")).hexdigest())  # nosec - detect-secrets' hash


class Redactor:
    """Replaces every known secret value in a text with ********."""

    def __init__(self, secrets=()):
        self._secrets = set()
        for s in secrets:
            self.add(s)

    def add(self, secret):
        if secret is None:
            return
        secret = str(secret)
        # Very short values would garble ordinary words; they are rejected as placeholders anyway.
        if len(secret.strip()) >= 4:
            self._secrets.add(secret)
            if secret.strip() != secret:
                self._secrets.add(secret.strip())

    def __call__(self, text):
        if text is None:
            return text
        if isinstance(text, (list, tuple)):
            return [self(t) for t in text]
        text = str(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "********")
        return text


# --- the scan -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One committed credential. `fingerprint` (short, of the secret) is what allow lists name;
    `key` (sha256 of rule, path and the secret's sha256) is what the baseline stores;
    `secret_sha1` matches detect-secrets' hashed_secret. None of them is the secret."""
    path: str
    line: int
    rule: str
    masked: str
    fingerprint: str
    key: str = field(default="", compare=False)
    secret_sha1: str = field(default="", repr=False, compare=False)

    def describe(self):
        return f"{self.path}:{self.line}: {self.rule} {self.masked} (fingerprint {self.fingerprint})"

    def as_dict(self):
        return {"path": self.path, "line": self.line, "rule": self.rule, "masked": self.masked,
                "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern
    group: str = "secret"


# Token formats recognised in any text file. The group named `secret` is what is masked.
TOKEN_RULES = (
    _Rule("aws-access-key-id", re.compile(r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])")),
    _Rule("github-token", re.compile(r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")),
    _Rule("gitlab-token", re.compile(r"(?<![A-Za-z0-9_])(?P<secret>glpat-[A-Za-z0-9_\-]{20,})")),
    _Rule("slack-token", re.compile(r"(?<![A-Za-z0-9_])(?P<secret>xox[abposr]-[A-Za-z0-9\-]{10,})")),
    _Rule("slack-webhook", re.compile(r"(?P<secret>https://hooks\.slack\.com/services/[A-Za-z0-9_/\-]{20,})")),
    _Rule("stripe-key", re.compile(r"(?<![A-Za-z0-9_])(?P<secret>[sr]k_(?:live|test)_[A-Za-z0-9]{16,})")),
    _Rule("openai-key", re.compile(r"(?<![A-Za-z0-9_\-])(?P<secret>sk-(?:proj-)?[A-Za-z0-9_\-]{32,})")),
    _Rule("google-api-key", re.compile(r"(?<![A-Za-z0-9_])(?P<secret>AIza[0-9A-Za-z_\-]{35})")),
    _Rule("jwt", re.compile(r"(?<![A-Za-z0-9_\-])(?P<secret>eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})")),
    _Rule("url-credentials", re.compile(r"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s:/@'\"<>]+:(?P<secret>[^\s/@'\"<>]+)@[^\s'\"<>]")),
    _Rule("bearer-token", re.compile(r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9\-._~+/]{20,}=*)")),
)

# Rules whose secret has no format marker worth showing: masked completely.
_NO_PREFIX_RULES = ("url-credentials", "bearer-token", "slack-webhook")

PRIVATE_KEY = re.compile(r"-----BEGIN ((?:RSA|DSA|EC|OPENSSH|PGP|ENCRYPTED|SSH2) )?PRIVATE KEY( BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")

_KEYWORD = r"(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key|client[_\-]?secret|private[_\-]?key|credentials?)"
ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_])(?P<key>[A-Za-z0-9_.\-]*" + _KEYWORD + r"[A-Za-z0-9_.\-]*)[\"']?"
    r"\s*(?::=|=>|=|:)\s*"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s#,;]+)",
    re.I,
)
# Keys that name a secret's location or shape, not the secret itself.
_KEY_SUFFIX_NOT_SECRET = re.compile(
    r"(?i)[_\-.](file|path|dir|url|uri|env|name|var|header|type|len|length|field|endpoint|ttl|"
    r"timeout|expires?|expiry|required|regex|pattern|policy|prompt|hint|label|id|count|size|"
    r"min|max|enabled|mode|format|key_id|version|store|ref)$"
)
_NOT_SECRET_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "none", "nil", "undefined",
                     "required", "optional", "string", "str", "bytes", "secret", "password", "token"}

# Files where an unquoted right-hand side is a literal (configuration); elsewhere only quoted
# literals count, since an unquoted right-hand side in code is an expression.
_CONFIG_SUFFIXES = {".env", ".yaml", ".yml", ".ini", ".cfg", ".conf", ".properties", ".toml", ".sh",
                    ".bash", ".zsh", ".tf", ".tfvars", ".hcl", ".json", ".xml", ".service"}
_CODE_SUFFIXES = {".py", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".java", ".kt", ".rb",
                  ".php", ".cs", ".rs", ".c", ".cc", ".cpp", ".h", ".hpp", ".swift", ".scala", ".groovy",
                  ".vue", ".svelte", ".lua", ".pl", ".r"}
_TEMPLATE_SUFFIXES = (".example", ".sample", ".template", ".tmpl", ".dist", ".orig", ".j2")

DEFAULT_EXCLUDED_DIRS = (".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox",
                         ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ansible", "site-packages",
                         ".cache", ".idea", ".vscode")
DEFAULT_EXCLUDED_FILES = ("*.min.js", "*.map", "*.lock", "package-lock.json", "*.pyc", "*.svg")
INLINE_ALLOW = re.compile(r"pragma:\s*allowlist\s+secret|preflight:\s*allow", re.I)


# In example and template files, a value naming its own role is a placeholder, wherever the word is.
_TEMPLATE_WORDS = re.compile(r"(?i)replace|change|your|example|sample|placeholder|generate|insert|dummy|fake|todo|fixme|"
                             r"xxx|<|>|\.\.\.")
_TEMPLATE_NAMES = re.compile(r"(?i)(\.example|\.sample|\.template|\.tmpl|\.dist)(\.[a-z0-9]+)?$|(^|[./_-])(example|sample|template)"
                             r"[./_-][^/]*$")


def is_template(name):
    """Whether a file is an example or template (.env.example, *.example, *.template, *.sample)."""
    return bool(_TEMPLATE_NAMES.search(os.path.basename(name)))


def template_placeholder(value):
    """Whether a value of an example or template file is a placeholder rather than a credential."""
    return placeholder_reason(value) is not None or bool(_TEMPLATE_WORDS.search(str(value)))


def file_kind(name):
    """'config', 'code' or 'text' for a file name (template suffixes such as .example looked through)."""
    base = os.path.basename(name).lower()
    for suffix in _TEMPLATE_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    if base == ".env" or base.startswith(".env.") or base.endswith(".env") or base in ("env", ".envrc"):
        return "config"
    if base.startswith("dockerfile") or base.endswith(".dockerfile") or base.startswith("compose") \
            or base.startswith("docker-compose"):
        return "config"
    suffix = os.path.splitext(base)[1]
    if suffix in _CONFIG_SUFFIXES:
        return "config"
    if suffix in _CODE_SUFFIXES:
        return "code"
    return "text"


def _literal_value(raw, kind):
    """The literal secret of an assignment's right-hand side, or None when it is not one."""
    quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'"
    if kind == "code" and not quoted:
        return None
    value = raw[1:-1] if quoted else raw
    value = value.strip()
    if len(value) < 6:
        return None
    low = value.lower()
    if low in _NOT_SECRET_WORDS:
        return None
    if value[0] in "$%!&*@/~" or value.startswith("./") or value.startswith("{{") or value.startswith("<%"):
        return None
    if "${" in value or "{{" in value or "#{" in value or "(" in value or "os.environ" in value:
        return None
    if re.fullmatch(r"\d{1,9}", value):
        return None
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_.\[\]'\"]*", value) and not quoted:
        return None  # an attribute reference such as settings.token
    if placeholder_reason(value) is not None:
        return None
    return value


def scan_text(text, relpath, kind=None):
    """Findings (unfiltered by allow lists) for one file's text."""
    kind = kind or file_kind(relpath)
    template = is_template(relpath)
    findings = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        if INLINE_ALLOW.search(line):
            i += 1
            continue
        seen = []  # (start, end) spans already reported on this line

        def overlaps(span):
            return any(span[0] < e and s < span[1] for s, e in seen)

        key_match = PRIVATE_KEY.search(line)
        if key_match:
            body = []
            j = i + 1
            while j < len(lines) and j < i + 200 and not _PRIVATE_KEY_END.search(lines[j]):
                body.append(lines[j].strip())
                j += 1
            kind_name = (key_match.group(1) or "").strip().lower()
            rule = f"private-key ({kind_name})" if kind_name else "private-key"
            findings.append(make_finding(relpath, lineno, rule, "-----BEGIN ... PRIVATE KEY----- ********",
                                         "".join(body) or line.strip()))
            seen.append(key_match.span())
        for rule in TOKEN_RULES:
            for m in rule.pattern.finditer(line):
                secret = m.group(rule.group)
                span = m.span(rule.group)
                if overlaps(span):
                    continue
                if rule.name in ("url-credentials", "bearer-token"):
                    if "$" in secret or "{" in secret or placeholder_reason(secret) is not None:
                        continue
                    if template and template_placeholder(secret):
                        continue
                masked = mask(secret, keep_prefix=rule.name not in _NO_PREFIX_RULES)
                findings.append(make_finding(relpath, lineno, rule.name, masked, secret))
                seen.append(span)
        if kind in ("config", "code"):
            for m in ASSIGNMENT.finditer(line):
                span = m.span("value")
                if overlaps(span) or line[max(0, m.start() - 2):m.start()] == "${":
                    continue  # ${NAME:-default}: a default of a variable, judged by the tokens check
                key = m.group("key")
                if _KEY_SUFFIX_NOT_SECRET.search(key):
                    continue
                value = _literal_value(m.group("value"), kind)
                if value is None or (template and template_placeholder(value)):
                    continue
                findings.append(make_finding(relpath, lineno, "assigned-secret", mask(value), value))
                seen.append(span)
        i += 1
    return findings


def _matches_any(relpath, patterns):
    base = os.path.basename(relpath)
    for pat in patterns:
        pat = str(pat).rstrip("/")
        if fnmatch.fnmatch(relpath, pat) or fnmatch.fnmatch(base, pat) or relpath.startswith(pat + "/"):
            return True
    return False


def is_allowed(finding, allow):
    """Whether an allow-list entry ({path, rule, fingerprint}, each optional) covers a finding."""
    for entry in allow or ():
        if not isinstance(entry, dict):
            continue
        path = entry.get("path")
        rule = entry.get("rule")
        fp = entry.get("fingerprint")
        if not (path or rule or fp):
            continue
        if path and not _matches_any(finding.path, [path]):
            continue
        if rule and not (finding.rule == rule or finding.rule.startswith(rule + " ")):
            continue
        if fp and not finding.fingerprint.startswith(str(fp).lower()):
            continue
        return True
    return False


@dataclass
class ScanResult:
    findings: list
    allowed: int
    files_scanned: int
    skipped_large: list


def scan_tree(root, paths=None, exclude=(), allow=(), max_file_bytes=1024 * 1024, skip_files=()):
    """Scans the text files under root (or the given relative paths) for committed credentials.

    exclude: glob patterns (matched against the relative path and the base name) to leave out.
    allow: list of {path, rule, fingerprint} entries whose findings are accepted.
    skip_files: absolute paths never read (for example, env files in use that are not committed).
    """
    root = os.path.abspath(root)
    skip = {os.path.abspath(p) for p in skip_files}
    starts = [os.path.join(root, p) for p in (paths or ["."])]
    findings = []
    allowed = 0
    scanned = 0
    large = []
    seen_files = set()
    for start in starts:
        start = os.path.abspath(start)
        if os.path.isfile(start):
            walker = [(os.path.dirname(start), [], [os.path.basename(start)])]
        else:
            walker = os.walk(start)
        for dirpath, dirnames, filenames in walker:
            dirnames[:] = sorted(d for d in dirnames if d not in DEFAULT_EXCLUDED_DIRS
                                 and not _matches_any(os.path.relpath(os.path.join(dirpath, d), root), exclude))
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if full in seen_files or full in skip or os.path.islink(full):
                    continue
                seen_files.add(full)
                if _matches_any(rel, DEFAULT_EXCLUDED_FILES) or _matches_any(rel, exclude):
                    continue
                try:
                    size = os.path.getsize(full)
                    if size > max_file_bytes:
                        large.append(rel)
                        continue
                    with open(full, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if b"\0" in data[:8192]:
                    continue
                scanned += 1
                for f in scan_text(data.decode("utf-8", "replace"), rel):
                    if is_allowed(f, allow):
                        allowed += 1
                    else:
                        findings.append(f)
    return ScanResult(findings, allowed, scanned, large)
