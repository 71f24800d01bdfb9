"""rollout_lock's module layer: arguments in, one result or one clear failure out."""
from __future__ import annotations

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import rollout_lock
from module_runner import Exit, Fail, module_calls  # noqa: F401  pylint: disable=unused-import


def run(args):
    with patch_module_args(args):
        rollout_lock.main()


def test_acquire_refuse_release(module_calls, tmp_path):
    base = {"path": str(tmp_path / "l.sqlite3"), "scope": "prod/homeiq"}
    with pytest.raises(Exit) as info:
        run(dict(base, rollout_id="deploy-1", owner={"controller": "c1"}))
    assert info.value.args[0]["acquired"] and info.value.args[0]["changed"]
    with pytest.raises(Exit) as info:
        run(dict(base, rollout_id="deploy-2"))
    held = info.value.args[0]
    assert held["acquired"] is False and held["holder"]["rollout_id"] == "deploy-1" and held["holder"]["owner"] == {"controller": "c1"}
    with pytest.raises(Exit) as info:
        run(dict(base, rollout_id="deploy-1", state="released"))
    assert info.value.args[0]["released"] and info.value.args[0]["holder"] is None


def test_check_mode_writes_nothing(module_calls, tmp_path):
    path = tmp_path / "l.sqlite3"
    with pytest.raises(Exit) as info:
        run({"path": str(path), "scope": "prod/homeiq", "rollout_id": "deploy-1", "_ansible_check_mode": True})
    assert info.value.args[0]["acquired"] and not path.exists()


@pytest.mark.parametrize("args, needle", [
    ({"scope": "prod/homeiq", "ttl": 10, "rollout_id": "deploy-1"}, "ttl must be a whole number of seconds of at least 60"),
    ({"scope": "prod/homeiq"}, "state is acquired but all of the following are missing: rollout_id"),
    ({"scope": "prod/homeiq", "rollout_id": "deploy-1", "backend": "postgres"}, "backend is postgres but all of the following are missing: dsn"),
    ({"scope": " ", "rollout_id": "deploy-1"}, "is not a valid lock scope"),
])
def test_bad_input_is_one_line(module_calls, tmp_path, args, needle):
    with pytest.raises(Fail) as info:
        run(dict(args, path=str(tmp_path / "l.sqlite3")))
    msg = info.value.args[0]["msg"]
    assert needle in msg and "\n" not in msg, msg
    assert not (tmp_path / "l.sqlite3").exists()


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(rollout_lock.DOCUMENTATION)
    assert set(doc["options"]) == {"scope", "rollout_id", "state", "ttl", "takeover", "owner"}
    assert doc["options"]["ttl"]["default"] == 21600 and doc["options"]["state"]["default"] == "acquired"
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert yaml.safe_load(rollout_lock.RETURN)["holder"]["contains"].keys() >= {"rollout_id", "owner", "expires_at"}
