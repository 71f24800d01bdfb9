"""deploy.yml refuses bad rollout settings in its plan play, with one line naming the setting,
before any host is touched or the rollout lock is taken."""
from __future__ import annotations

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("extra, needle", [
    ({"deploy_batch_size": 0}, "deploy_batch_size 0 is not a number of hosts or a percentage"),
    ({"deploy_batch_size": "120%"}, "deploy_batch_size 120% is not a number of hosts or a percentage"),
    ({"deploy_max_fail_percentage": -1}, "deploy_max_fail_percentage -1 is not a percentage"),
    ({"fleet_revert": "maybe"}, "fleet_revert maybe is not true or false"),
    ({"deploy_canary_group": "homeiq_canry"}, "deploy_canary_group homeiq_canry is not a group of the inventory"),
])
def test_bad_rollout_settings_stop_before_anything(playbook, tmp_path, extra, needle):
    ledger = tmp_path / "ledger.sqlite3"
    run = playbook(REPO / "deploy.yml", extra_vars=dict(extra, ledger_path=str(ledger)))
    assert run.rc == 2, run.output[-3000:]
    check = run.task("Check the rollout settings")
    assert check["status"] == "failed", check
    assert needle in check["result"]["msg"] and "\n" not in check["result"]["msg"], check
    assert "Traceback" not in run.output
    # Nothing after the check ran: no lock, no deployment, no ledger.
    assert not [r for r in run.results if r["task"].endswith(("Take the rollout lock", "Run the pipeline"))
                or "pipeline" in r["task"]], [r["task"] for r in run.results]
    assert not ledger.exists()
