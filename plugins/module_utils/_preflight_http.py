# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Home Assistant and InfluxDB 2 probes for the preflight checks.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

Each probe tells a wrong token (the service answers 401) apart from a service that cannot be
reached (name resolution, refused connection, timeout, TLS). Tokens travel only in request
headers; nothing returned repeats them, nor the body of a response.
"""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from ansible_collections.homeiq.deploy.plugins.module_utils._preflight_host import short_error


def _requests():
    """requests, imported when a probe runs (it is slow to import), or None when it is missing."""
    try:
        import requests  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - requests comes with the docker SDK
        return None
    return requests


def display_url(url):
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _get(url, headers, timeout, validate_certs):
    """(response or None, why-not)."""
    requests = _requests()
    if requests is None:
        return None, "the Python requests library is not installed for this interpreter: pip install requests"
    try:
        resp = requests.get(url, headers=headers, timeout=timeout, verify=validate_certs, allow_redirects=False)
        return resp, None
    except requests.exceptions.SSLError as exc:
        return None, f"TLS failed ({short_error(exc)}): fix the certificate or set validate_certs false"
    except requests.exceptions.ConnectTimeout:
        return None, f"no connection within {timeout:g}s: the host is down or a firewall drops the traffic"
    except requests.exceptions.ReadTimeout:
        return None, f"connected, but no answer within {timeout:g}s"
    except requests.exceptions.ConnectionError as exc:
        reason = short_error(exc)
        low = reason.lower()
        if "name or service not known" in low or "temporary failure in name resolution" in low \
                or "nodename nor servname" in low or "no address associated" in low:
            return None, f"the host name does not resolve ({reason})"
        if "refused" in low:
            return None, "connection refused: nothing listens there (service down or wrong port)"
        return None, f"cannot connect ({reason})"
    except requests.exceptions.RequestException as exc:
        return None, f"request failed ({short_error(exc)})"


def _url(base, path):
    return base.rstrip("/") + path


def check_home_assistant(url, token, timeout=10.0, validate_certs=True):
    """(ok, why): GET <url>/api/ with the long-lived token as a bearer token answers 200."""
    shown = display_url(url)
    if not token:
        return False, f"no long-lived access token given for {shown} (home_assistant_token or home_assistant_token_env)"
    resp, err = _get(_url(url, "/api/"), {"Authorization": f"Bearer {token}", "Accept": "application/json"},
                     timeout, validate_certs)
    if resp is None:
        return False, f"Home Assistant at {shown} cannot be reached: {err}"
    if resp.status_code == 200:
        message = ""
        try:
            body = resp.json()
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                message = f" ({body['message'][:60]})"
        except ValueError:
            pass
        return True, f"Home Assistant at {shown} accepts the token{message}"
    if resp.status_code == 401:
        return False, (f"Home Assistant at {shown} answers but rejects the token (401): the token is wrong or revoked, "
                       "not the host; create a new long-lived access token in the user profile")
    if resp.status_code == 403:
        return False, (f"Home Assistant at {shown} refuses the request (403): the client address may be banned "
                       "after failed logins (ip_bans.yaml)")
    if resp.status_code == 404:
        return False, f"{shown}/api/ answers 404: the URL does not point at Home Assistant (wrong port or path)"
    if 300 <= resp.status_code < 400:
        return False, f"{shown}/api/ redirects (HTTP {resp.status_code}): use the final URL (https?)"
    return False, f"Home Assistant at {shown} answers HTTP {resp.status_code} to /api/"


def check_influxdb(url, token, org=None, bucket=None, timeout=10.0, validate_certs=True):
    """(ok, why): /health reports pass, and the token reads /api/v2/buckets (and the bucket, if named)."""
    shown = display_url(url)
    resp, err = _get(_url(url, "/health"), {"Accept": "application/json"}, timeout, validate_certs)
    if resp is None:
        return False, f"InfluxDB at {shown} cannot be reached: {err}"
    try:
        health = resp.json()
    except ValueError:
        health = {}
    if not isinstance(health, dict):
        health = {}
    status = str(health.get("status", "")).lower()
    if resp.status_code == 404:
        return False, f"{shown}/health answers 404: the URL does not point at InfluxDB 2 (wrong port or path)"
    if resp.status_code != 200 or status != "pass":
        detail = str(health.get("message") or "")[:120]
        return False, (f"InfluxDB at {shown} is not healthy: /health answered HTTP {resp.status_code}"
                       f"{' status ' + status if status else ''}{': ' + detail if detail else ''}")
    version = str(health.get("version") or "").strip()
    healthy = f"InfluxDB {version + ' ' if version else ''}at {shown} is healthy"
    if not token:
        return False, f"{healthy}, but no token was given (influxdb_token or influxdb_token_env)"
    params = {"limit": "1"}
    if bucket:
        params = {"name": bucket}
    if org:
        params["org"] = org
    query = urlencode(params)
    resp, err = _get(_url(url, "/api/v2/buckets?" + query), {"Authorization": f"Token {token}", "Accept": "application/json"},
                     timeout, validate_certs)
    if resp is None:
        return False, f"{healthy}, but /api/v2/buckets failed: {err}"
    if resp.status_code == 401:
        return False, f"{healthy}, but it rejects the token (401): the token is wrong or revoked, not the host"
    if resp.status_code == 403:
        return False, f"{healthy}, but the token may not read buckets (403): give it read access"
    if resp.status_code == 404 and org:
        return False, f"{healthy}, but organization {org!r} is not found (404)"
    if resp.status_code != 200:
        return False, f"{healthy}, but /api/v2/buckets answered HTTP {resp.status_code}"
    if bucket:
        try:
            names = [b.get("name") for b in (resp.json().get("buckets") or [])]
        except (ValueError, AttributeError):
            names = []
        if bucket not in names:
            return False, f"{healthy} and accepts the token, but bucket {bucket!r} is not found or not readable with it"
        return True, f"{healthy} and the token reads bucket {bucket!r}"
    return True, f"{healthy} and accepts the token"
