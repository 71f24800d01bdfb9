# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: vocabulary, times and checks shared by the deployment ledger's parts.

Not a public API: names may change between releases. Times are kept as integer microseconds since
the UNIX epoch (UTC) in both backends, so arithmetic is exact and answers match across backends;
they are shown as ISO 8601 strings in UTC (``2026-11-26T23:15:00Z``).
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

STATUSES = ("in_progress", "success", "failed", "rolled_back")
FINAL_STATUSES = ("success", "failed", "rolled_back")
FAILED_STATUSES = ("failed", "rolled_back")
KINDS = ("deploy", "rollback")
BACKENDS = ("sqlite", "postgres")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
DAY_US = 86400 * 1000000

DEPLOYMENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")
IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class LedgerError(Exception):
    """A problem a person can act on; the message is one line naming the thing and what to do."""


def now_us():
    return (datetime.now(timezone.utc) - EPOCH) // US


def to_us(dt):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - EPOCH) // US


def parse_time(value, what):
    """ISO 8601 date or date-time (naive means UTC) to epoch microseconds; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return to_us(value)
    text = str(value).strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise LedgerError("%s %r is not an ISO 8601 time: use a form such as 2026-11-26T23:15:00Z" % (what, text)) from None
    return to_us(dt)


def format_time(us):
    """Epoch microseconds to ISO 8601 in UTC with a Z, or None."""
    if us is None:
        return None
    text = (EPOCH + int(us) * US).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def seconds(us):
    """Microseconds (int) to seconds (float), unrounded; None stays None."""
    return None if us is None else int(us) / 1000000.0


def default_sqlite_path():
    """The per-user default ledger file: $XDG_DATA_HOME/homeiq/ledger.sqlite3 (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "homeiq", "ledger.sqlite3")


def check_deployment_id(value, what="deployment_id"):
    if not isinstance(value, str) or not DEPLOYMENT_ID_RE.match(value):
        raise LedgerError(
            "%s %r is not a valid deployment id: use letters, digits and . _ : @ + - (at most 128), "
            "such as deploy-20261126-231500" % (what, value))
    return value


def _check_service_images(images, where):
    for service, image in images.items():
        if not isinstance(service, str) or not service:
            raise LedgerError("images%s has an empty or non-text service name; use the compose service names as keys" % where)
        if not isinstance(image, str) or not IMAGE_ID_RE.match(image):
            raise LedgerError(
                "image of service %r%s is %r, not a full image ID: give the engine's ID (sha256: and 64 hex digits), "
                "as docker image inspect --format '{{.Id}}' prints it" % (service, where, image))
    return dict(images)


def check_images(images):
    """The images of a deployment: ``{service: image_id}`` for one compose project, or, for a stack of
    projects, ``{project: {service: image_id}}``. A mix of both shapes is refused."""
    if images is None:
        return None
    if not isinstance(images, dict):
        raise LedgerError("images must be a mapping of service name to image ID (sha256:...), "
                          "or for a stack of compose projects of project name to such a mapping")
    nested = [key for key, value in images.items() if isinstance(value, dict)]
    if not nested:
        return _check_service_images(images, "")
    if len(nested) != len(images):
        flat = sorted(str(key) for key in images if key not in nested)
        raise LedgerError(
            "images mixes projects (%s) with services (%s): give either service name to image ID for one compose project, "
            "or project name to such a mapping for a stack" % (", ".join(sorted(map(str, nested))), ", ".join(flat)))
    checked = {}
    for project, services in images.items():
        if not isinstance(project, str) or not project:
            raise LedgerError("images has an empty or non-text project name; use the compose project names as keys")
        checked[project] = _check_service_images(services, " of project %r" % project)
    return checked


def check_count(value, what):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LedgerError("%s must be a whole number of zero or more, not %r" % (what, value))
    return value


def scrub(text, secrets):
    """Removes every secret from a message (and keeps it to one line)."""
    text = " ".join(str(text).split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


# Options of every ledger module (documented in plugins/doc_fragments/ledger.py).
LEDGER_ARGUMENT_SPEC = dict(
    backend=dict(type="str", choices=["sqlite", "postgres"], default="sqlite"),
    path=dict(type="path"),
    dsn=dict(type="str", no_log=True),
    timeout=dict(type="int", default=30),
)
