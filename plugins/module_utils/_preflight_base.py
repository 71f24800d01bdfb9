# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every preflight check shares: its outcome, the skip and bad-input errors, secret names.

Private to the homeiq.deploy collection: not a public API, it may change without notice.
"""
from __future__ import annotations

import re

SECRET_NAME = re.compile(
    r"(?i)(?:^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PASS|PWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|"
    r"SECRET_KEY|CREDENTIALS?|AUTH_KEY|CLIENT_SECRET|DSN)(?:_|$)|(?:^|_)KEY$"
)
_SECRET_NAME_NOT = re.compile(
    r"(?i)_(FILE|PATH|DIR|URL|URI|HOST|PORT|NAME|TYPE|LENGTH|LEN|TTL|TIMEOUT|HEADER|ID|USER|USERNAME|"
    r"KEY_ID|EXPIRES?|ENABLED|REQUIRED|ALGORITHM|PREFIX)$|(?:^|_)KEY_?(FILE|PATH|ID|NAME)(?:_|$)")


class PreflightError(Exception):
    """Bad input: the message says what is wrong and what to do."""


class Skip(Exception):
    """A check with nothing to judge; the message says why."""


class Outcome:
    def __init__(self, ok, why, details=None):
        self.ok = bool(ok)
        self.why = why
        self.details = list(details or [])


def is_secret_name(name):
    """Whether a variable name names a secret: *_TOKEN, *_PASSWORD, *_SECRET, *_API_KEY, *_KEY,
    *_DSN, ... but not the location or shape of one (*_TOKEN_FILE, *_KEY_ID, *_PASSWORD_URL)."""
    if name.upper() in ("PWD", "OLDPWD"):  # the shell's working directories
        return False
    return bool(SECRET_NAME.search(name)) and not _SECRET_NAME_NOT.search(name)


def plural(n, word):
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"
