"""Compose's path rule, stacks, committed defaults, the baseline and the small rules of preflight
(no engine: the checks that need Compose are left out with `only`)."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import textwrap

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight as pf
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_baseline as bl
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_env as penv
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_project as proj
from ansible_collections.homeiq.deploy.plugins.module_utils import _secrets_scan as scan

ALNUM = string.ascii_letters + string.digits


def rand(n):
    return "".join(secrets.choice(ALNUM) for _i in range(n))


DOMAIN = textwrap.dedent("""\
    name: pf-core
    services:
      db:
        image: x
        env_file: ../../.env
        environment:
          POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-@@PG@@}
        volumes:
          - ../../infrastructure/db/init.sql:/init.sql:ro
          - data:/var/lib/data
        healthcheck: {test: ["CMD", "true"]}
        deploy: {resources: {limits: {memory: 64M, cpus: "0.5"}}}
      api:
        build: {context: ../.., dockerfile: domains/core/api/Dockerfile}
        env_file: ../../.env
        volumes:
          - {type: bind, source: ../../infrastructure/api, target: /etc/api}
        deploy: {resources: {limits: {memory: 64M, cpus: "0.5"}}}
    volumes:
      data: {}
    """)


@pytest.fixture
def repo(tmp_path):
    """A HomeIQ-shaped checkout: domains/core/compose.yml reaching ../../.env and ../../infrastructure."""
    literal = "pg-" + rand(20)
    core = tmp_path / "domains" / "core"
    (core / "api").mkdir(parents=True)
    (core / "compose.yml").write_text(DOMAIN.replace("@@PG@@", literal))
    (core / "api" / "Dockerfile").write_text("FROM x\nHEALTHCHECK CMD true\n")
    (tmp_path / "infrastructure" / "db").mkdir(parents=True)
    (tmp_path / "infrastructure" / "db" / "init.sql").write_text("SELECT 1;\n")
    (tmp_path / "infrastructure" / "api").mkdir()
    (tmp_path / ".env").write_text("APP_MODE=prod\n")
    return tmp_path, literal


# --- Compose's path rule ------------------------------------------------------------------

@pytest.mark.parametrize("files, project_directory, expected", [
    ([], None, "."),
    (["domains/core/compose.yml"], None, "domains/core"),
    (["domains/core/compose.yml", "override.yml"], None, "domains/core"),
    (["domains/core/compose.yml"], ".", "."),
    (["domains/core/compose.yml"], "domains", "domains"),
    ([], "domains/core", "domains/core"),
])
def test_project_directory_follows_compose(repo, files, project_directory, expected):
    root, _literal = repo
    p = proj.ComposeProject(root, files=files, project_directory=project_directory)
    assert p.project_dir() == os.path.normpath(os.path.join(root, expected))
    # the Compose client agrees on the directory, and only gets --project-directory when one is named
    cli = p.compose_cli()
    assert cli.project_dir() == p.project_dir()
    args = cli.base_args()
    assert ("--project-directory" in args) is bool(project_directory)


@pytest.mark.parametrize("env_files, dotenv_at, expected", [
    ([], "domains/core/.env", ["domains/core/.env"]),   # Compose reads <project dir>/.env ...
    ([], ".env", []),                                   # ... not the one where it runs from
    ([".env"], "domains/core/.env", [".env"]),          # and none of it once --env-file is given
    ([".env", ".env"], None, [".env"]),
])
def test_interpolation_env_files(repo, env_files, dotenv_at, expected):
    root, _literal = repo
    if dotenv_at and dotenv_at != ".env":
        (root / dotenv_at).write_text("X=1\n")
    p = proj.ComposeProject(root, files=["domains/core/compose.yml"], env_files=env_files)
    assert [p.show(x) for x in p.env_file_paths()] == expected


def test_relative_paths_in_a_domain_file_resolve_from_its_folder(repo):
    root, _literal = repo
    p = proj.ComposeProject(root, files=["domains/core/compose.yml"])
    raw = p.raw()
    assert raw.error is None
    assert {(s, p.show(path)) for s, path, _req in raw.env_file_refs()} == {("db", ".env"), ("api", ".env")}
    db, api = raw.services["db"], raw.services["api"]
    assert [p.show(src) for src, _t in proj.bind_mounts(db, db["_base_dir"])] == ["infrastructure/db/init.sql"]
    assert [p.show(src) for src, _t in proj.bind_mounts(api, api["_base_dir"])] == ["infrastructure/api"]
    assert proj.dockerfile_healthcheck(api, api["_base_dir"]) is True
    assert p.project_name(ask_compose=False) == "pf-core"


def test_included_files_resolve_from_their_own_folder(tmp_path):
    (tmp_path / "domains" / "web").mkdir(parents=True)
    (tmp_path / "domains" / "web" / "compose.yml").write_text("services:\n  web:\n    image: x\n    env_file: web.env\n")
    (tmp_path / "compose.yaml").write_text("include:\n  - domains/web/compose.yml\nservices:\n  a:\n    image: x\n    env_file: a.env\n")
    p = proj.ComposeProject(tmp_path)
    refs = {s: p.show(path) for s, path, _req in p.raw().env_file_refs()}
    assert refs == {"web": "domains/web/web.env", "a": "a.env"}


@pytest.mark.parametrize("names, found", [
    (["compose.yaml", "docker-compose.yml"], ["compose.yaml"]),
    (["docker-compose.yaml", "docker-compose.yml"], ["docker-compose.yml"]),
    (["compose.yml", "compose.override.yaml"], ["compose.yml", "compose.override.yaml"]),
    (["docker-compose.yml", "compose.override.yml"], ["docker-compose.yml", "compose.override.yml"]),
])
def test_default_files_as_compose_finds_them(tmp_path, names, found):
    for n in names:
        (tmp_path / n).write_text("services: {}\n")
    assert [os.path.basename(f) for f in proj.ComposeProject(tmp_path).compose_files()] == found


def test_mounts_check_names_a_missing_source(repo):
    root, _literal = repo
    (root / "infrastructure" / "db" / "init.sql").unlink()
    res = pf.run_preflight({"project_src": str(root), "files": ["domains/core/compose.yml"], "only": ["mounts"],
                            "docker_cli": "/nonexistent/docker"})
    entry = res["checks"][0]
    assert entry["result"] == "fail"
    assert "missing: infrastructure/db/init.sql (bind mount of db at /init.sql)" in entry["why"]
    assert "relative paths resolve from the project directory domains/core" in entry["why"]


# --- env files ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["\ufeffA=1\nB=2\n", "A=1\r\nB=2\r\n", "\ufeffexport A=1\nB=2"])
def test_env_file_with_a_bom_or_crlf_reads_as_compose_does(tmp_path, text):
    path = tmp_path / "bom.env"
    path.write_bytes(text.encode("utf-8"))
    assert proj.read_env_file(path) == {"A": "1", "B": "2"}


def test_env_files_check_lists_each_file_once(repo):
    root, _literal = repo
    res = pf.run_preflight({"project_src": str(root), "files": ["domains/core/compose.yml"], "env_files": [".env", ".env"],
                            "only": ["env_files"], "docker_cli": "/nonexistent/docker"})
    why = res["checks"][0]["why"]
    assert why == "1 env file present and readable: .env", why


# --- committed defaults ---------------------------------------------------------------------

@pytest.mark.parametrize("text, env, expected", [
    ("P: ${PW:-lit}", {}, [("PW", ":-", "lit")]),
    ("P: ${PW-lit}", {}, [("PW", "-", "lit")]),
    ("P: ${PW:-lit}", {"PW": ""}, [("PW", ":-", "lit")]),
    ("P: ${PW-lit}", {"PW": ""}, []),                 # set, if empty: `-` keeps the empty value
    ("P: ${PW:-lit}", {"PW": "real"}, []),
    ("P: ${PW:-}", {}, []),                           # an empty default is no committed literal
    ("P: $${PW:-lit}", {}, []),                       # $$ escapes: Compose leaves it alone
    ("# P: ${PW:-lit}", {}, []),                      # a YAML comment
    ("P: x # ${PW:-lit}", {}, []),
    ("P: '#${PW:-lit}'", {}, [("PW", ":-", "lit")]),  # a # inside quotes is no comment
    ("P: ${A:-${B:-x}}", {}, [("B", ":-", "x"), ("A", ":-", "x")]),
    ("P: ${A:-${B:-x}}", {"B": "set"}, []),
    ("P: ${A:-${B}}", {}, []),
    ("P: ${A:-pre-${B}}", {"B": "v"}, [("A", ":-", "pre-")]),
    ("P: ${A:?must}", {}, []),
    ("P: ${A:+alt}", {}, []),
])
def test_literal_defaults(text, env, expected):
    found = [(d.name, d.op, d.literal) for d in penv.literal_defaults(text, env)]
    assert found == expected


def test_literal_defaults_carry_the_line():
    text = "a: 1\n\nb: ${X_PASSWORD:-one}\nc: ${X_PASSWORD:-two}\n"
    assert [(d.line, d.literal) for d in penv.literal_defaults(text, {})] == [(3, "one"), (4, "two")]


def test_tokens_fail_on_a_committed_default_without_printing_it(repo):
    root, literal = repo
    res = pf.run_preflight({"project_src": str(root), "files": ["domains/core/compose.yml"], "env_files": [".env"],
                            "only": ["tokens"], "docker_cli": "/nonexistent/docker"})
    entry = res["checks"][0]
    assert entry["result"] == "fail"
    assert ("POSTGRES_PASSWORD is not set in env file(s) .env and the environment, so domains/core/compose.yml line 7 "
            "uses the default committed there (********): set POSTGRES_PASSWORD in .env") in entry["why"]
    assert literal not in json.dumps(res)


def test_tokens_fail_when_the_env_file_repeats_the_committed_default(repo):
    root, literal = repo
    (root / ".env").write_text(f"POSTGRES_PASSWORD={literal}\n")
    res = pf.run_preflight({"project_src": str(root), "files": ["domains/core/compose.yml"], "env_files": [".env"],
                            "only": ["tokens"], "docker_cli": "/nonexistent/docker"})
    assert "POSTGRES_PASSWORD is the default committed in domains/core/compose.yml line 7" in res["checks"][0]["why"]
    assert literal not in json.dumps(res)


def test_tokens_pass_when_the_secret_is_set(repo):
    root, _literal = repo
    (root / ".env").write_text(f"POSTGRES_PASSWORD=pw-{rand(20)}\n")
    res = pf.run_preflight({"project_src": str(root), "files": ["domains/core/compose.yml"], "env_files": [".env"],
                            "only": ["tokens"], "docker_cli": "/nonexistent/docker"})
    assert res["checks"][0]["result"] == "pass", res["summary"]


@pytest.mark.parametrize("name, secret", [
    ("SENTRY_DSN", True), ("ENCRYPTION_KEY", True), ("JWT_SIGNING_KEY", True), ("HOMEIQ_API_KEY_ID", False),
    ("KEY_PREFIX", False), ("MONKEY", False), ("SSH_KEY_PATH", False), ("POSTGRES_PASSWORD", True),
])
def test_more_secret_names(name, secret):
    assert pf.is_secret_name(name) is secret


# --- stacks -----------------------------------------------------------------------------------

def test_stack_runs_project_checks_per_project_and_host_checks_once(repo):
    root, _literal = repo
    (root / "domains" / "web").mkdir()
    (root / "domains" / "web" / "compose.yml").write_text("services:\n  web:\n    image: x\n    env_file: ../../.env\n")
    res = pf.run_preflight({"project_src": str(root), "docker_cli": "/nonexistent/docker",
                            "only": ["env_files", "tokens", "secret_scan"], "projects": [
                                {"name": "pf-core", "files": ["domains/core/compose.yml"], "env_files": [".env"]},
                                {"name": "pf-web", "files": ["domains/web/compose.yml"], "env_files": [".env"]}]})
    labels = [(c["check"], c.get("project"), c["result"]) for c in res["checks"]]
    assert labels == [("env_files", "pf-core", "pass"), ("env_files", "pf-web", "pass"),
                      ("tokens", "pf-core", "fail"), ("secret_scan", None, "pass")]
    assert [s["project"] for s in res["skipped_checks"] if s["check"] == "tokens"] == ["pf-web"]
    assert res["failed_checks"] == ["tokens [pf-core]"]
    assert res["projects"] == ["pf-core", "pf-web"] and res["project_name"] == "pf-core, pf-web"
    assert any(line.startswith("FAIL  tokens [pf-core]: POSTGRES_PASSWORD") for line in res["summary"])


@pytest.mark.parametrize("params, msg", [
    ({"projects": [{"name": "a"}], "files": ["x.yml"]}, "projects cannot be combined with files"),
    ({"projects": [{"name": "a"}], "project_name": "b"}, "projects cannot be combined with project_name"),
    ({"projects": [{"files": ["x"]}]}, "projects[0] needs a name"),
    ({"projects": [{"name": "A B"}]}, "projects[0] name 'A B' is not a compose project name"),
    ({"projects": [{"name": "a"}, {"name": "a"}]}, "two entries of projects are named 'a'"),
    ({"projects": [{"name": "a", "file": ["x"]}]}, "projects[0] (a) has unknown key(s) file"),
    ({"projects": [{"name": "a", "files": "x.yml"}]}, "projects[0] (a) files must be a list"),
    ({"compose_min_version": "2.20.0"}, "compose_min_version 2.20.0 is below 2.21.0, the lowest Compose this collection "
                                        "works with"),
    ({"compose_min_version": "1.29.2"}, "set 2.21.0 or higher"),
])
def test_bad_stack_or_version_input_is_one_line(repo, params, msg):
    root, _literal = repo
    with pytest.raises(pf.PreflightError) as info:
        pf.run_preflight(dict({"project_src": str(root)}, **params))
    assert msg in str(info.value) and "\n" not in str(info.value)


def test_services_limit_the_judged_services_to_them_and_their_dependencies(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n  c:\n    image: x\n")
    services, _source, _name = proj.ComposeProject(tmp_path, services=["a"], docker_cli="/nonexistent/docker").model()
    assert sorted(services) == ["a", "b"]


# --- the secret scan: templates and the baseline ---------------------------------------------

@pytest.mark.parametrize("name, text", [
    (".env.example", "POSTGRES_PASSWORD=replace-with-a-strong-password\n"),
    (".env.example", "SECRET_KEY=generate-one-with-openssl-rand\n"),
    ("config.yaml.template", "api_token: put-the-token-from-the-admin-page\n"),
    ("settings.sample", "password = your-db-password\n"),
    ("app.env.example", "DB_URL=postgres://homeiq:example-pass@db/homeiq\n"),
    (".env.example", "SESSION_SECRET=\n"),
    (".env.example", "ADMIN_TOKEN=<admin token>\n"),
])
def test_placeholders_in_example_and_template_files_are_not_findings(name, text):
    assert scan.scan_text(text, name) == []


@pytest.mark.parametrize("name", [".env", "config.yaml", "settings.ini"])
def test_the_same_words_outside_templates_still_count_when_they_look_real(name):
    # a real-looking value is reported anywhere; template leniency does not leak into other files
    found = scan.scan_text(f"db_password = Gx{rand(18)}\n", name)
    assert [f.rule for f in found] == ["assigned-secret"]


def test_a_real_token_in_an_example_file_is_still_a_finding():
    token = "ghp_" + rand(36)
    assert [f.rule for f in scan.scan_text(f"GITHUB_TOKEN={token}\n", ".env.example")] == ["github-token"]


def test_baseline_key_is_stable_when_lines_move_and_changes_with_the_secret():
    secret = "Pw" + rand(18)
    a = scan.scan_text(f"db_password: {secret}\n", "config.yaml")[0]
    b = scan.scan_text(f"\n\n# moved\ndb_password: {secret}\n", "config.yaml")[0]
    c = scan.scan_text(f"db_password: {secret}x\n", "config.yaml")[0]
    d = scan.scan_text(f"db_password: {secret}\n", "other.yaml")[0]
    assert a.line != b.line and a.key == b.key
    assert len({a.key, c.key, d.key}) == 3
    assert secret not in a.key and a.secret_sha1 == hashlib.sha1(secret.encode()).hexdigest()  # nosec


def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _scan(root, **params):
    params = dict({"project_src": str(root), "only": ["secret_scan"], "docker_cli": "/nonexistent/docker"}, **params)
    res = pf.run_preflight(params)
    return res, res["checks"][0]


def test_baseline_written_then_accepting_old_findings_and_failing_a_new_one(tmp_path):
    s1, s2, s3 = "Pw" + rand(18), "Tk" + rand(22), "Nw" + rand(18)
    _tree(tmp_path, {"config.yaml": f"db_password: {s1}\n", "app/settings.py": f'API_TOKEN = "{s2}"\n'})
    res, entry = _scan(tmp_path, secret_scan_write_baseline=True, check_mode=True)
    assert res["changed"] is True and "would be written: 2 findings accepted by it" in entry["why"]
    assert not (tmp_path / ".homeiq-secrets-baseline.json").exists()
    res, entry = _scan(tmp_path, secret_scan_write_baseline=True)
    assert res["changed"] is True and entry["result"] == "pass" and "written: 2 findings" in entry["why"]
    text = (tmp_path / ".homeiq-secrets-baseline.json").read_text()
    assert s1 not in text and s2 not in text
    assert hashlib.sha1(s1.encode()).hexdigest() not in text  # nosec - not even the plain hash of the secret
    res, _entry = _scan(tmp_path, secret_scan_write_baseline=True)
    assert res["changed"] is False
    res, entry = _scan(tmp_path)
    assert entry["result"] == "pass" and "(2 accepted by the baseline .homeiq-secrets-baseline.json)" in entry["why"]
    # lines move, a new secret appears: only the new one fails
    _tree(tmp_path, {"config.yaml": f"# moved down\n\ndb_password: {s1}\n", "new.env.yaml": f"smtp_password: {s3}\n"})
    res, entry = _scan(tmp_path)
    assert entry["result"] == "fail"
    assert entry["why"].startswith("1 new possible credential(s) committed in 1 file(s): new.env.yaml:1 assigned-secret")
    assert "2 accepted by the baseline" in entry["why"]
    assert s3 not in json.dumps(res)


def test_baseline_counts_entries_no_longer_found(tmp_path):
    _tree(tmp_path, {"config.yaml": f"db_password: Pw{rand(18)}\n"})
    _scan(tmp_path, secret_scan_write_baseline=True)
    (tmp_path / "config.yaml").write_text("db_password: ${DB_PASSWORD}\n")
    _res, entry = _scan(tmp_path)
    assert entry["result"] == "pass" and "1 baseline entry no longer found" in entry["why"]


def test_detect_secrets_baseline_accepts_matching_hashes(tmp_path):
    s1, s2 = "Pw" + rand(18), "Tk" + rand(22)
    _tree(tmp_path, {"config.yaml": f"db_password: {s1}\n", "other.yaml": f"api_token: {s2}\n"})

    def sha1(text):
        return hashlib.sha1(text.encode()).hexdigest()  # nosec - detect-secrets' own hash
    (tmp_path / ".secrets.baseline").write_text(json.dumps({"version": "1.5.0", "results": {
        "config.yaml": [{"type": "Secret Keyword", "hashed_secret": sha1(s1), "line_number": 1}],
        "other.yaml": [{"type": "Secret Keyword", "hashed_secret": sha1(s2), "line_number": 1, "is_secret": True}]}}))
    _res, entry = _scan(tmp_path, secret_scan_baseline=".secrets.baseline")
    assert entry["result"] == "fail"  # the audited-as-real one is not accepted
    assert "1 new possible credential(s)" in entry["why"] and "other.yaml:1" in entry["why"]
    assert "1 accepted by the baseline .secrets.baseline" in entry["why"]
    _res, entry = _scan(tmp_path, secret_scan_baseline=".secrets.baseline", secret_scan_write_baseline=True)
    assert entry["result"] == "fail" and "is a detect-secrets baseline" in entry["why"]


@pytest.mark.parametrize("content, msg", [
    ("{not json", "is not valid JSON"),
    ('{"format": "homeiq-secrets-baseline", "findings": [{"path": "x"}]}', "has no list of findings with a fingerprint"),
    ('{"something": 1}', "is neither a homeiq-secrets-baseline file nor a detect-secrets baseline"),
])
def test_broken_baseline_fails_the_check_with_one_line(tmp_path, content, msg):
    (tmp_path / ".homeiq-secrets-baseline.json").write_text(content)
    _res, entry = _scan(tmp_path)
    assert entry["result"] == "fail" and msg in entry["why"] and "\n" not in entry["why"]


def test_baseline_render_is_deterministic():
    found = scan.scan_text(f"a_password: Pw{rand(18)}\nb_token: Tk{rand(20)}\n", "x.yaml")
    assert bl.render(found) == bl.render(list(reversed(found)))
    doc = json.loads(bl.render(found))
    assert [e["line"] for e in doc["findings"]] == [1, 2] and all(len(e["fingerprint"]) == 64 for e in doc["findings"])
