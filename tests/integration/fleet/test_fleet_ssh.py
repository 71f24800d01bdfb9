"""deploy.yml over real SSH to three test hosts (network namespaces, scripts/test-hosts), each
deploying the demo stack as its own compose project on the shared engine."""
from __future__ import annotations

import json
import shutil

from ansible_collections.homeiq.deploy.plugins.module_utils import _rollout_lock as RL

from tests.conftest import REPO

DEMO = REPO / "examples" / "homeiq-demo"
RELEASES = DEMO / "releases"
PROD_ROLLOUT = REPO / "inventories" / "prod" / "group_vars" / "all" / "rollout.yml"


def release_vars(release, **extra):
    """Extra vars deploying `release` on every host: its own ports file, then the release's."""
    extra_vars = {"deploy_env_files": ["{{ test_host_env_file }}", str(RELEASES / f"{release}.env")]}
    extra_vars.update(extra)
    return extra_vars


def assert_runs_healthy(fleet, engine, name, release):
    host = fleet.host(name)
    containers = fleet.containers(engine, name)
    assert len(containers) == 7, (name, sorted(containers))
    for service, c in containers.items():
        state = c.attrs["State"]
        assert state["Status"] == "running", (name, service, state["Status"])
        assert state["Health"]["Status"] == "healthy", (name, service, state["Health"]["Status"])
        assert c.image.labels["org.opencontainers.image.version"] == release, (name, service)
    # The host reaches its own stack on its own loopback, as a real host would.
    code, body = host.get("HOMEIQ_DATA_API_PORT")
    assert code == 200, (name, code, body)
    assert json.loads(body)["release"] == release
    code, _body = host.get("HOMEIQ_HEALTH_DASHBOARD_PORT")
    assert code == 200


def image_ids(fleet, engine, name):
    return {service: c.image.id for service, c in fleet.containers(engine, name).items()}


def container_ids(fleet, engine, name):
    return {service: c.id for service, c in fleet.containers(engine, name).items()}


def summary(run):
    """The rollout's outcome as deploy.yml publishes it (set_stats homeiq_rollout)."""
    return run.task("Publish the rollout")["result"]["ansible_stats"]["data"]["homeiq_rollout"]


HOOK = "/hooks/fleet-secret-path"


def announced(receiver):
    """The webhook's payloads: each host's own, then the one for the whole rollout, which must
    come last and only once."""
    payloads = receiver.payloads(HOOK)
    assert payloads and payloads[-1]["rollout"] is not None, payloads
    assert all(p["rollout"] is None for p in payloads[:-1]), payloads
    return payloads[:-1], payloads[-1]


def lock_holders(fleet):
    return fleet.ledger.execute("SELECT scope, rollout_id FROM rollout_locks")


def first_index(run, host, task):
    return next(i for i, r in enumerate(run.results) if r["host"] == host and r["task"].endswith(" : " + task))


def last_index(run, host, task):
    return max(i for i, r in enumerate(run.results) if r["host"] == host and r["task"].endswith(" : " + task))


def test_host_unreachable_at_the_start(fleet, engine, playbook):
    """h3's sshd is stopped before the run: the plan leaves h3 out as unreachable and nothing changes
    on it; h1 and h2 are deployed and recorded in the shared PostgreSQL ledger; the summary names
    h3 unreachable. (ansible-core counts no unreachable host toward a failure threshold; the rollout
    plans around it instead: docs/fleet.md.)"""
    h3_before = container_ids(fleet, engine, "h3")
    fleet.stop_ssh("h3")
    run = playbook(REPO / "deploy.yml", inventory=fleet.inventory,
                   extra_vars=release_vars("a", deploy_batch_size="100%", deploy_max_fail_percentage=0))
    # ansible-playbook's exit code for a run with an unreachable host and no failed one.
    assert run.rc == 4, run.output[-6000:]
    recap = {ln.split()[0]: ln for ln in run.stdout.splitlines() if "unreachable=" in ln and ln[:1] == "h"}
    assert "unreachable=1" in recap["h3"], recap
    assert "unreachable=0" in recap["h1"] and "failed=0" in recap["h1"], recap
    assert "unreachable=0" in recap["h2"] and "failed=0" in recap["h2"], recap
    # h3's first task (reaching every host) finds it unreachable; nothing runs there after it.
    h3 = [r["status"] for r in run.results if r["host"] == "h3"]
    assert h3 == ["unreachable"], h3
    for name in ("h1", "h2"):
        assert_runs_healthy(fleet, engine, name, "a")
    assert container_ids(fleet, engine, "h3") == h3_before
    outcome = summary(run)
    assert outcome["status"] == "completed_with_failures" and outcome["unreachable"] == ["h3"], outcome
    assert sorted(outcome["updated"] + outcome["unchanged"]) == ["h1", "h2"] and not outcome["failed"], outcome
    rollout = outcome["deployment_id"]
    rows = fleet.records("deployment_id LIKE %s", (rollout + ".%",))
    assert sorted((r["deployment_id"], r["host"], r["status"]) for r in rows) == [
        (f"{rollout}.h1", "h1", "success"), (f"{rollout}.h2", "h2", "success")], rows
    assert all(r["environment"] == "fleet-test" for r in rows)
    assert lock_holders(fleet) == []


def test_clean_rollout_canary_then_batches(fleet, engine, playbook, receiver):
    """Every host reachable; the canary h1 alone first, then batches of two (h2 and h3); all
    healthy, one rollout id with one ledger record per host, the lock released, and one
    notification for the rollout after each host's own."""
    run = playbook(REPO / "deploy.yml", inventory=fleet.inventory,
                   extra_vars=release_vars("a", deploy_canary_group="homeiq_canary", deploy_batch_size=2,
                                           deploy_max_fail_percentage=0,
                                           notify_webhook_url=f"http://127.0.0.1:{receiver.port}{HOOK}"))
    assert run.rc == 0, run.output[-6000:]
    for name in ("h1", "h2", "h3"):
        assert_runs_healthy(fleet, engine, name, "a")
    outcome = summary(run)
    assert outcome["batches"] == [["h1"], ["h2", "h3"]], outcome
    assert outcome["status"] == "success" and sorted(outcome["updated"] + outcome["unchanged"]) == ["h1", "h2", "h3"]
    # The second batch starts only after the canary is deployed, verified and recorded.
    canary_done = last_index(run, "h1", "Record and announce the success")
    assert min(first_index(run, h, "Identify the release") for h in ("h2", "h3")) > canary_done
    # Every host deployed its own project, none another's, under the rollout's id.
    rollout = outcome["deployment_id"]
    for name in ("h1", "h2", "h3"):
        ids = {c.labels["io.homeiq.deployment-id"] for c in fleet.containers(engine, name).values()}
        assert len(ids) == 1, (name, ids)
    rows = fleet.records("deployment_id LIKE %s", (rollout + ".%",))
    assert sorted((r["deployment_id"], r["status"]) for r in rows) == [
        (f"{rollout}.{h}", "success") for h in ("h1", "h2", "h3")], rows
    for line in ("h1 ", "h2 ", "h3 "):
        recap = next(ln for ln in run.stdout.splitlines() if ln.startswith(line) and "unreachable=" in ln)
        assert "failed=0" in recap and "unreachable=0" in recap, recap
    assert "Rollout %s: success" % rollout in run.stdout
    hosts, fleet_wide = announced(receiver)
    assert sorted((p["deployment_id"], p["status"], p["host"]) for p in hosts) == [
        (f"{rollout}.{h}", "success", h) for h in ("h1", "h2", "h3")], hosts
    assert fleet_wide["status"] == "success" and fleet_wide["rollout"]["status"] == "success", fleet_wide
    assert sorted(fleet_wide["rollout"]["updated"] + fleet_wide["rollout"]["unchanged"]) == ["h1", "h2", "h3"]
    assert fleet_wide["rollout"]["batches"] == [["h1"], ["h2", "h3"]]
    assert fleet_wide["commit"] == hosts[0]["commit"] and fleet_wide["environment"] == "fleet-test"
    # The environment's metrics over the shared ledger, every host counted.
    assert "ledger, fleet-test, last 30 days: " in run.stdout
    assert lock_holders(fleet) == []


def test_breached_threshold_reverts_the_fleet(fleet, engine, playbook, tmp_path, receiver):
    """Release b over the fleet on release a, h2's verification failing (the routebug release):
    the canary h1 is updated, h2 fails and rolls itself back, the threshold (0 %) is breached, h3's
    batch never starts, and h1 is reverted to a's exact images, verified, and recorded."""
    run = playbook(REPO / "deploy.yml", inventory=fleet.inventory, extra_vars=release_vars("a"))
    assert run.rc == 0, run.output[-6000:]
    before = {name: image_ids(fleet, engine, name) for name in ("h1", "h2", "h3")}
    h3_containers = container_ids(fleet, engine, "h3")
    bad = str(RELEASES / "routebug.env")
    good = str(RELEASES / "b.env")
    # The rollout settings come from prod's own rollout.yml (canary group first, 25 % of three
    # hosts = batches of one, threshold 0 %, fleet_revert), read from the inventory.
    inventory = tmp_path / "inventory"
    shutil.copytree(fleet.inventory.parent, inventory)
    shutil.copy(PROD_ROLLOUT, inventory / "group_vars" / "all" / "zz_rollout.yml")
    run = playbook(REPO / "deploy.yml", inventory=inventory / "hosts.yml", extra_vars={
        "deploy_env_files": ["{{ test_host_env_file }}", "{{ %r if inventory_hostname == 'h2' else %r }}" % (bad, good)],
        "notify_webhook_url": f"http://127.0.0.1:{receiver.port}{HOOK}"})
    assert run.rc == 2, run.output[-6000:]
    outcome = summary(run)
    rollout = outcome["deployment_id"]
    assert outcome["status"] == "reverted", outcome
    assert outcome["stopped"]["batch"] == 2 and outcome["stopped"]["failed"] == ["h2"], outcome
    assert outcome["reverted"] == ["h1"] and outcome["failed"] == {"h2": "rolled_back"}, outcome
    assert outcome["not_started"] == ["h3"] and not outcome["updated"], outcome
    # h3's batch never started: no task of the batch play ran there, nothing changed.
    assert not [r for r in run.results if r["host"] == "h3" and "pipeline" in r["task"]]
    assert container_ids(fleet, engine, "h3") == h3_containers
    # The whole fleet is back on a, with a's exact images.
    for name in ("h1", "h2", "h3"):
        assert_runs_healthy(fleet, engine, name, "a")
        assert image_ids(fleet, engine, name) == before[name], name
    # h2 fails the run with the pipeline's message, after the fleet was settled.
    msg = run.task("Stop here, the deployment failed", host="h2")["result"]["msg"]
    assert msg.startswith(f"Deployment {rollout}.h2 failed at verify") and "rolled back" in msg, msg
    # The ledger tells it all.
    rows = {r["deployment_id"]: r for r in fleet.records("deployment_id LIKE %s", (rollout + "%",))}
    assert rows[f"{rollout}.h1"]["status"] == "rolled_back"
    revert = rows[f"{rollout}-revert.h1"]
    assert (revert["kind"], revert["status"], revert["rollback_of"], revert["host"]) == (
        "rollback", "success", f"{rollout}.h1", "h1"), revert
    assert f"fleet revert: rollout {rollout} stopped at batch 2, where h2 failed" in revert["notes"]
    assert rows[f"{rollout}.h2"]["status"] == "rolled_back"
    own = fleet.records("kind = 'rollback' AND rollback_of = %s", (f"{rollout}.h2",))
    assert len(own) == 1 and own[0]["status"] == "success", own
    assert not [r for r in rows.values() if r["host"] == "h3"], rows
    assert "reverted to their previous images: h1" in run.stdout and "not started: h3" in run.stdout
    assert lock_holders(fleet) == []
    # Each host said what happened to it (h1 twice: its deployment, then its revert), nothing
    # came from h3, and one notification for the whole rollout came last.
    hosts, fleet_wide = announced(receiver)
    assert sorted((p["deployment_id"], p["status"], p["host"]) for p in hosts) == [
        (f"{rollout}-revert.h1", "success", "h1"), (f"{rollout}.h1", "success", "h1"),
        (f"{rollout}.h2", "rolled_back", "h2")], hosts
    assert (fleet_wide["deployment_id"], fleet_wide["status"], fleet_wide["host"]) == (rollout, "rolled_back", None)
    assert fleet_wide["rollout"] == outcome, (fleet_wide, outcome)


def test_second_rollout_refused_while_one_holds_the_lock(fleet, engine, playbook):
    """Another rollout of the environment holds the fleet-wide lock in the shared ledger: deploy.yml
    stops before any host is touched, with one line naming the holder and how to take over; naming
    it with rollout_lock_takeover then takes the lock over."""
    held = RL.run({"backend": "postgres", "dsn": fleet.ledger.dsn, "scope": "fleet-test/homeiq",
                   "rollout_id": "deploy-20261127-000000-othr", "owner": {"controller": "awx-job-77", "pid": 12}})
    assert held["acquired"], held
    try:
        before = {name: container_ids(fleet, engine, name) for name in ("h1", "h2", "h3")}
        records = len(fleet.records())
        run = playbook(REPO / "deploy.yml", inventory=fleet.inventory, extra_vars=release_vars("b"))
        assert run.rc == 2, run.output[-6000:]
        msg = run.task("Take the rollout lock")["result"]["msg"]
        assert "rollout deploy-20261127-000000-othr holds the lock of fleet-test/homeiq" in msg and "\n" not in msg, msg
        assert "controller awx-job-77" in msg and "-e rollout_lock_takeover=deploy-20261127-000000-othr" in msg
        assert "Traceback" not in run.output
        assert not [r for r in run.results if "pipeline" in r["task"]]
        assert {name: container_ids(fleet, engine, name) for name in ("h1", "h2", "h3")} == before
        assert len(fleet.records()) == records
        assert lock_holders(fleet) == [("fleet-test/homeiq", "deploy-20261127-000000-othr")]
        # Once the operator knows that rollout is over, naming it takes the lock over.
        run = playbook(REPO / "deploy.yml", inventory=fleet.inventory,
                       extra_vars=release_vars("a", rollout_lock_takeover="deploy-20261127-000000-othr"))
        assert run.rc == 0, run.output[-6000:]
        assert "took over the rollout lock of fleet-test/homeiq from rollout deploy-20261127-000000-othr" in run.output
        assert summary(run)["status"] == "success" and lock_holders(fleet) == []
    finally:
        fleet.ledger.execute("DELETE FROM rollout_locks")


def test_rollback_to_a_rollout_id(fleet, engine, playbook):
    """rollback.yml with the id of an earlier rollout: each host goes back to its own record of it
    (<id>.<host>); a host given another host's record is refused in one line, and nothing changes."""
    run = playbook(REPO / "deploy.yml", inventory=fleet.inventory, extra_vars=release_vars("a"))
    assert run.rc == 0, run.output[-6000:]
    rollout_a = summary(run)["deployment_id"]
    images_a = {name: image_ids(fleet, engine, name) for name in ("h1", "h2", "h3")}
    run = playbook(REPO / "deploy.yml", inventory=fleet.inventory, extra_vars=release_vars("b"))
    assert run.rc == 0, run.output[-6000:]
    for name in ("h1", "h2", "h3"):
        assert_runs_healthy(fleet, engine, name, "b")
    on_b = container_ids(fleet, engine, "h1")
    # Another host's record: refused before anything is recorded or touched.
    run = playbook(REPO / "rollback.yml", inventory=fleet.inventory, args=("--limit", "h1"),
                   extra_vars=release_vars("b", rollback_to=f"{rollout_a}.h2"))
    assert run.rc == 2, run.output[-6000:]
    msg = run.task("Check that the target exists, has images and ran on this host")["result"]["msg"]
    assert msg == f"deployment {rollout_a}.h2 ran on h2, not on h1: give the rollout id, or a deployment of this host; nothing was changed", msg
    assert container_ids(fleet, engine, "h1") == on_b
    # The rollout id: every host back on its own images of release a, verified and recorded.
    run = playbook(REPO / "rollback.yml", inventory=fleet.inventory, extra_vars=release_vars("a", rollback_to=rollout_a))
    assert run.rc == 0, run.output[-6000:]
    for name in ("h1", "h2", "h3"):
        assert_runs_healthy(fleet, engine, name, "a")
        assert image_ids(fleet, engine, name) == images_a[name], name
    rows = fleet.records("kind = 'rollback' AND notes = %s", (f"deployment {rollout_a}",))
    assert sorted((r["host"], r["status"]) for r in rows) == [("h1", "success"), ("h2", "success"), ("h3", "success")], rows
