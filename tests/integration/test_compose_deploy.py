"""compose_deploy against the real engine: check -> real -> check -> real, releases, restore, lock, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

IMAGE_ID = "sha256:"


def test_lifecycle_check_real_check_real(project, run_module):
    images_before = project.images()
    # check mode: predicts everything, builds and touches nothing
    run, res = run_module(project.args(), check=True)
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    assert {a["what"] for a in res["result"]["actions"]} == {"build", "create"}
    assert project.containers() == {} and project.images() == images_before

    # real: builds, deploys, labels and tags with the deployment id
    run, res = run_module(project.args(deployment_id="deploy-20261126-000001"))
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    r = res["result"]
    first = project.containers()
    assert set(first) == {"api", "worker"}
    for svc, (cid, image_id, status, labels) in first.items():
        assert status == "running"
        assert labels["io.homeiq.deployment-id"] == "deploy-20261126-000001"
        assert r["current_images"][svc] == image_id and image_id.startswith(IMAGE_ID) and len(image_id) == 71
    assert r["previous_images"] == {}
    assert {s["name"]: s["health"] for s in r["services"]} == {"api": "healthy", "worker": "healthy"}
    tags = dict(project.images())
    assert tags[f"{project.name}-api:deploy-20261126-000001"] == first["api"][1]

    # check again: nothing would change
    run, res = run_module(project.args(), check=True)
    assert res["result"]["changed"] is False, res["result"]["actions"]

    # real again: idempotent, no container recreated, no new tag
    run, res = run_module(project.args(deployment_id="deploy-20261126-000002"))
    assert res["result"]["changed"] is False, res["result"]["actions"]
    assert project.containers() == first
    assert not any(t.endswith(":deploy-20261126-000002") for t, dummy in project.images())


def test_release_change_and_restore(project, run_module):
    run, res = run_module(project.args("a"))
    assert res["status"] == "ok", run.output
    images_a = res["result"]["current_images"]

    # B in check mode: changed, but nothing built and no container touched
    before = project.containers()
    images_before = project.images()
    run, res = run_module(project.args("b"), check=True, diff=True)
    assert res["result"]["changed"] is True
    assert project.containers() == before and project.images() == images_before
    assert res["result"]["diff"]["before"]["services"]["api"]["image_id"] == images_a["api"]

    run, res = run_module(project.args("b"))
    r = res["result"]
    assert r["changed"] is True and r["previous_images"] == images_a, run.output
    images_b = r["current_images"]
    assert set(images_b) == {"api", "worker"} and all(images_b[s] != images_a[s] for s in images_b)
    assert {s["name"]: s["previous_image_id"] for s in r["services"]} == images_a

    # restore A's exact images: check, real, check, real
    restore = project.args("b", state="restored", restore_images=images_a)
    run, res = run_module(restore, check=True)
    assert res["result"]["changed"] is True
    assert {s: c[1] for s, c in project.containers().items()} == images_b
    run, res = run_module(restore)
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    assert {s: c[1] for s, c in project.containers().items()} == images_a
    assert all(c[2] == "running" for c in project.containers().values())
    run, res = run_module(restore, check=True)
    assert res["result"]["changed"] is False
    restored = project.containers()
    run, res = run_module(restore)
    assert res["result"]["changed"] is False and project.containers() == restored


def test_build_failure_leaves_the_stack_untouched(project, run_module):
    run, res = run_module(project.args("a"))
    assert res["status"] == "ok", run.output
    before = project.containers()
    run, res = run_module(project.args("buildfail"))
    assert res["status"] == "failed"
    msg = res["result"]["msg"]
    assert msg.startswith("build failed, nothing was deployed") and "\n" not in msg
    assert "Traceback" not in run.output
    assert res["result"]["previous_images"] == {s: c[1] for s, c in before.items()}
    assert project.containers() == before
    # the service tags still name the running images, so a plain `up` would not start a half-built release
    tags = dict(project.images())
    assert {s: tags[f"{project.name}-{s}:latest"] for s in before} == {s: c[1] for s, c in before.items()}


def test_unhealthy_release_fails_with_the_snapshot(project, run_module):
    run, res = run_module(project.args("a"))
    images_a = res["result"]["current_images"]
    run, res = run_module(project.args("unhealthy", wait_timeout=15))
    assert res["status"] == "failed"
    r = res["result"]
    assert "`docker compose up` failed" in r["msg"]
    assert r["previous_images"] == images_a       # what a rollback restores


def held_lock(lock_dir, project_name, deployment_id):
    """Another real process holding the project's lock until killed."""
    from tests.conftest import COLLECTIONS
    code = ("import sys, time; sys.path.insert(0, %r); "
            "from ansible_collections.homeiq.deploy.plugins.module_utils._lock import ProjectLock; "
            "ProjectLock(%r, lock_dir=%r, deployment_id=%r).acquire(); print('held', flush=True); time.sleep(300)"
            % (str(COLLECTIONS), project_name, str(lock_dir), deployment_id))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_refuses_a_concurrent_run_and_takes_over_a_dead_one(project, run_module):
    holder = held_lock(project.lock_dir, project.name, "deploy-other-run")
    try:
        run, res = run_module(project.args())
        assert res["status"] == "failed"
        assert "is locked by deploy-other-run" in res["result"]["msg"]
        assert "pid %d" % holder.pid in res["result"]["msg"]
        assert project.containers() == {}
        # waiting: the holder goes away within lock_timeout
        subprocess.Popen(["sh", "-c", f"sleep 2; kill -9 {holder.pid}"])
        started = time.monotonic()
        run, res = run_module(project.args(lock_timeout=60))
        assert res["status"] == "ok", run.output
        assert time.monotonic() - started >= 2
        assert res["result"]["lock_taken_over"]["deployment_id"] == "deploy-other-run"
        assert "took over the lock" in run.output
    finally:
        holder.kill()
        holder.wait()
    assert not (project.lock_dir / f"{project.name}.lock").exists()   # released after the run


@pytest.mark.parametrize("case", ["missing_src", "invalid_file", "unknown_service", "unknown_image", "no_engine"])
def test_bad_input_is_one_clear_line_and_stops_nothing(project, run_module, tmp_path, case, compose_version):
    run, res = run_module(project.args("a"))
    assert res["status"] == "ok", run.output
    before = project.containers()
    env = None
    args = project.args("a")
    if case == "missing_src":
        args["project_src"] = str(tmp_path / "nowhere")
        expected = "does not exist or is not a directory"
    elif case == "invalid_file":
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "compose.yaml").write_text("services:\n  x:\n    image: foo\n    ports: notalist\n")
        args.update(project_src=str(bad), env_files=[])
        # Compose's own message; its schema validator says "array" from 2.40 (2.26.1: "list").
        expected = "services.x.ports must be a " + ("list" if compose_version < (2, 40) else "array")
    elif case == "unknown_service":
        args["services"] = ["api", "nosuch"]
        expected = "unknown service nosuch: the project defines api, worker"
    elif case == "unknown_image":
        args.update(state="restored", restore_images={"api": "sha256:" + "0" * 64})
        expected = "cannot restore: the engine has no image api"
    else:
        env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
        expected = "not reachable"
    run, res = run_module(args, env=env)
    assert res["status"] == "failed"
    msg = res["result"]["msg"]
    assert expected in msg, msg
    assert "\n" not in msg and "Traceback" not in run.output
    assert project.containers() == before


def test_env_file_secrets_never_appear(project, run_module):
    secret = "s3cr3t-" + os.urandom(6).hex()
    args = project.args("a")
    args["env_files"] = [project.env_file("a", CDTEST_SECRET=secret)]
    run, res = run_module(args, verbosity=3, env={"ANSIBLE_INJECT_INVOCATION": "1"})
    assert res["status"] == "ok", run.output
    assert "invocation" in res["result"]             # the arguments are in the output, the secret is not
    assert secret not in run.output and secret not in json.dumps(run.results)
    # the container really got it, so the test proves masking and not absence
    api = project.engine.containers.get(project.containers()["api"][0])
    assert f"API_SECRET={secret}" in api.attrs["Config"]["Env"]


def test_restore_by_tag_and_prune_old_deployments(project, run_module):
    run, res = run_module(project.args("a", deployment_id="deploy-20260101-000001"))
    assert res["status"] == "ok", run.output
    images_a = res["result"]["current_images"]
    run, res = run_module(project.args("b", deployment_id="deploy-20260101-000002"))
    images_b = res["result"]["current_images"]

    # an unknown tag: one line, nothing changed
    before = project.containers()
    run, res = run_module(project.args("b", state="restored", restore_tag="deploy-20250101-000000"))
    assert res["status"] == "failed"
    assert "cannot restore tag deploy-20250101-000000: no image" in res["result"]["msg"]
    assert project.containers() == before

    # A's tag brings A's exact images back
    run, res = run_module(project.args("b", state="restored", restore_tag="deploy-20260101-000001",
                                       deployment_id="deploy-20260101-000003"))
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    assert {s: c[1] for s, c in project.containers().items()} == images_a

    # keep the newest deployment only: older tags go, the running images stay
    run, res = run_module(project.args("b", deployment_id="deploy-20260101-000004", keep_deployments=1))
    assert res["status"] == "ok", run.output
    tags = {t.split(":")[1] for t, dummy in project.images()}
    assert "deploy-20260101-000004" in tags
    assert not tags & {"deploy-20260101-000001", "deploy-20260101-000002", "deploy-20260101-000003"}
    assert {s: c[1] for s, c in project.containers().items()} == images_b
    untagged = [a for a in res["result"]["actions"] if a["what"] == "untag"]
    assert len(untagged) == 6
    # A's images had no other tag and no container: the engine removed them
    ids_left = {i for dummy, i in project.images()}
    assert not set(images_a.values()) & ids_left


def test_compose_override_file_is_kept_without_files(engine, tmp_path, run_module):
    """No `files`: Compose's own discovery (compose.yaml + compose.override.yaml) applies, beside our labels."""
    from tests.integration.conftest import HERE, ComposeProject
    proj = ComposeProject(engine, tmp_path, src=HERE / "compose" / "override", port_var="CDOVERRIDE_PORT")
    try:
        args = proj.args()
        run, res = run_module(args, check=True)
        assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
        assert proj.containers() == {}
        run, res = run_module(args)
        assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
        api = engine.containers.get(proj.containers()["api"][0])
        assert "GREETING=from-override" in api.attrs["Config"]["Env"]
        ports = api.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
        assert [(p["HostIp"], p["HostPort"]) for p in ports] == [("127.0.0.1", str(proj.port))]
        assert api.labels["io.homeiq.deployment-id"] == res["result"]["deployment_id"]
        first = proj.containers()
        run, res = run_module(args, check=True)
        assert res["result"]["changed"] is False, res["result"]["actions"]
        run, res = run_module(args)
        assert res["result"]["changed"] is False, res["result"]["actions"]
        assert proj.containers() == first
    finally:
        proj.cleanup()
