"""Planning without an engine: what `up` would do, image references, fingerprints, input checks."""
from __future__ import annotations

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _deploy as d

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def running(image_id=A, hash_="h1", state="running"):
    return {"image_id": image_id, "state": state, "labels": {d.CONFIG_LABEL: hash_}}


@pytest.mark.parametrize("container, target, expected_hash, recreate, action", [
    (None, A, "h1", "auto", "create"),
    (running(), A, "h1", "auto", None),                    # same image, same config: nothing
    (running(), B, "h1", "auto", "recreate"),              # new image under the same tag
    (running(), A, "h2", "auto", "recreate"),              # definition changed
    (running(), None, "h1", "auto", "recreate"),           # image would be built: unknown, so it changes
    (running(), A, "h1", "always", "recreate"),            # the runbook's full down/up
    (running(), B, "h2", "never", None),                   # never recreate
    (running(state="exited"), A, "h1", "auto", "start"),
    (running(state="exited"), B, "h1", "never", "start"),
    (None, A, "h1", "never", "create"),
])
def test_plan_service(container, target, expected_hash, recreate, action):
    assert d.plan_service("s", container, target, expected_hash, recreate) == action


@pytest.mark.parametrize("project, service, cfg, ref", [
    ("demo", "data-api", {}, "demo-data-api:latest"),
    ("demo", "db", {"image": "postgres"}, "postgres:latest"),
    ("demo", "db", {"image": "postgres:16"}, "postgres:16"),
    ("demo", "x", {"image": "registry:5000/team/x"}, "registry:5000/team/x:latest"),
    ("demo", "x", {"image": "registry:5000/team/x:1.2"}, "registry:5000/team/x:1.2"),
    ("demo", "x", {"image": "x@sha256:" + "c" * 64}, "x@sha256:" + "c" * 64),
])
def test_image_ref(project, service, cfg, ref):
    assert d.image_ref(project, service, cfg) == ref


@pytest.mark.parametrize("ref, parts", [
    ("demo-data-api:latest", ("demo-data-api", "latest")),
    ("registry:5000/team/x:1.2", ("registry:5000/team/x", "1.2")),
    ("registry:5000/team/x", ("registry:5000/team/x", "latest")),
])
def test_split_ref(ref, parts):
    assert d.split_ref(ref) == parts


def test_deployment_id_format():
    from datetime import datetime, timezone
    assert d.new_deployment_id(datetime(2026, 11, 26, 23, 5, 9, tzinfo=timezone.utc)) == "deploy-20261126-230509"


def _context(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nCOPY app.py /\n")
    (ctx / "app.py").write_text("print(1)\n")
    (ctx / "notes.log").write_text("noise\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    return ctx


def test_fingerprint_follows_what_the_build_reads(tmp_path):
    ctx = _context(tmp_path)
    build = {"context": str(ctx), "args": {"RELEASE": "a"}}
    first = d.context_fingerprint(build)
    assert d.context_fingerprint(build) == first                              # stable
    (ctx / "notes.log").write_text("other noise\n")
    assert d.context_fingerprint(build) == first                              # ignored file
    assert d.context_fingerprint(dict(build, args={"RELEASE": "b"})) != first  # build args
    (ctx / "app.py").write_text("print(2)\n")
    assert d.context_fingerprint(build) != first                              # source
    second = d.context_fingerprint(build)
    (ctx / "Dockerfile").write_text("FROM base\nCOPY app.py /srv/\n")
    assert d.context_fingerprint(build) != second                             # Dockerfile


def test_dockerignore_negation(tmp_path):
    assert d._ignored("a/b.log", ["*.log", "a"]) is True
    assert d._ignored("keep.log", ["*.log", "!keep.log"]) is False
    assert d._ignored("src/app.py", ["*.log"]) is False


def _params(tmp_path, **kw):
    p = {"project_src": str(tmp_path), "files": None, "env_files": None, "state": "present",
         "deployment_id": None, "restore_images": None}
    p.update(kw)
    return p


@pytest.mark.parametrize("kw, message", [
    ({"project_src": "/nonexistent/x"}, "project_src /nonexistent/x does not exist"),
    ({"files": ["missing.yaml"]}, "compose file .*missing.yaml does not exist"),
    ({"env_files": ["release.env"]}, "env file .*release.env does not exist"),
    ({"deployment_id": "bad id!"}, "not usable as an image tag"),
    ({"state": "restored"}, "state=restored needs restore_images"),
    ({"restore_images": {"s": A}}, "only used with state=restored"),
    ({"state": "restored", "restore_images": {"s": "abc123"}}, r"restore_images\[s\] = 'abc123' is not a full image ID"),
])
def test_validate_params(tmp_path, kw, message):
    with pytest.raises(d.DeployError, match=message):
        d.validate_params(_params(tmp_path, **kw))


def test_validate_params_accepts_good_input(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    d.validate_params(_params(tmp_path, files=["compose.yaml"], state="restored", restore_images={"s": A},
                              deployment_id="deploy-20261126-230509"))


def test_service_hash_ignores_what_needs_no_new_container():
    base = {"image": "x", "environment": {"A": "1"}, "labels": {"team": "ops"}, "deploy": {"replicas": 1}}
    h = d.service_hash(base)
    assert d.service_hash(dict(base, build={"context": "/elsewhere"}, pull_policy="always")) == h
    assert d.service_hash(dict(base, labels={"team": "ops", d.DEPLOYMENT_LABEL: "deploy-2", d.CONFIG_LABEL: "z"})) == h
    assert d.service_hash(dict(base, deploy={"replicas": 3})) == h
    assert d.service_hash(dict(base, environment={"A": "2"})) != h
    assert d.service_hash(dict(base, labels={"team": "dev"})) != h


def test_prunable_tags_are_deployment_ids_that_sort_in_time():
    for tag in ("deploy-20261127-033418", "deploy-20261127-033418-0vap", "deploy-20261127-033418-0vap.h1",
                "deploy-20261127-033418-0vap-revert.homeiq-prod-1.example.invalid"):
        assert d.PRUNABLE_TAG_RE.match(tag), tag
    for tag in ("latest", "v1.2", "deploy-2026-11-27", "deploy-20261127-033418-0VAP", "release-20261127-033418"):
        assert not d.PRUNABLE_TAG_RE.match(tag), tag


@pytest.mark.parametrize("state, health, expected", [
    ("running", None, False),
    ("running", "healthy", False),
    ("running", "unhealthy", True),
    # Compose 2.40 gives up at --wait-timeout while a dependency's health still reads "starting".
    ("running", "starting", True),
    ("exited", None, True),
    ("restarting", "starting", True),
])
def test_a_container_that_failed_up_wait(state, health, expected):
    assert d.not_ready({"state": state, "health": health}) is expected
