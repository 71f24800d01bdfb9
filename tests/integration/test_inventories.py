"""Every shipped inventory (local, demo, staging, prod) loads with the real ansible-inventory and
ansible-playbook, from the repository root through its link too (`-i prod`), and its variables,
templated on each host as Ansible templates them, pass:

- each role's meta/argument_specs.yml (types, choices, required suboptions), with ansible-core's
  own ArgumentSpecValidator;
- the options of the modules the catalogue entries become: verify's services, functional, nginx
  and auth checks -> health_probe `targets`; route checks -> route_order_check (a route check must
  name its container); browser checks -> browser_check; deploy_projects -> compose_deploy
  `projects`. The entries are turned into module arguments by the verify role's own planner
  (module_utils/_verify_targets.build_plan); each module's argument spec is read from its source.

So a broken catalogue cannot ship: `inventory_problems` reports each problem in one line.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from tests.conftest import BIN, REPO, ansible_env, run_playbook

INVENTORIES = ("local", "demo", "staging", "prod")
DOMAINS = ("core-platform", "data-collectors", "ml-engine", "automation-core", "blueprints",
           "energy-analytics", "device-management", "pattern-analysis", "frontends")
DEMO_DOMAINS = ("core-platform", "pattern-analysis", "frontends")
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "defaults" / "main.yml").exists())
MODULES = REPO / "plugins" / "modules"
MODULE_UTILS = REPO / "plugins" / "module_utils"
RENDER_TASK = "Render one variable"
# The environment the shipped inventories read (ports, stack name, secrets): none of it is set
# for these tests, so the files' own defaults are what is validated.
INVENTORY_ENV = ("HOMEIQ_LEDGER_DSN", "HOMEIQ_STACK", "HOMEIQ_WEBHOOK_URL", "HOMEIQ_WEBHOOK_TOKEN",
                 "HOMEIQ_SLACK_WEBHOOK_URL", "HOMEIQ_NOTIFY_EMAIL_TO", "HOMEIQ_SMTP_PASSWORD")


def clean_env(extra=None):
    env = ansible_env()
    for name in INVENTORY_ENV:
        env.pop(name, None)
    env.update(extra or {})
    return env


# --- reading what the collection declares ---------------------------------------------------

def role_specs():
    """{role: {entry point: options}} from every roles/*/meta/argument_specs.yml."""
    specs = {}
    for role in ROLES:
        path = REPO / "roles" / role / "meta" / "argument_specs.yml"
        if path.exists():
            doc = yaml.safe_load(path.read_text())["argument_specs"]
            specs[role] = {entry: spec.get("options") or {} for entry, spec in doc.items()}
    return specs


def role_defaults():
    names = set()
    for role in ROLES:
        names |= set(yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text()) or {})
    return names


class _Unreadable(ValueError):
    pass


def _literal(node, symbols):
    """The value of a literal argument-spec expression: dict(...) calls, {...}, lists, tuples,
    constants, and names of module-level literals (also as **name inside dict(...))."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, symbols) for e in node.elts]
    if isinstance(node, ast.Dict):
        out = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                out.update(_literal(value, symbols))
            else:
                out[_literal(key, symbols)] = _literal(value, symbols)
        return out
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        out = {}
        for kw in node.keywords:
            if kw.arg is None:
                out.update(_literal(kw.value, symbols))
            else:
                out[kw.arg] = _literal(kw.value, symbols)
        return out
    if isinstance(node, ast.Name) and node.id in symbols:
        return _literal(symbols[node.id], symbols)
    raise _Unreadable("line %d: %s" % (node.lineno, ast.dump(node)[:80]))


def _assignments(tree):
    """Module-level NAME = <expression> of a parsed file."""
    return {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def module_spec(name):
    """The keyword arguments of the module's AnsibleModule(...) call (argument_spec, required_if,
    mutually_exclusive, ...), read from plugins/modules/<name>.py."""
    tree = ast.parse((MODULES / ("%s.py" % name)).read_text())
    symbols = _assignments(tree)
    # Specs shared from module_utils (from ..._stack import STACK_PROJECT_SPEC) are read from there.
    prefix = "ansible_collections.homeiq.deploy.plugins.module_utils."
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(prefix):
            shared = _assignments(ast.parse((MODULE_UTILS / (node.module[len(prefix):] + ".py")).read_text()))
            symbols.update({a.asname or a.name: shared[a.name] for a in node.names if a.name in shared})
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AnsibleModule":
            return {kw.arg: _literal(kw.value, symbols) for kw in node.keywords if kw.arg != "supports_check_mode"}
    raise AssertionError("plugins/modules/%s.py has no AnsibleModule(...) call" % name)


def validator(name, only=None):
    """ArgumentSpecValidator of a module (its whole spec, or only the named options)."""
    kw = module_spec(name)
    spec = kw.pop("argument_spec")
    if only:
        spec = {k: spec[k] for k in only}
        kw = {}
    return ArgumentSpecValidator(spec, **kw)


def spec_errors(result):
    return [str(e) for e in result.error_messages]


# --- loading the inventories as Ansible does -----------------------------------------------

def inventory_list(inventory, env=None):
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"], cwd=REPO,
                          env=env or clean_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


RENDER_PLAYBOOK = """\
---
# Loads every role of the collection (their defaults below the inventory, as in a real run) and
# templates the named variables on each host; --tags keeps every role task from running. All at
# once; one at a time only when one of them does not template, to name it.
- name: Render the variables of every role
  hosts: all
  gather_facts: false
  roles:
{roles}
  tasks:
    - name: {all_task}
      ansible.builtin.debug:
        msg: "{{{{ dict(homeiq_render_names | zip(query('ansible.builtin.vars', *homeiq_render_names, default=homeiq_undefined))) }}}}"
      register: homeiq_render_all
      ignore_errors: true
      tags: [homeiq_render]
    - name: {task}
      ansible.builtin.debug:
        msg: "{{{{ lookup('ansible.builtin.vars', item, default=homeiq_undefined) }}}}"
      loop: "{{{{ homeiq_render_names }}}}"
      ignore_errors: true
      when: homeiq_render_all is failed
      tags: [homeiq_render]
"""
RENDER_ALL_TASK = "Render every variable"
UNDEFINED = "__homeiq_undefined__"


def render(inventory, tmp_path, env=None):
    """{host: {variable: templated value}} and {host: {variable: template error}} for every role
    option and default and every variable the inventory defines, templated on each host."""
    listing = inventory_list(inventory, env)
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    specs = role_specs()
    names = set(role_defaults())
    for options in (o for entries in specs.values() for o in entries.values()):
        names |= set(options)
    for hv in hostvars.values():
        names |= set(hv)
    playbook = tmp_path / "render.yml"
    playbook.write_text(RENDER_PLAYBOOK.format(
        roles="\n".join("    - role: homeiq.deploy.%s" % r for r in ROLES), all_task=RENDER_ALL_TASK, task=RENDER_TASK))
    run = run_playbook(playbook, tmp_path, inventory=inventory,
                       extra_vars={"homeiq_render_names": sorted(names), "homeiq_undefined": UNDEFINED},
                       env=dict(env or clean_env(), ANSIBLE_DISPLAY_OK_HOSTS="false", ANSIBLE_DISPLAY_SKIPPED_HOSTS="false"),
                       args=["--tags", "homeiq_render", "--skip-tags", "always"])
    values, errors = {}, {}
    renders = [r for r in run.results if r["task"] == RENDER_ALL_TASK]
    assert renders, "the render playbook ran no host:\n%s" % run.output[-3000:]
    for r in renders:
        host = r["host"]
        values[host], errors[host] = {}, {}
        if r["status"] == "ok":
            values[host] = {k: val for k, val in r["result"]["msg"].items() if val != UNDEFINED}
            continue
        one = run.task(RENDER_TASK, host=host)
        for item in one["result"].get("results", []):
            if item.get("failed") or "exception" in item:
                errors[host][item["item"]] = (item.get("msg") or "no message").splitlines()[0]
            elif item.get("msg") != UNDEFINED:
                values[host][item["item"]] = item.get("msg")
    return values, errors


# --- the checks ------------------------------------------------------------------------------

def _browser_args_spec():
    if not (MODULES / "browser_check.py").exists():
        return None
    return validator("browser_check")


def catalogue_problems(v):
    """The module arguments the verify and deploy roles make of the catalogue, validated against
    the modules' own argument specs. `v` are one host's templated variables."""
    from ansible_collections.homeiq.deploy.plugins.module_utils import _verify_targets as vt

    problems = []
    try:
        plan = vt.build_plan(
            services=v.get("verify_services"), functional_checks=v.get("verify_functional_checks"),
            nginx_checks=v.get("verify_nginx_checks"), auth_checks=v.get("verify_auth_checks"),
            browser_checks=v.get("verify_browser_checks"), scheme=v.get("verify_scheme", "http"),
            host=v.get("verify_host", "127.0.0.1"), browser_host=v.get("verify_browser_host") or None,
            max_latency_ms=v.get("verify_max_latency_ms", 500))
    except vt.VerifyInputError as exc:
        return ["verify catalogue: %s" % exc]

    probe = validator("health_probe", only=["targets"])
    for target in plan["probe"]:
        for err in spec_errors(probe.validate({"targets": [target]})):
            problems.append("verify check %r -> health_probe targets: %s" % (target["name"], err))

    routes = validator("route_order_check")
    for check in plan["routes"]:
        for err in spec_errors(routes.validate(dict(check["args"]))):
            hint = (": a route check must name its container (container on the entry or in routes)"
                    if "container" in err and check["args"].get("mode", "container") == "container" else "")
            problems.append("verify_services entry %r routes -> route_order_check: %s%s" % (check["name"], err, hint))

    browser = _browser_args_spec()
    if browser is not None:
        for check in plan["browser"]:
            args = browser_check_args(check)
            for err in spec_errors(browser.validate(args)):
                problems.append("verify_browser_checks entry %r -> browser_check: %s" % (check["name"], err))

    projects = v.get("deploy_projects") or []
    compose = module_spec("compose_deploy")["argument_spec"]
    if projects and "projects" in compose:
        deploy = ArgumentSpecValidator({"project_src": compose["project_src"], "projects": compose["projects"]})
        for err in spec_errors(deploy.validate({"project_src": v.get("deploy_project_src"), "projects": projects})):
            problems.append("deploy_projects -> compose_deploy projects: %s" % err)
    elif projects:
        problems.append("deploy_projects is set but compose_deploy has no projects option")
    return problems


def browser_check_args(check):
    """The arguments the verify role gives browser_check for one planned check: the options of
    the module among the planned keys."""
    spec = module_spec("browser_check")["argument_spec"]
    return {k: val for k, val in check.items() if k in spec}


def inventory_options(options):
    """A role's options as an inventory must meet them: a required top-level option that is set at
    run time by the playbook (notify_event, monitor_record_hosts) is not the inventory's to give;
    every suboption keeps its own requirements."""
    return {name: dict(spec, required=False) for name, spec in options.items()}


def inventory_problems(inventory, tmp_path, env=None):
    """One line per problem of the inventory, naming the host, the role or catalogue, and what is wrong."""
    values, errors = render(inventory, tmp_path, env)
    specs = role_specs()
    problems = []
    for host in sorted(values):
        v = values[host]
        for name, msg in sorted(errors[host].items()):
            problems.append("%s: %s does not template: %s" % (host, name, msg))
        for role, entries in specs.items():
            for entry, options in entries.items():
                params = {k: v[k] for k in options if k in v}
                for err in spec_errors(ArgumentSpecValidator(inventory_options(options)).validate(params)):
                    problems.append("%s: role %s (%s): %s" % (host, role, entry, err))
        problems += ["%s: %s" % (host, p) for p in catalogue_problems(v)]
    return problems


# --- tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_is_valid_for_the_roles_and_modules(name, tmp_path):
    problems = inventory_problems(name, tmp_path)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", INVENTORIES)
def test_root_link_loads_the_same_inventory(name):
    link = REPO / name
    assert link.is_symlink() and os.readlink(link) == "inventories/%s" % name, link
    assert inventory_list(name) == inventory_list("inventories/%s" % name)


@pytest.mark.parametrize("name, hosts", [
    ("local", ["localhost"]),
    ("demo", ["localhost"]),
    ("staging", ["homeiq-staging-1.example.invalid", "homeiq-staging-2.example.invalid"]),
    ("prod", ["homeiq-prod-1.example.invalid", "homeiq-prod-2.example.invalid", "homeiq-prod-3.example.invalid",
              "homeiq-prod-4.example.invalid"]),
])
def test_deploy_playbook_lists_its_hosts_from_the_root(name, hosts):
    proc = subprocess.run([str(BIN / "ansible-playbook"), "deploy.yml", "-i", name, "--list-hosts"], cwd=REPO,
                          env=clean_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plan = proc.stdout.split("play #2")[0]
    assert "hosts (%d):" % len(hosts) in plan, proc.stdout
    listed = [line.strip() for line in plan.split("hosts (%d):" % len(hosts))[1].splitlines() if line.strip()]
    assert sorted(listed) == hosts, proc.stdout
    assert "[WARNING]" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_staging_and_prod_describe_homeiq_as_deployed(name, tmp_path):
    values, errors = render(name, tmp_path)
    for host, v in values.items():
        assert not errors[host], errors[host]
        assert v["deploy_project_name"] == "homeiq"
        assert v["deploy_project_src"] == "/opt/homeiq"
        assert v["deploy_projects"] == [
            {"name": "homeiq-%s" % d, "files": ["domains/%s/compose.yml" % d], "env_files": [".env"],
             "profiles": ["production"]} for d in DOMAINS]
        assert v["preflight_projects"] == v["deploy_projects"]
        services = {s["name"]: s for s in v["verify_services"]}
        # The runbook: 8001, 8006 and 8004 healthy under 500 ms; influxdb and the dashboard critical.
        for service, port in (("websocket-ingestion", 8001), ("data-api", 8006), ("admin-api", 8004)):
            assert services[service]["port"] == port and services[service]["max_latency_ms"] == 500
            assert services[service]["critical"] is True
        assert services["influxdb"]["port"] == 8086 and services["influxdb"]["critical"] is True
        assert services["health-dashboard"]["port"] == 3000 and services["health-dashboard"]["critical"] is True
        # HomeIQ's container_name values (domains/<domain>/compose.yml).
        assert {s: services[s]["container"] for s in services} == {
            "influxdb": "homeiq-influxdb", "websocket-ingestion": "homeiq-websocket", "data-api": "homeiq-data-api",
            "admin-api": "homeiq-admin", "health-dashboard": "homeiq-dashboard",
            "ai-pattern-service": "homeiq-ai-pattern-service",
            "ai-automation-service": "homeiq-ai-automation-service-new", "ai-automation-ui": "homeiq-ai-automation-ui"}
        checks = {c["name"]: c for c in v["verify_functional_checks"]}
        assert checks["events"]["path"] == "/api/v1/events?limit=5"
        assert checks["event stats"]["path"] == "/api/v1/events/stats?period=1h"
        assert (checks["synergies stats"]["port"], checks["synergies stats"]["path"]) == (8034, "/api/v1/synergies/stats")
        assert checks["synergies stats via ai-automation-service"]["port"] == 8036
        locations = {loc["path"] for n in v["verify_nginx_checks"] for loc in n["locations"]}
        assert "/ai-automation/api/synergies/stats" in locations
        assert v["verify_nginx_checks"][0]["container"] == "homeiq-dashboard"
        browser = {c["name"]: c for c in v["verify_browser_checks"]}
        assert browser["health-dashboard page"]["port"] == 3000 and browser["health-dashboard page"]["wait_for"]
        assert browser["synergies page"]["path"] == "/synergies"
        assert v["ledger_backend"] == "sqlite" and v["ledger_dsn"] == ""


def test_demo_matches_its_domain_files(tmp_path):
    """The demo inventory's projects and containers are the ones `docker compose config` of the
    demo's domain files gives (the real interpolation of the files, with the demo's .env)."""
    values, errors = render("demo", tmp_path)
    v = values["localhost"]
    assert not errors["localhost"], errors["localhost"]
    src = Path(v["deploy_project_src"])
    assert src == REPO / "examples" / "homeiq-demo"
    assert [p["name"] for p in v["deploy_projects"]] == ["homeiq-demo-%s" % d for d in DEMO_DOMAINS]
    containers = set()
    env = {k: val for k, val in os.environ.items() if not k.startswith("HOMEIQ_")}
    for project in v["deploy_projects"]:
        assert project["env_files"] == [".env"] and project["profiles"] == ["production"]
        cmd = ["docker", "compose"]
        for f in project["files"]:
            cmd += ["-f", f]
        for f in project["env_files"]:
            cmd += ["--env-file", f]
        for p in project["profiles"]:
            cmd += ["--profile", p]
        proc = subprocess.run(cmd + ["config", "--format", "json"], cwd=src, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        config = json.loads(proc.stdout)
        assert config["name"] == project["name"]
        containers |= {s.get("container_name") for s in config["services"].values()}
    named = {s["container"] for s in v["verify_services"]} | {n["container"] for n in v["verify_nginx_checks"]}
    named |= {s["routes"].get("container", s.get("container")) for s in v["verify_services"] if "routes" in s}
    assert named <= containers, named - containers
    assert v["ledger_backend"] == "sqlite" and v["notify_webhook_url"] == "" and v["notify_email_to"] == []


def test_ledger_is_postgres_when_the_controller_has_a_dsn(tmp_path):
    dsn = "postgresql://deploy:inventory-test-secret@ledger.example.invalid:5432/homeiq"
    values = render("prod", tmp_path, env=clean_env({"HOMEIQ_LEDGER_DSN": dsn}))[0]
    for v in values.values():
        assert (v["ledger_backend"], v["ledger_dsn"], v["rollout_lock_per_host"]) == ("postgres", dsn, False)
    (tmp_path / "without").mkdir()
    values = render("staging", tmp_path / "without")[0]
    for v in values.values():
        assert (v["ledger_backend"], v["ledger_dsn"], v["rollout_lock_per_host"]) == ("sqlite", "", True)
    # Listing the inventory and the hosts never shows the DSN.
    env = clean_env({"HOMEIQ_LEDGER_DSN": dsn})
    listing = subprocess.run([str(BIN / "ansible-inventory"), "-i", "prod", "--list"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120, check=True)
    hosts = subprocess.run([str(BIN / "ansible-playbook"), "deploy.yml", "-i", "prod", "--list-hosts"], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=120, check=True)
    for out in (listing.stdout + listing.stderr, hosts.stdout + hosts.stderr):
        assert "inventory-test-secret" not in out


def broken_prod(tmp_path, overrides):
    """A copy of inventories/prod with a group_vars file that overrides some of its variables."""
    copy = tmp_path / "prod"
    shutil.copytree(REPO / "inventories" / "prod", copy)
    (copy / "group_vars" / "all" / "zz_broken.yml").write_text("---\n" + yaml.safe_dump(overrides, sort_keys=False))
    return copy


def test_a_route_check_without_its_container_is_reported_in_one_line(tmp_path):
    services = yaml.safe_load((REPO / "inventories" / "prod" / "group_vars" / "all" / "verify.yml").read_text())["verify_services"]
    for s in services:
        if s["name"] == "ai-pattern-service":
            del s["container"]
    problems = inventory_problems(broken_prod(tmp_path, {"verify_services": services}), tmp_path)
    hosts = ["homeiq-prod-%d.example.invalid" % i for i in range(1, 5)]
    assert problems == [
        "%s: verify_services entry 'ai-pattern-service' routes -> route_order_check: mode is container but all of the "
        "following are missing: container: a route check must name its container (container on the entry or in routes)"
        % h for h in hosts], "\n".join(problems)


def test_broken_settings_and_entries_are_each_reported_in_one_line(tmp_path):
    overrides = {
        "verify_max_latency_ms": "fast",
        "verify_browser_host": "{{ homeiq_no_such_variable }}",
        "ledger_backend": "mysql",
        "verify_functional_checks": [{"name": "events", "port": "eighty", "path": "/api/v1/events"}],
        "verify_services": [{"name": "data-api", "port": 8006, "container": "homeiq-data-api",
                             "routes": {"mode": "openapi", "pathfilter": "^/api/devices/"}}],
    }
    problems = inventory_problems(broken_prod(tmp_path, overrides), tmp_path)
    assert all("\n" not in p for p in problems)
    for needle in (
            "role verify (main): argument 'verify_max_latency_ms' is of type str and we were unable to convert to int",
            "role ledger (main): value of ledger_backend must be one of: sqlite, postgres, got: mysql",
            "verify_browser_host does not template: ",
            "role verify (main): argument 'port' is of type str found in 'verify_functional_checks'. and we were unable to convert to int",
            "verify catalogue: verify_services entry data-api routes"):
        hits = [p for p in problems if needle in p]
        assert len(hits) == 4, "%r reported %d times, not once per host:\n%s" % (needle, len(hits), "\n".join(problems))


FINISH_PLAYBOOK = """\
---
# deploy.yml's finish play after a successful rollout of two hosts, with the plan and summary the
# earlier plays leave on localhost; the ledger is read (metrics) and nothing is released (no lock).
- name: Finish
  hosts: all
  gather_facts: false
  tasks:
    - name: Leave the facts of the earlier plays
      ansible.builtin.set_fact:
        rollout_plan: {id: deploy-20261204-180000-test, hosts: [localhost, second], canary: [], serial: ["100%"],
                       max_fail_percentage: 0, revert: false, unreachable: [], lock: false, lock_scope: test/homeiq}
        rollout_batches: [[localhost, second]]
        rollout_stop: {}
        rollout_revert: []
        pipeline_status: success
        deploy_stack_changed: true
      delegate_facts: true
      delegate_to: localhost
      run_once: true
    - name: Each host succeeded
      ansible.builtin.set_fact:
        pipeline_status: success
        deploy_stack_changed: true
    - name: Finish the rollout
      ansible.builtin.import_role:
        name: homeiq.deploy.rollout
        tasks_from: finish
"""


@pytest.mark.parametrize("backend, shown", [("sqlite", True), ("postgres", False)])
def test_rollout_summary_says_the_sqlite_lock_is_per_host(tmp_path, backend, shown):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(textwrap.dedent("""\
        homeiq:
          hosts:
            localhost:
            second:
          vars:
            ansible_connection: local
            ansible_python_interpreter: "{{ ansible_playbook_python }}"
        """))
    playbook = tmp_path / "finish.yml"
    playbook.write_text(FINISH_PLAYBOOK)
    extra = {"ledger_backend": backend, "ledger_path": str(tmp_path / "ledger.sqlite3"), "ledger_timeout": 1,
             "ledger_dsn": "postgresql://nobody@127.0.0.1:1/none" if backend == "postgres" else "",
             "rollout_notify_summary": False, "ledger_environment": "test"}
    run = run_playbook(playbook, tmp_path, inventory=inventory, extra_vars=extra, env=clean_env())
    assert run.rc == 0, run.output[-3000:]
    lines = run.task("Rollout summary")["result"]["msg"]
    assert lines[0] == "Rollout deploy-20261204-180000-test: success", lines
    lock = [line for line in lines if line.startswith("rollout lock:")]
    assert lock == ([("rollout lock: per host (SQLite ledger), not fleet-wide; the shared PostgreSQL ledger "
                      "(HOMEIQ_LEDGER_DSN in the shipped inventories) locks the whole fleet")] if shown else []), lines
    assert "127.0.0.1:1" not in run.output
