"""deploy.yml and rollback.yml on a stack of compose projects (deploy_projects): the domain-shaped demo's
three domains deployed in order from the demo's root, as one deployment with one ledger record, on the
real engine. A failure in one domain rolls back only what the deployment changed there."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import free_port

DEMO = REPO / "examples" / "homeiq-demo"
DEPLOY = REPO / "deploy.yml"
ROLLBACK = REPO / "rollback.yml"
DOMAINS = ["core-platform", "pattern-analysis", "frontends"]
SERVICES = {"core-platform": {"influxdb", "data-api", "websocket-ingestion", "admin-api"},
            "pattern-analysis": {"ai-pattern-service", "ai-automation-service"},
            "frontends": {"health-dashboard"}}
PORT_VARS = ["HOMEIQ_INFLUXDB_PORT", "HOMEIQ_WEBSOCKET_INGESTION_PORT", "HOMEIQ_DATA_API_PORT",
             "HOMEIQ_ADMIN_API_PORT", "HOMEIQ_AI_PATTERN_SERVICE_PORT", "HOMEIQ_AI_AUTOMATION_SERVICE_PORT",
             "HOMEIQ_HEALTH_DASHBOARD_PORT", "HOMEIQ_HA_SIMULATOR_PORT"]


class DemoStack:
    """One throw-away copy of the domain-shaped demo: its own stack name, network, ports, ledger and locks."""

    def __init__(self, engine, tmp_path):
        self.engine = engine
        self.tmp = tmp_path
        self.name = "t" + uuid.uuid4().hex[:8]
        self.network = self.name + "-net"
        self.ports = {v: free_port() for v in PORT_VARS}
        self.projects = {d: f"{self.name}-{d}" for d in DOMAINS}
        # A snapshot of the demo: its build contexts stay as they were for the whole case.
        self.src = tmp_path / "homeiq-demo"
        shutil.copytree(DEMO, self.src)
        self.inventory = tmp_path / "hosts.yml"
        self.inventory.write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))

    def env_file(self, **releases):
        """Interpolation variables of a run (beside the demo's root .env): HOMEIQ_<DOMAIN>_RELEASE=..."""
        path = self.tmp / f"stack-{uuid.uuid4().hex[:6]}.env"
        lines = [f"HOMEIQ_STACK={self.name}", f"HOMEIQ_NETWORK={self.network}"]
        lines += [f"{k}={v}" for k, v in self.ports.items()]
        lines += [f"HOMEIQ_{domain.upper().replace('-', '_')}_RELEASE={release}" for domain, release in releases.items()]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def deploy_projects(self, env_file):
        # Relative to deploy_project_src (the demo's root), as `docker compose -f domains/<d>/compose.yml --env-file .env`
        return [{"name": self.projects[d], "files": [f"domains/{d}/compose.yml"], "env_files": [".env", env_file],
                 "profiles": ["production"]} for d in DOMAINS]

    def vars(self, releases=None, wait_timeout=90):
        """deploy.yml's and rollback.yml's variables; releases: domain -> release (default a)."""
        return {
            "deploy_project_src": str(self.src), "deploy_project_name": self.name,
            "deploy_projects": self.deploy_projects(self.env_file(**(releases or {}))),
            "deploy_lock_dir": str(self.tmp / "locks"), "deploy_wait_timeout": wait_timeout,
            "ledger_path": str(self.tmp / "ledger.sqlite3"), "ledger_project": self.name, "ledger_environment": "test",
            "pipeline_logs_dir": str(self.tmp / "reports"), "verify_report_dir": str(self.tmp / "reports"),
            "pipeline_preflight": False, "pipeline_notify": False, "rollback_notify": False,
            # The stats route of ai-pattern-service (pattern-analysis), which release routebug shadows.
            "verify_functional_checks": [{
                "name": "ai-pattern-service", "url": f"http://127.0.0.1:{self.ports['HOMEIQ_AI_PATTERN_SERVICE_PORT']}/api/v1/synergies/stats",
                "critical": True, "json_query": "total_synergies", "json_equals": 3}],
            "verify_retries": 1, "verify_deadline": 60,
        }

    def containers(self):
        """domain -> service -> (container id, image id, status) as the engine has them."""
        found = {}
        for domain, project in self.projects.items():
            for c in self.engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
                found.setdefault(domain, {})[c.labels["com.docker.compose.service"]] = (c.id, c.attrs["Image"], c.status)
        return found

    def images(self, domain=None):
        """The running image IDs, nested by compose project as the ledger keeps them (one project's if named)."""
        nested = {self.projects[d]: {s: v[1] for s, v in services.items()} for d, services in self.containers().items()}
        return nested.get(self.projects[domain], {}) if domain else nested

    def ledger(self):
        if not (self.tmp / "ledger.sqlite3").exists():
            return {}
        with sqlite3.connect(self.tmp / "ledger.sqlite3") as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM deployments ORDER BY started_at_us")]
        for r in rows:
            r["images"] = json.loads(r["images"]) if r["images"] else None
        return {r["deployment_id"]: r for r in rows}

    def cleanup(self):
        for domain in reversed(DOMAINS):
            subprocess.run(["docker", "compose", "--project-name", self.projects[domain], "down", "--remove-orphans",
                            "--timeout", "1"], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", self.network], capture_output=True, check=False)
        for image in self.engine.images.list():
            for tag in image.tags:
                if tag.startswith(self.name + "-"):
                    try:
                        self.engine.images.remove(tag, force=True)
                    except Exception:  # pylint: disable=broad-except  # already gone with a sibling tag
                        pass


@pytest.fixture
def stack(engine, tmp_path):
    s = DemoStack(engine, tmp_path)
    yield s
    s.cleanup()


def run(playbook, stack, releases=None, playbook_path=DEPLOY, check=False, wait_timeout=90, **extra):
    return playbook(playbook_path, inventory=stack.inventory, check=check,
                    extra_vars=dict(stack.vars(releases, wait_timeout=wait_timeout), **extra))


def deployment_id(result):
    return result.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]


def test_a_stack_deploys_once_changes_nothing_again_and_a_failing_domain_is_rolled_back_alone(stack, playbook):
    # check mode first: the whole stack predicted, nothing created
    result = run(playbook, stack, check=True, pipeline_verify=False)
    assert result.rc == 0, result.output[-5000:]
    summary = result.task("homeiq.deploy.deploy : Summary")["result"]["msg"]
    assert summary[0].startswith(f"{stack.name}: 3 projects, 7 services, 7 changed by deployment ")
    assert summary[0].endswith("(check mode: predicted)")
    assert stack.containers() == {} and not stack.ledger()

    # the first run deploys the three domains, in order, as one deployment with one ledger record
    result = run(playbook, stack)
    assert result.rc == 0, result.output[-5000:]
    first_id = deployment_id(result)
    containers_a = stack.containers()
    assert {d: set(s) for d, s in containers_a.items()} == SERVICES
    assert all(v[2] == "running" for services in containers_a.values() for v in services.values())
    deployed = result.task("Build and deploy with compose_deploy")["result"]
    assert [p["name"] for p in deployed["projects"]] == list(stack.projects.values())
    assert deployed["current_images"] == stack.images()
    summary = result.task("homeiq.deploy.deploy : Summary")["result"]["msg"]
    assert summary[0] == (f"{stack.name}: 3 projects, 7 services, 7 changed by deployment {first_id} "
                          f"(projects changed: {', '.join(stack.projects.values())})")
    assert [line for line in summary if line.startswith("[")] == [
        f"[{stack.projects['core-platform']}] 4 services, changed", f"[{stack.projects['pattern-analysis']}] 2 services, changed",
        f"[{stack.projects['frontends']}] 1 services, changed"]
    rows = stack.ledger()
    assert list(rows) == [first_id]
    row = rows[first_id]
    assert (row["kind"], row["status"], row["project"], row["services_count"]) == ("deploy", "success", stack.name, 7)
    assert row["images"] == stack.images()

    # check mode and a second run: nothing to change, no container recreated
    result = run(playbook, stack, check=True)
    assert result.rc == 0, result.output[-5000:]
    predicted = result.task("Build and deploy with compose_deploy")["result"]
    assert predicted["changed"] is False, predicted["actions"]
    result = run(playbook, stack)
    assert result.rc == 0, result.output[-5000:]
    second_id = deployment_id(result)
    assert result.task("Build and deploy with compose_deploy")["result"]["changed"] is False
    assert result.task("homeiq.deploy.deploy : Summary")["result"]["msg"][0] == f"{stack.name}: 3 projects, 7 services, nothing to change"
    assert stack.containers() == containers_a
    assert stack.ledger()[second_id]["images"] == stack.images() and stack.ledger()[second_id]["services_count"] == 7

    # pattern-analysis gets the route-order bug: it deploys healthy, verify finds the stats route shadowed,
    # and only pattern-analysis goes back; the other domains' containers are never touched
    result = run(playbook, stack, {"pattern-analysis": "routebug"})
    assert result.rc != 0
    failed_id = deployment_id(result)
    msg = result.task("Stop here, the deployment failed")["result"]["msg"]
    assert f"Deployment {failed_id} failed at verify" in msg and "ai-pattern-service" in msg, msg
    assert "rolled back to the previous images" in msg and "verified healthy" in msg, msg
    assert result.task("Build and deploy with compose_deploy")["result"]["changed"] is True
    after = stack.containers()
    assert after["core-platform"] == containers_a["core-platform"]
    assert after["frontends"] == containers_a["frontends"]
    assert stack.images("pattern-analysis") == {s: v[1] for s, v in containers_a["pattern-analysis"].items()}
    assert all(v[2] == "running" for v in after["pattern-analysis"].values())
    restored = result.task("Restore exact images")["result"]
    assert [p["name"] for p in restored["projects"]] == [stack.projects["pattern-analysis"]]
    # the failing service's log, read from its own project (pattern-analysis) before the rollback
    logs = result.task("Keep the log paths")["result"]["ansible_facts"]["pipeline_log_files"]
    assert logs == [str(stack.tmp / "reports" / f"{failed_id}-{stack.projects['pattern-analysis']}-ai-pattern-service.log")]
    text = Path(logs[0]).read_text()
    assert "Uvicorn running on" in text and "no such service" not in text, text
    # ledger: the deployment rolled back, the rollback recorded against it with the images it restored
    rows = stack.ledger()
    assert rows[failed_id]["status"] == "rolled_back"
    rollbacks = [r for r in rows.values() if r["kind"] == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["rollback_of"] == failed_id and rollbacks[0]["status"] == "success"
    assert rollbacks[0]["images"] == {stack.projects["pattern-analysis"]: stack.images("pattern-analysis")}
    assert f"in {stack.projects['pattern-analysis']}" in rollbacks[0]["notes"]


def test_a_failed_domain_deploy_stops_the_stack_and_rollback_yml_restores_from_the_ledger(stack, playbook):
    result = run(playbook, stack, pipeline_verify=False)
    assert result.rc == 0, result.output[-5000:]
    id_a = deployment_id(result)
    images_a = stack.images()
    result = run(playbook, stack, {"pattern-analysis": "b"}, pipeline_verify=False)
    assert result.rc == 0, result.output[-5000:]
    id_b = deployment_id(result)
    images_b = stack.images()
    pattern = stack.projects["pattern-analysis"]
    assert images_b[pattern] != images_a[pattern]
    assert {p: i for p, i in images_b.items() if p != pattern} == {p: i for p, i in images_a.items() if p != pattern}
    assert stack.ledger()[id_b]["images"] == images_b
    before = stack.containers()

    # core-platform (first in the stack) turns unhealthy: the stack stops there, the later domains are not
    # started, and core-platform alone goes back onto its previous images
    result = run(playbook, stack, {"core-platform": "unhealthy", "pattern-analysis": "b"}, pipeline_verify=False, wait_timeout=60)
    assert result.rc != 0
    failed_id = deployment_id(result)
    msg = result.task("Stop here, the deployment failed")["result"]["msg"]
    assert f"Deployment {failed_id} failed at deploy" in msg and "data-api" in msg, msg
    assert f"stack stopped at project {stack.projects['core-platform']}" in msg, msg
    assert "rolled back to the previous images" in msg, msg
    after = stack.containers()
    assert after["pattern-analysis"] == before["pattern-analysis"] and after["frontends"] == before["frontends"]
    assert stack.images("core-platform") == images_b[stack.projects["core-platform"]]
    assert all(v[2] == "running" for v in after["core-platform"].values())
    logs = result.task("Keep the log paths")["result"]["ansible_facts"]["pipeline_log_files"]
    assert str(stack.tmp / "reports" / f"{failed_id}-{stack.projects['core-platform']}-data-api.log") in logs
    assert all(Path(p).read_text().strip() for p in logs)
    rows = stack.ledger()
    assert rows[failed_id]["status"] == "rolled_back"
    [rollback] = [r for r in rows.values() if r["kind"] == "rollback"]
    assert rollback["rollback_of"] == failed_id and rollback["images"] == {stack.projects["core-platform"]: images_b[stack.projects["core-platform"]]}

    # images that do not fit the settings: one clear line, nothing changed
    before = stack.containers()
    single = dict(stack.vars({"pattern-analysis": "b"}), deploy_projects=[], rollback_to=id_a, rollback_verify=False)
    result = playbook(ROLLBACK, inventory=stack.inventory, extra_vars=single)
    assert result.rc != 0 and "Traceback" not in result.output
    assert "the images are a stack's, nested by compose project" in result.output, result.output[-3000:]
    assert stack.containers() == before

    # rollback.yml to deployment A by id: pattern-analysis goes back to A's images, the rest is left alone
    result = run(playbook, stack, {"pattern-analysis": "b"}, playbook_path=ROLLBACK, rollback_to=id_a)
    assert result.rc == 0, result.output[-5000:]
    assert stack.images() == images_a
    after = stack.containers()
    assert after["core-platform"] == before["core-platform"] and after["frontends"] == before["frontends"]
    restored = result.task("Restore exact images")["result"]
    assert restored["changed"] is True
    # and by tag, to B's deployment id: back onto B
    result = run(playbook, stack, {"pattern-analysis": "b"}, playbook_path=ROLLBACK, rollback_tag=id_b)
    assert result.rc == 0, result.output[-5000:]
    assert stack.images() == images_b
    # each manual rollback recorded with the projects it restored, from the ledger's nested images
    rows = [r for r in stack.ledger().values() if r["kind"] == "rollback"]
    assert [r["status"] for r in rows] == ["success"] * 3
    by_id, by_tag = rows[1], rows[2]
    assert by_id["notes"].startswith(f"deployment {id_a} in {', '.join(stack.projects.values())}"), by_id["notes"]
    assert by_id["images"] == images_a
    assert by_tag["notes"].startswith(f"tag {id_b} in "), by_tag["notes"]
    assert by_tag["images"][pattern] == images_b[pattern]
