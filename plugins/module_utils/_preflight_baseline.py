# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret scan's baseline: a committed file of accepted findings, by fingerprint.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

Our format (written by the check with ``secret_scan_write_baseline``)::

    {"format": "homeiq-secrets-baseline", "version": 1,
     "findings": [{"fingerprint": "<sha256 hex>", "path": "app/client.py", "rule": "github-token", "line": 4}]}

A finding is accepted when its fingerprint is listed: sha256 of rule, path and the sha256 of the
secret, so it stays the same when lines move and changes when the secret, the file or the rule does.
``line`` is only there for the reader. No secret value is stored, only hashes of hashes.

detect-secrets' ``.secrets.baseline`` is read as well (``results: {path: [{hashed_secret, ...}]}``,
``hashed_secret`` being the sha1 of the secret): a finding is accepted when the same file has an
entry with its secret's sha1, unless the entry is audited as a real secret (``is_secret: true``).
"""
from __future__ import annotations

import json
import os
import tempfile

FORMAT = "homeiq-secrets-baseline"
VERSION = 1


class BaselineError(Exception):
    """A baseline file that cannot be read; the message names it."""


class Baseline:
    def __init__(self, path, fingerprints=(), hashed=None, fmt=None):
        self.path = path
        self.fingerprints = set(fingerprints)
        self.hashed = hashed or {}  # detect-secrets: {path: {sha1, ...}}
        self.format = fmt  # None (no file), "homeiq" or "detect-secrets"

    def accepts(self, finding):
        if finding.key and finding.key in self.fingerprints:
            return True
        return bool(finding.secret_sha1) and finding.secret_sha1 in self.hashed.get(finding.path, ())

    def split(self, findings):
        """(new findings, accepted findings, number of baseline entries matched by none)."""
        new = [f for f in findings if not self.accepts(f)]
        accepted = [f for f in findings if self.accepts(f)]
        if self.format == "homeiq":
            stale = len(self.fingerprints - {f.key for f in accepted})
        else:
            found = {(f.path, f.secret_sha1) for f in accepted}
            stale = sum(1 for p, hashes in self.hashed.items() for h in hashes if (p, h) not in found)
        return new, accepted, stale


def load(path):
    """The baseline at path; an empty one when the file does not exist."""
    if not path or not os.path.exists(path):
        return Baseline(path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"the secret-scan baseline {path} cannot be read ({exc.__class__.__name__})")
    except ValueError as exc:
        raise BaselineError(f"the secret-scan baseline {path} is not valid JSON (line {getattr(exc, 'lineno', '?')})")
    if isinstance(data, dict) and data.get("format") == FORMAT:
        entries = data.get("findings")
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("fingerprint"), str)
                                                    for e in entries):
            raise BaselineError(f"the secret-scan baseline {path} has no list of findings with a fingerprint each")
        return Baseline(path, [e["fingerprint"].lower() for e in entries], fmt="homeiq")
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        hashed = {}
        for file_path, entries in data["results"].items():
            for e in entries if isinstance(entries, list) else []:
                if isinstance(e, dict) and e.get("hashed_secret") and e.get("is_secret") is not True:
                    hashed.setdefault(os.path.normpath(str(file_path)), set()).add(str(e["hashed_secret"]).lower())
        return Baseline(path, hashed=hashed, fmt="detect-secrets")
    raise BaselineError(f"the secret-scan baseline {path} is neither a {FORMAT} file nor a detect-secrets baseline")


def render(findings):
    """The baseline file's text for these findings: sorted, one entry per fingerprint, stable."""
    entries = {}
    for f in sorted(findings, key=lambda f: (f.path, f.line, f.rule)):
        entries.setdefault(f.key, {"fingerprint": f.key, "path": f.path, "rule": f.rule, "line": f.line})
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "about": "Accepted findings of the homeiq.deploy secret scan (preflight). Fingerprints only, no secret. "
                 "Rewrite: ansible-playbook preflight.yml -i <inventory> -e preflight_secret_scan_write_baseline=true",
        "findings": sorted(entries.values(), key=lambda e: (e["path"], e["line"], e["rule"])),
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def write(path, text, check_mode=False):
    """Writes text to path unless it already holds it; returns whether it (would have) changed."""
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    if check_mode:
        return True
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".baseline-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True
