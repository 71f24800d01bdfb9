"""deploy.yml on the bundled demo stack, as an operator runs it, on the real engine."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.integration.conftest import ComposeProject, free_port

DEMO = REPO / "examples" / "homeiq-demo"
PORT_VARS = ["HOMEIQ_INFLUXDB_PORT", "HOMEIQ_WEBSOCKET_INGESTION_PORT", "HOMEIQ_DATA_API_PORT",
             "HOMEIQ_ADMIN_API_PORT", "HOMEIQ_AI_PATTERN_SERVICE_PORT", "HOMEIQ_AI_AUTOMATION_SERVICE_PORT",
             "HOMEIQ_HEALTH_DASHBOARD_PORT"]


@pytest.fixture
def demo(engine, tmp_path):
    proj = ComposeProject(engine, tmp_path, src=DEMO)
    yield proj
    proj.cleanup()


def demo_vars(demo, release="a"):
    """deploy.yml's variables for a copy of the demo on free ports; the ports also go into the
    environment, where the local inventory's verify catalogue reads them (as Compose does)."""
    demo.ports = getattr(demo, "ports", None) or {v: free_port() for v in PORT_VARS}
    env = demo.tmp / f"demo-{release}.env"
    env.write_text(f"HOMEIQ_RELEASE={release}\n" + "".join(f"{k}={p}\n" for k, p in demo.ports.items()))
    return {"deploy_project_name": demo.name, "deploy_env_files": [str(env)],
            "deploy_lock_dir": str(demo.tmp / "locks"), "deploy_wait_timeout": 90,
            "ledger_path": str(demo.tmp / "ledger.sqlite3"), "ledger_project": demo.name,
            "verify_report_dir": str(demo.tmp / "reports"), "pipeline_logs_dir": str(demo.tmp / "reports")}


def deploy(playbook, demo, extra, **kw):
    return playbook(REPO / "deploy.yml", extra_vars=extra, env={k: str(p) for k, p in demo.ports.items()}, **kw)


def test_deploy_playbook_first_and_second_run(demo, playbook):
    extra = demo_vars(demo)
    run = deploy(playbook, demo, extra)
    assert run.rc == 0, run.output
    summary = run.task("homeiq.deploy.deploy : Summary")["result"]["msg"]
    assert summary[0].startswith(f"{demo.name}: 7 services, 7 changed by deployment deploy-")
    assert len(summary) == 8 and all("healthy" in line for line in summary[1:])
    first = demo.containers()
    assert len(first) == 7 and {c[2] for c in first.values()} == {"running"}
    deployment_id = run.task("Build and deploy with compose_deploy")["result"]["deployment_id"]
    assert {c[3]["io.homeiq.deployment-id"] for c in first.values()} == {deployment_id}

    # the same definition again: nothing changes and no container is recreated
    run = deploy(playbook, demo, extra)
    assert run.rc == 0, run.output
    assert run.task("Build and deploy with compose_deploy")["result"]["changed"] is False
    assert run.task("homeiq.deploy.deploy : Summary")["result"]["msg"][0] == f"{demo.name}: 7 services, nothing to change"
    final = run.task("homeiq.deploy.pipeline : Summary")["result"]["msg"]
    assert "changed nothing, verified (" in final[0] and "recorded in the ledger" in final[0] and len(final) == 8
    assert demo.containers() == first


def test_deploy_playbook_check_mode_touches_nothing(demo, playbook):
    images_before = demo.images()
    extra = demo_vars(demo)
    run = deploy(playbook, demo, dict(extra, pipeline_verify=False), check=True)   # nothing runs to verify
    assert run.rc == 0, run.output
    assert run.task("homeiq.deploy.deploy : Summary")["result"]["msg"][0].endswith("(check mode: predicted)")
    assert demo.containers() == {} and demo.images() == images_before


def test_deploy_playbook_failure_names_the_deployment_and_keeps_the_snapshot(demo, playbook):
    extra = demo_vars(demo)
    assert deploy(playbook, demo, extra).rc == 0
    before = demo.containers()
    env = extra["deploy_env_files"][0]
    with open(env, "a") as fh:
        fh.write("HOMEIQ_RELEASE=buildfail\n")
    run = deploy(playbook, demo, extra)
    assert run.rc != 0
    facts = run.task("Keep what a rollback needs from the failed deployment")["result"]["ansible_facts"]
    assert facts["deploy_failed"] is True
    assert facts["deploy_previous_images"] == {s: c[1] for s, c in before.items()}
    assert "build failed, nothing was deployed" in run.task("Stop here, the deployment failed")["result"]["msg"]
    assert demo.containers() == before
    assert "Traceback" not in run.output
