"""awx/configure.yml, checked offline: a real ansible-playbook run against stand-in awx.awx modules
that validate their arguments with AnsibleModule and the collection's own argument specs
(tests/integration/awx/awx_argspecs.yml), then the rendered job templates, surveys, credentials
and schedules are checked against what the playbooks and roles of this collection read."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import write_play

ARGSPECS = yaml.safe_load((Path(__file__).parent / "awx" / "awx_argspecs.yml").read_text())
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
ENVIRONMENTS = ["staging", "prod"]
ACTIONS = {"deploy": "deploy.yml", "rollback": "rollback.yml", "verify": "verify.yml",
           "ledger report": "ledger.yml", "maintenance": "maintenance.yml"}
SECRETS = {env: {"ssh_user": "deploy", "ssh_private_key": f"-----FAKE KEY {env} 7c1e-----",
                 "slack_webhook_url": f"https://hooks.example.invalid/{env}/s3cr3t-slack",
                 "webhook_url": f"https://hooks.example.invalid/{env}/s3cr3t-hook",
                 "webhook_token": f"s3cr3t-token-{env}", "smtp_password": f"s3cr3t-smtp-{env}",
                 "ledger_dsn": f"postgresql://homeiq:s3cr3t-db-{env}@db.example.invalid/ledger"} for env in ENVIRONMENTS}

STUB = '''#!/usr/bin/python
# Stand-in for awx.awx.{name} in tests: validates its arguments with the module's argument spec.
from __future__ import annotations
import json
from ansible.module_utils.basic import AnsibleModule
SPEC = json.loads({spec!r})


def main():
    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
    module.exit_json(changed=False, params=dict((k, v) for k, v in module.params.items() if v is not None))


if __name__ == "__main__":
    main()
'''


@pytest.fixture(scope="module")
def awx_collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("awx-stubs")
    modules = root / "ansible_collections" / "awx" / "awx" / "plugins" / "modules"
    modules.mkdir(parents=True)
    for name, options in ARGSPECS["modules"].items():
        spec = {**ARGSPECS["common"], **options}
        spec = {k: {**v, "type": v.get("type", "str")} for k, v in spec.items()}
        (modules / f"{name}.py").write_text(STUB.format(name=name, spec=json.dumps(spec)))
    return root


@pytest.fixture(scope="module")
def configured(awx_collection, tmp_path_factory):
    from tests.conftest import run_playbook
    tmp = tmp_path_factory.mktemp("awx-run")
    inv = tmp / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    run = run_playbook(REPO / "awx" / "configure.yml", tmp, inventory=inv,
                       extra_vars={"homeiq_awx_secrets": SECRETS},
                       env={"ANSIBLE_COLLECTIONS_PATH": str(awx_collection), "ANSIBLE_INJECT_INVOCATION": "1"})
    assert run.rc == 0, run.output[-5000:]
    return run


def results(run, action):
    return [r["result"] for r in run.results if r["action"] == f"awx.awx.{action}"
            for r in ([r] if "results" not in r["result"] else
                      [dict(r, result=x) for x in r["result"]["results"]])]


def role_variables():
    """Every variable a role of this collection documents, plus the rollout settings."""
    names = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec.read_text())["argument_specs"] or {}).values():
            names |= set((entry.get("options") or {}).keys())
    for defaults in REPO.glob("roles/*/defaults/main.yml"):
        names |= set((yaml.safe_load(defaults.read_text()) or {}).keys())
    names |= set(yaml.safe_load((REPO / "inventories/prod/group_vars/all/rollout.yml").read_text()).keys())
    return names


def test_the_stand_ins_reject_what_awx_awx_rejects(awx_collection, playbook, tmp_path):
    play = write_play(tmp_path, [
        {"name": "unknown option", "awx.awx.job_template": {"name": "x", "survey": {}}, "ignore_errors": True},
        {"name": "bad choice", "awx.awx.project": {"name": "x", "scm_type": "hg"}, "ignore_errors": True},
        {"name": "bad type", "awx.awx.job_template": {"name": "x", "forks": "many"}, "ignore_errors": True},
    ])
    run = playbook(play, env={"ANSIBLE_COLLECTIONS_PATH": str(awx_collection)})
    assert "Unsupported parameters" in run.task("unknown option")["result"]["msg"]
    assert "value of scm_type must be one of" in run.task("bad choice")["result"]["msg"]
    assert "forks" in run.task("bad type")["result"]["msg"]


def test_configure_creates_every_object_with_valid_arguments(configured):
    assert len(results(configured, "organization")) == 1
    assert len(results(configured, "credential_type")) == 1
    assert len(results(configured, "project")) == 1
    assert len(results(configured, "execution_environment")) == 1
    assert len(results(configured, "inventory")) == len(ENVIRONMENTS)
    sources = results(configured, "inventory_source")
    assert {s["params"]["source_path"] for s in sources} == {f"inventories/{e}" for e in ENVIRONMENTS}
    for s in sources:
        assert (REPO / s["params"]["source_path"] / "hosts.yml").exists()
        assert s["params"]["source"] == "scm"
    templates = results(configured, "job_template")
    assert sorted(t["params"]["name"] for t in templates) == sorted(
        f"HomeIQ {a} ({e})" for a in ACTIONS for e in ENVIRONMENTS)
    for t in templates:
        p = t["params"]
        action, env = p["name"][len("HomeIQ "):-1].split(" (")
        assert p["playbook"] == ACTIONS[action] and (REPO / p["playbook"]).exists()
        assert p["inventory"] == f"HomeIQ {env}"
        assert p["credentials"] == [f"HomeIQ {env} hosts", f"HomeIQ {env} secrets"]
        assert p["survey_enabled"] is True and "extra_vars" not in p
    schedules = results(configured, "schedule")
    assert sorted(s["params"]["unified_job_template"] for s in schedules) == sorted(
        f"HomeIQ {a} ({e})" for a in ("verify", "maintenance") for e in ENVIRONMENTS)
    assert all(s["params"]["rrule"].startswith("DTSTART:") and " RRULE:FREQ=" in s["params"]["rrule"]
               for s in schedules)


def test_surveys_ask_what_a_person_picks_and_name_real_variables(configured):
    known = role_variables()
    by_name = {t["params"]["name"]: t["params"]["survey_spec"] for t in results(configured, "job_template")}
    for name, survey in by_name.items():
        assert survey["name"] and survey["description"], name
        variables = [q["variable"] for q in survey["spec"]]
        assert len(variables) == len(set(variables)), name
        for q in survey["spec"]:
            assert {"question_name", "variable", "type", "required"} <= set(q), (name, q)
            assert q["type"] in SURVEY_TYPES, (name, q)
            assert q["variable"] in known, f"{name}: survey variable {q['variable']} is read by no role"
            assert not any(w in q["variable"] for w in ("password", "token", "dsn", "webhook")), (name, q)
            if q["type"] in ("multiplechoice", "multiselect"):
                assert isinstance(q["choices"], list) and q["choices"], (name, q)
                if q["type"] == "multiplechoice":
                    assert q["default"] in q["choices"], (name, q)
            if q["type"] == "integer":
                assert q["min"] <= int(q["default"]) <= q["max"], (name, q)
            if q["type"] == "text" and q["required"]:
                assert q["min"] <= len(str(q["default"])) <= q["max"], (name, q)
    deploy = {q["variable"]: q for q in by_name["HomeIQ deploy (prod)"]["spec"]}
    assert set(deploy) >= {"deploy_services", "deploy_batch_size", "deploy_max_fail_percentage", "fleet_revert"}
    rollout = yaml.safe_load((REPO / "inventories/prod/group_vars/all/rollout.yml").read_text())
    assert deploy["deploy_batch_size"]["default"] == rollout["deploy_batch_size"]
    assert int(deploy["deploy_max_fail_percentage"]["default"]) == rollout["deploy_max_fail_percentage"]
    assert deploy["fleet_revert"]["default"] == str(rollout["fleet_revert"]).lower()
    services = yaml.safe_load((REPO / "examples/homeiq-demo/compose.yaml").read_text())["services"]
    assert sorted(deploy["deploy_services"]["choices"]) == sorted(services)
    rollback = {q["variable"]: q for q in by_name["HomeIQ rollback (staging)"]["spec"]}
    assert rollback["rollback_to"]["default"] == "previous" and {"rollback_tag", "rollback_commit"} <= set(rollback)
    report = {q["variable"]: q for q in by_name["HomeIQ ledger report (prod)"]["spec"]}
    assert report["ledger_report_environment"]["choices"] == ENVIRONMENTS


def test_secrets_travel_as_credentials_never_in_output(configured):
    ctype = results(configured, "credential_type")[0]["params"]
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    assert all(f["secret"] for f in fields.values())
    env = ctype["injectors"]["env"]
    assert set(env) == {"HOMEIQ_SLACK_WEBHOOK_URL", "HOMEIQ_WEBHOOK_URL", "HOMEIQ_WEBHOOK_TOKEN",
                        "HOMEIQ_SMTP_PASSWORD", "HOMEIQ_LEDGER_DSN"}
    # AWX renders the injector templates at launch; here they must have stayed templates.
    assert env["HOMEIQ_SLACK_WEBHOOK_URL"] == "{{ slack_webhook_url | default('') }}"
    assert all(env[k].startswith("{{ ") and env[k].split()[1] in fields for k in env)
    # The inventories read the injected variables (notify channels).
    for inventory_env in ENVIRONMENTS:
        notify = (REPO / "inventories" / inventory_env / "group_vars" / "all" / "notify.yml")
        text = notify.read_text()
        for var in ("HOMEIQ_SLACK_WEBHOOK_URL", "HOMEIQ_WEBHOOK_URL", "HOMEIQ_WEBHOOK_TOKEN", "HOMEIQ_SMTP_PASSWORD"):
            assert var in text, f"{notify} does not read {var}"
    # Two credentials per environment (secrets, hosts), their tasks censored (no_log).
    creds = results(configured, "credential")
    assert len(creds) == 2 * len(ENVIRONMENTS) and all("censored" in c for c in creds), creds
    everything = configured.output + json.dumps(configured.results)
    for env_secrets in SECRETS.values():
        for key, value in env_secrets.items():
            if key != "ssh_user":
                assert value not in everything, f"{key} leaked"
