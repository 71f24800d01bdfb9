"""deploy_ledger and deploy_ledger_info as modules: arguments in, one result or one clear failure out."""
from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import deploy_ledger, deploy_ledger_info

IMAGE = "sha256:" + "c" * 64


class Exit(Exception):
    pass


class Fail(Exception):
    pass


@pytest.fixture
def run(monkeypatch):
    def exit_json(self, **kw):
        raise Exit(kw)

    def fail_json(self, **kw):
        raise Fail(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def _run(module, args):
        with patch_module_args(args):
            try:
                module.main()
            except (Exit, Fail) as exc:
                return type(exc), exc.args[0]
        raise AssertionError("the module neither exited nor failed")
    return _run


def test_record_then_read(run, tmp_path):
    path = str(tmp_path / "l.sqlite3")
    args = {"path": path, "deployment_id": "deploy-20261126-231500", "status": "success", "images": {"web": IMAGE},
            "environment": "prod", "_ansible_check_mode": True}
    kind, result = run(deploy_ledger, args)
    assert kind is Exit and result["changed"] and "diff" not in result
    kind, result = run(deploy_ledger, dict(args, _ansible_check_mode=False, _ansible_diff=True))
    assert kind is Exit and result["changed"] and result["record"]["images"] == {"web": IMAGE}
    assert result["diff"]["before"] == {} and result["diff"]["after"]["status"] == "success"
    kind, result = run(deploy_ledger, dict(args, _ansible_check_mode=False))
    assert kind is Exit and not result["changed"]
    kind, result = run(deploy_ledger_info, {"path": path, "query": "metrics"})
    assert kind is Exit and result["metrics"]["total"] == 1 and result["metrics"]["success_rate"] == 1.0
    kind, result = run(deploy_ledger_info, {"path": path, "query": "last_success"})
    assert result["deployment"]["deployment_id"] == "deploy-20261126-231500"
    assert result["deployments"] == [result["deployment"]]


def test_bad_image_fails_with_one_line(run, tmp_path):
    kind, result = run(deploy_ledger, {"path": str(tmp_path / "l.sqlite3"), "deployment_id": "deploy-1",
                                       "images": {"web": "homeiq/web:latest"}})
    assert kind is Fail and "not a full image ID" in result["msg"] and "\n" not in result["msg"]
    assert not (tmp_path / "l.sqlite3").exists()


def test_deployment_id_or_import_from_is_required(run, tmp_path):
    kind, result = run(deploy_ledger, {"path": str(tmp_path / "l.sqlite3")})
    assert kind is Fail and "deployment_id" in result["msg"]


def test_postgres_needs_a_dsn_and_never_shows_it(run):
    kind, result = run(deploy_ledger_info, {"backend": "postgres"})
    assert kind is Fail and "dsn" in result["msg"]
    secret = "s3cr3t-Pa55"
    kind, result = run(deploy_ledger_info, {"backend": "postgres", "timeout": 2,
                                            "dsn": "host=127.0.0.1 port=1 dbname=x user=u password=%s" % secret})
    assert kind is Fail and "cannot reach the PostgreSQL ledger" in result["msg"]
    assert secret not in json.dumps(result)


def test_info_on_a_missing_ledger_warns_and_creates_nothing(run, tmp_path):
    path = tmp_path / "nothing" / "l.sqlite3"
    kind, result = run(deploy_ledger_info, {"path": str(path), "query": "list"})
    assert kind is Exit and result["deployments"] == [] and not path.parent.exists()
