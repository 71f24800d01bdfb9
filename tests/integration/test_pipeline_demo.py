"""deploy.yml with every phase on the demo stack: preflight, ledger, deploy, verify, notify, automatic rollback."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.integration.conftest import ComposeProject, free_port
from tests.integration.test_pipeline import images_running, ledger_rows

DEMO = REPO / "examples" / "homeiq-demo"
PORT_VARS = ["HOMEIQ_INFLUXDB_PORT", "HOMEIQ_WEBSOCKET_INGESTION_PORT", "HOMEIQ_DATA_API_PORT",
             "HOMEIQ_ADMIN_API_PORT", "HOMEIQ_AI_PATTERN_SERVICE_PORT", "HOMEIQ_AI_AUTOMATION_SERVICE_PORT",
             "HOMEIQ_HEALTH_DASHBOARD_PORT"]


@pytest.fixture
def demo(engine, tmp_path):
    proj = ComposeProject(engine, tmp_path, src=DEMO)
    proj.ports = {v: free_port() for v in PORT_VARS}
    yield proj
    proj.cleanup()


def run_deploy(playbook, demo, release, receiver, slack_url):
    env_file = demo.tmp / f"{release}.env"
    env_file.write_text(f"HOMEIQ_RELEASE={release}\nHOMEIQ_HEALTHCHECK_INTERVAL=1s\n"
                        + "".join(f"{k}={v}\n" for k, v in demo.ports.items()))
    extra = {
        "deploy_project_name": demo.name, "deploy_env_files": [str(env_file)],
        "deploy_lock_dir": str(demo.lock_dir), "deploy_wait_timeout": 120,
        "ledger_path": str(demo.tmp / "ledger.sqlite3"), "ledger_project": demo.name,
        "verify_report_dir": str(demo.tmp / "reports"), "pipeline_logs_dir": str(demo.tmp / "reports"),
        "notify_webhook_url": f"http://127.0.0.1:{receiver.port}/hooks/deploy-secret-path",
        "notify_slack_webhook_url": slack_url,
        "pipeline_commit": "0123456789abcdef0123456789abcdef01234567", "pipeline_branch": "main",
    }
    # verify's catalogue of the local inventory reads the ports from the environment, as compose does
    return playbook(REPO / "deploy.yml", extra_vars=extra, env={k: str(v) for k, v in demo.ports.items()})


def test_routebug_release_is_caught_by_verify_and_rolled_back(demo, playbook, receiver):
    slack = f"http://127.0.0.1:{receiver.port}/services/T000/B000/slack-secret"
    run = run_deploy(playbook, demo, "a", receiver, slack)
    assert run.rc == 0, run.output[-5000:]
    images_a = images_running(demo)
    first = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]
    hook = receiver.payloads("/hooks/deploy-secret-path")[-1]
    assert hook["deployment_id"] == first and hook["status"] == "success" and hook["branch"] == "main"
    # A rollout of one host: that host's notification says it all, no rollout summary follows.
    assert len(receiver.payloads("/hooks/deploy-secret-path")) == 1 and hook["rollout"] is None
    assert receiver.payloads("/services/T000/B000/slack-secret")[-1]["attachments"][0]["color"] == "good"

    # the route-order bug: deploy succeeds, verify finds /stats shadowed, the stack goes back to A.
    # Slack is down this time: the deployment's own outcome must not change.
    closed = free_port()
    run = run_deploy(playbook, demo, "routebug", receiver, f"http://127.0.0.1:{closed}/services/T000/B000/down")
    assert run.rc != 0
    failed = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]
    msg = run.task("Stop here, the deployment failed")["result"]["msg"]
    assert f"Deployment {failed} failed at verify" in msg
    assert "ai-pattern-service" in msg
    assert "rolled back to the previous images" in msg and "verified healthy" in msg
    assert "Report: " + str(demo.tmp / "reports") in msg
    assert images_running(demo) == images_a
    rows = ledger_rows(demo)
    assert rows[failed]["status"] == "rolled_back"
    assert [r["rollback_of"] for r in rows.values() if r["kind"] == "rollback"] == [failed]
    hook = receiver.payloads("/hooks/deploy-secret-path")[-1]
    assert hook["deployment_id"] == failed and hook["status"] == "rolled_back"
    assert hook["failing_checks"]
    assert "slack" in run.output.lower() and "deploy-secret-path" not in run.output and "slack-secret" not in run.output
