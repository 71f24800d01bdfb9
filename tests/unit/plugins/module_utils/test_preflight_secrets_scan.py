"""Placeholder detection, masking, redaction and the secret scan rules (no engine, no network)."""
from __future__ import annotations

import secrets
import string

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _secrets_scan as scan

ALNUM = string.ascii_letters + string.digits


def rand(n, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _i in range(n))


@pytest.mark.parametrize("value, reason", [
    (None, "not set"),
    ("", "empty"),
    ("   ", "empty"),
    ("changeme", "a known default or placeholder value"),
    ("CHANGEME", "a known default or placeholder value"),
    ("your-token-here", "a known default or placeholder value"),
    ("xxx", "a known default or placeholder value"),
    ("XXXXXXXXXX", "a run of x characters"),
    ("<your-influxdb-token>", "a <...> placeholder"),
    ("<>", "a <...> placeholder"),
    ("${INFLUXDB_TOKEN}", "an unexpanded ${...} variable"),
    ("{{ vault_token }}", "an unrendered {{ ... }} template"),
    ("your-admin-api-token-here", "a 'your-...' placeholder"),
    ("paste-token-here", "a '...-here' placeholder"),
    ("changeme-later", "a 'changeme' placeholder"),
    ("example-shared-secret", "an example or dummy value"),
    ("********", "a run of asterisks"),
    ("aaaaaaaa", "one character repeated"),
])
def test_placeholders_are_named_without_repeating_the_value(value, reason):
    assert scan.placeholder_reason(value) == reason


@pytest.mark.parametrize("value", ["tok-" + rand(32), "demo-only-influxdb-token-7f3a9c51e2b84d06", "Zq7-shared-4f1e9b"])
def test_real_looking_values_are_not_placeholders(value):
    assert scan.placeholder_reason(value) is None


def test_inventory_extends_the_placeholder_list():
    assert scan.placeholder_reason("HomeIQ-Default") is None
    assert scan.placeholder_reason("HomeIQ-Default", extra=["homeiq-default"]) == \
        "a value on the inventory's list of known defaults"


def test_mask_keeps_only_a_format_marker_of_long_tokens():
    token = "ghp_" + rand(36)
    assert scan.mask(token) == "********"
    assert scan.mask(token, keep_prefix=True) == "ghp_********"
    assert scan.mask("short", keep_prefix=True) == "********"


def test_redactor_replaces_every_known_secret_longest_first():
    long_secret, short_secret = "abcd" + rand(20), "xyz12"
    red = scan.Redactor([long_secret, short_secret, "ab", None])
    text = f"a {long_secret} b {short_secret} c ab"
    assert red(text) == "a ******** b ******** c ab"
    assert red([text]) == ["a ******** b ******** c ab"]
    assert red(None) is None


@pytest.mark.parametrize("name, kind", [
    ("app.py", "code"), ("ha.js", "code"), ("settings.yaml", "config"), (".env", "config"),
    ("demo.env", "config"), ("demo.env.example", "config"), (".env.production", "config"),
    ("Dockerfile", "config"), ("compose.yaml", "config"), ("README.md", "text"), ("config.json.tmpl", "config"),
])
def test_file_kind(name, kind):
    assert scan.file_kind(name) == kind


def _rules(text, path):
    return [(f.line, f.rule) for f in scan.scan_text(text, path)]


def test_each_token_format_is_found_and_masked():
    values = {
        "github": "ghp_" + rand(36),
        "aws": "AKIA" + rand(16, string.ascii_uppercase + string.digits),
        "slack": "xoxb-" + rand(12, string.digits) + "-" + rand(24),
        "jwt": "eyJ" + rand(20) + ".eyJ" + rand(30) + "." + rand(40),
        "google": "AIza" + rand(35),
        "stripe": "sk_live_" + rand(24),
        "gitlab": "glpat-" + rand(20),
    }
    text = "\n".join(f"note {v}" for v in values.values())
    findings = scan.scan_text(text, "notes.md")
    assert [f.rule for f in findings] == ["github-token", "aws-access-key-id", "slack-token", "jwt",
                                          "google-api-key", "stripe-key", "gitlab-token"]
    blob = repr(findings)
    assert not any(v in blob for v in values.values())
    assert findings[0].masked == "ghp_********"


def test_private_key_block_is_one_finding_fingerprinted_by_its_body():
    body = [rand(64, ALNUM + "+/") for _i in range(3)]
    text = "\n".join(["-----BEGIN OPENSSH " + "PRIVATE KEY-----", *body, "-----END OPENSSH " + "PRIVATE KEY-----"])
    findings = scan.scan_text(text, "id_ed25519")
    assert [(f.line, f.rule) for f in findings] == [(1, "private-key (openssh)")]
    assert findings[0].fingerprint == scan.fingerprint("".join(body))
    assert not any(b in repr(findings) for b in body)


@pytest.mark.parametrize("line, path, found", [
    ('db_password = "' + "Pw" + "x7Rq2LmZ9" + '"', "app.py", True),
    ("db_password = settings.db_password", "app.py", False),  # an expression
    ("password = get_password()", "app.py", False),
    ("API_KEY = os.environ['API_KEY']", "app.py", False),
    ('token: str = ""', "app.py", False),
    ("password: " + "Yp" + "9sKq2LmZ", "settings.yaml", True),
    ("password: ${DB_PASSWORD}", "settings.yaml", False),
    ("password: changeme", "settings.yaml", False),  # a placeholder, as an example should have
    ("password_file: /run/secrets/db", "settings.yaml", False),
    ("token_ttl: 3600", "settings.yaml", False),
    ("ADMIN_API_TOKEN=" + "tok" + "A8f3k2LmQ9", ".env", True),
    ("ADMIN_API_TOKEN=your-admin-api-token-here", ".env.example", False),
    ('{"client_secret": "' + "cs" + "Q8m2Lx7Rt" + '"}', "creds.json", True),
    ("The password: see the vault", "README.md", False),  # prose is not scanned for assignments
    ("DATABASE_URL=postgres://app:" + "Up" + "q8Lm2x7R" + "@db:5432/app", ".env", True),
    ("DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app", ".env", False),
    ("Authorization: Bearer " + rand(32), "notes.txt", True),
    ("Authorization: Bearer ${TOKEN}", "notes.txt", False),
    ("password = 'hunter22hunter'  # pragma: allowlist secret", "app.py", False),
    ("password = 'hunter22hunter'  # preflight: allow", "app.py", False),
])
def test_assignment_and_url_rules(line, path, found):
    assert bool(scan.scan_text(line, path)) is found, scan.scan_text(line, path)


def test_allow_list_by_path_rule_and_fingerprint():
    secret = "Pw" + rand(14)
    f = scan.Finding("config/settings.yaml", 4, "assigned-secret", "********", scan.fingerprint(secret))
    assert scan.is_allowed(f, [{"path": "config/*"}])
    assert scan.is_allowed(f, [{"path": "settings.yaml", "rule": "assigned-secret"}])
    assert not scan.is_allowed(f, [{"path": "settings.yaml", "rule": "jwt"}])
    assert scan.is_allowed(f, [{"fingerprint": scan.fingerprint(secret)[:8]}])
    assert not scan.is_allowed(f, [{"fingerprint": "000000"}])
    key = scan.Finding("deploy/id_rsa", 1, "private-key (rsa)", "x", "f")
    assert scan.is_allowed(key, [{"rule": "private-key"}])
    assert not scan.is_allowed(f, [{}, "junk"])


def test_scan_tree_walks_text_files_and_skips_the_rest(tmp_path):
    token = "ghp_" + rand(36)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text(f'TOKEN = "{token}"\n')
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "b.js").write_text(f'const t = "{token}";\n')
    (tmp_path / "image.bin").write_bytes(b"\0\1" + token.encode())
    (tmp_path / "big.txt").write_text(token + "\n" + "x" * 2000)
    (tmp_path / "in-use.env").write_text(f"GITHUB_TOKEN={token}\n")
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "c.py").write_text(f'TOKEN = "{token}"\n')
    result = scan.scan_tree(tmp_path, exclude=["vendor"], max_file_bytes=1000,
                            skip_files=[tmp_path / "in-use.env"])
    assert [(f.path, f.line, f.rule) for f in result.findings] == [("src/a.py", 1, "github-token")]
    assert result.skipped_large == ["big.txt"]
    assert result.files_scanned == 1
    allowed = scan.scan_tree(tmp_path, paths=["src"], allow=[{"path": "src/*.py"}])
    assert allowed.findings == [] and allowed.allowed == 1
