#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_check
short_description: Runs every pre-deployment check of a HomeIQ compose project and reports them all
version_added: 0.1.0
description:
  - Runs the checks of the HomeIQ runbook's pre-deployment checklist on the host that will run the
    project, and returns one summary with an entry per check (C(check), C(result), C(why)).
  - Every check runs, even after one failed, so the summary shows every problem at once.
  - "Environment checks: C(engine) (the Docker engine answers), C(engine_access) (the user can open
    the engine's socket), C(compose_version) (Compose v2 at or above I(compose_min_version)),
    C(disk) (free space where Docker keeps its data, C(DockerRootDir), and where the project lives),
    C(network) (hosts resolve and accept TCP connections), C(env_files), C(env_vars), C(ports)
    (published host ports are free or held by this project's own containers; the holder is named)."
  - "Configuration checks: C(compose_config) (C(docker compose config) with the project's env files
    and profiles; Compose's own message when it fails), C(healthchecks), C(resource_limits) (memory and
    CPU), C(depends_on) (every dependency defined and active, no cycle), C(tokens) (secrets set and not
    placeholders, known defaults or the example file's values), C(home_assistant) (C(GET /api/) with the
    long-lived token), C(influxdb) (C(/health) and the token on C(/api/v2/buckets))."
  - "Security checks: C(secret_scan) (credentials committed in the project, reported by file and line
    with the secret masked) and C(gate:NAME) for each command in I(gates), whose exit status decides."
  - "C(mounts): every bind-mount source of the active services exists (relative paths resolved as Compose does)."
  - "Paths follow Compose's rule: the module runs Compose from I(project_src); I(files), I(env_files) and
    I(project_directory) given relative are relative to it; the project directory (where the default C(.env)
    is read and every relative path inside the files resolves) is I(project_directory) when given, else the
    first file's folder, exactly as C(docker compose -f domains/core/compose.yml) does."
  - "A stack of compose projects is checked with I(projects): the host checks run once, the project checks
    (C(env_files), C(env_vars), C(ports), C(compose_config), C(mounts), C(healthchecks), C(resource_limits),
    C(depends_on), C(tokens)) once per project, each entry naming its C(project)."
  - A check with nothing to judge (for example Home Assistant without a URL) is listed in C(skipped_checks).
  - No secret appears in the result, in C(msg) or in the summary, including messages of Compose and
    the output of gate commands, which are passed through a redactor that knows the project's secrets.
author:
  - HomeIQ maintainers (!UNKNOWN)
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The checks only read; check mode runs them all, gate commands included, and only reports whether the baseline would be written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details:
      - Changes nothing, except the secret-scan baseline file when I(secret_scan_write_baseline) is set; its content is
        stable, so a second run reports no change.
options:
  project_src:
    description:
      - Folder Compose runs from (the checkout, for example the repository root); relative paths of other options
        are relative to it.
    type: path
    required: true
  project_directory:
    description:
      - Compose's project directory (C(--project-directory)), relative to I(project_src).
      - Default what Compose uses without the flag, the first compose file's folder (I(project_src) without I(files)).
    type: path
  services:
    description:
      - Judge only these services (and the ones they depend on); empty judges every active service.
    type: list
    elements: str
    default: []
  projects:
    description:
      - A stack of compose projects, checked in order. Host checks run once, project checks once per project.
      - Cannot be combined with I(project_name), I(files), I(env_files), I(profiles), I(services) or I(project_directory).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The compose project name.
        type: str
        required: true
      files:
        description: Compose files of this project, relative to I(project_src).
        type: list
        elements: path
      env_files:
        description: Env files of this project, relative to I(project_src).
        type: list
        elements: path
      profiles:
        description: Compose profiles to enable.
        type: list
        elements: str
      services:
        description: Judge only these services (and their dependencies).
        type: list
        elements: str
      project_directory:
        description: Project directory of this project, relative to I(project_src); default the first file's folder.
        type: str
  project_name:
    description:
      - Compose project name. Defaults to what Compose derives (the C(name) key, C(COMPOSE_PROJECT_NAME)
        or the folder name). Containers labelled with this project may hold the project's ports.
    type: str
  files:
    description: Compose files (C(-f)); default the project's C(compose.yaml) and its override.
    type: list
    elements: path
    default: []
  env_files:
    description:
      - Env files passed to Compose (C(--env-file)), relative to I(project_src).
      - Default the C(.env) of the project directory, which Compose reads only when no env file is given.
    type: list
    elements: path
    default: []
  profiles:
    description: Compose profiles to enable.
    type: list
    elements: str
    default: []
  environment:
    description:
      - Extra environment variables for Compose and the gate commands (they win over env files).
      - Treated as secrets; values are never shown.
    type: dict
    default: {}
  docker_host:
    description: Engine address (C(unix://) or C(tcp://)); default C(DOCKER_HOST) or the local socket.
    type: str
  docker_cli:
    description: Path of the docker CLI; default C(docker) on the C(PATH).
    type: path
  only:
    description:
      - Run only these checks (same names as I(skip)); empty runs every check.
    type: list
    elements: str
    default: []
  skip:
    description:
      - Checks not to run, by name (see the description), C(gates) for every gate or C(gate:NAME) for one.
    type: list
    elements: str
    default: []
  warn:
    description:
      - Checks whose failure is reported as C(warn) and does not count as a failure.
      - Same names as I(skip).
    type: list
    elements: str
    default: []
  fail_on_failure:
    description:
      - Fail the task when a check fails (the result still holds the whole summary).
      - The preflight role sets this false, prints the summary, then stops the play itself.
    type: bool
    default: true
  compose_min_version:
    description:
      - Lowest Compose v2 version accepted; not below 2.21.0, the lowest the collection's Compose client works with.
    type: str
    default: 2.21.0
  min_free_gb:
    description: Free space needed (gigabytes, 10^9 bytes) on each checked filesystem.
    type: float
    default: 10
  disk_paths:
    description: More paths whose filesystems need I(min_free_gb) free.
    type: list
    elements: path
    default: []
  network_hosts:
    description:
      - Hosts the deployment needs, as C(host:port) or URLs; the Home Assistant and InfluxDB URLs
        are added when those checks are configured.
      - C(${VAR}) and C(${VAR:-default}) are read from the project's env files and environment.
    type: list
    elements: str
    default: []
  network_timeout:
    description: Seconds allowed for name resolution and for the TCP connection, each.
    type: float
    default: 5
  required_env_vars:
    description:
      - Variables that must be set and not empty, in the env files or the environment.
      - Variables the compose files mark C(${VAR:?}) are required as well.
    type: list
    elements: str
    default: []
  secret_vars:
    description:
      - Variables that hold secrets and must not be placeholders, beyond the ones recognised by
        name (C(*_TOKEN), C(*_PASSWORD), C(*_SECRET), C(*_API_KEY), ...) in the env files.
    type: list
    elements: str
    default: []
  env_example_files:
    description:
      - Example env files whose values must not be reused as real secrets. Default the env files'
        C(.example) (C(.sample), C(.template), C(.dist)) siblings and the project's C(.env.example).
    type: list
    elements: path
    default: []
  placeholder_values:
    description: More values (case-insensitive) that count as placeholders or known defaults.
    type: list
    elements: str
    default: []
  healthcheck_exempt:
    description: Services that need no healthcheck (one-shot jobs, for example).
    type: list
    elements: str
    default: []
  limits_exempt:
    description: Services that need no memory and CPU limits.
    type: list
    elements: str
    default: []
  home_assistant_url:
    description:
      - Base URL of Home Assistant; the check is skipped when empty.
      - C(${VAR}) and C(${VAR:-default}) are read from the project's env files and environment.
    type: str
  home_assistant_token:
    description: Long-lived access token of Home Assistant.
    type: str
  home_assistant_token_env:
    description: Name of the variable (env files or environment) holding the Home Assistant token.
    type: str
  influxdb_url:
    description:
      - Base URL of InfluxDB 2; the check is skipped when empty.
      - C(${VAR}) and C(${VAR:-default}) are read from the project's env files and environment.
    type: str
  influxdb_token:
    description: InfluxDB API token.
    type: str
  influxdb_token_env:
    description: Name of the variable (env files or environment) holding the InfluxDB token.
    type: str
  influxdb_org:
    description: Organization to list buckets of (optional).
    type: str
  influxdb_bucket:
    description: Bucket that must exist and be readable with the token (optional).
    type: str
  http_timeout:
    description: Seconds allowed for each HTTP request to Home Assistant and InfluxDB.
    type: float
    default: 10
  validate_certs:
    description: Verify TLS certificates of Home Assistant and InfluxDB.
    type: bool
    default: true
  secret_scan_paths:
    description: Paths (relative to I(project_src)) to scan; default the whole project.
    type: list
    elements: str
    default: []
  secret_scan_exclude:
    description: Glob patterns (relative path or base name) the scan leaves out.
    type: list
    elements: str
    default: []
  secret_scan_allow:
    description:
      - Accepted findings. An entry matches when all the keys it gives match.
      - A line carrying C(pragma allowlist secret) or C(preflight allow) is accepted as well.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Glob of the file (relative path or base name).
        type: str
      rule:
        description: Rule name as reported (C(github-token), C(assigned-secret), C(private-key), ...).
        type: str
      fingerprint:
        description: Fingerprint (or a prefix of it) as reported with the finding.
        type: str
  secret_scan_baseline:
    description:
      - File of accepted secret-scan findings (fingerprints only), relative to I(project_src); findings it lists
        are counted as accepted, new ones fail. A missing file accepts nothing.
      - A detect-secrets C(.secrets.baseline) is read too (entries whose C(hashed_secret) matches a finding of the
        same file), but never written.
    type: path
    default: .homeiq-secrets-baseline.json
  secret_scan_write_baseline:
    description:
      - Write I(secret_scan_baseline) with every current finding (the allow lists still apply), so they are
        accepted from now on; the check then passes and C(changed) says whether the file changed.
      - Check mode only reports whether it would change.
    type: bool
    default: false
  gates:
    description: Commands whose exit status decides a check each (security tests, unit tests).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check (C(gate:NAME)).
        type: str
        required: true
      command:
        description: Shell command, run with C(/bin/sh -c).
        type: str
        required: true
      chdir:
        description: Folder to run in; default I(project_src).
        type: path
      timeout:
        description: Seconds before the command is stopped; default I(gate_timeout).
        type: int
      environment:
        description: Extra environment variables for this command.
        type: dict
  gate_timeout:
    description: Default seconds before a gate command is stopped.
    type: int
    default: 900
notes:
  - Runs on the Docker host. Needs the Python docker SDK and requests there.
  - Ports held by processes are found in C(/proc/net/tcp), C(/proc/net/udp) and C(/proc/*/fd); only
    a privileged user sees the processes of other users.
seealso:
  - name: Preflight documentation
    description: How to run the preflight role, read its summary and recover.
    link: https://example.invalid/homeiq/deploy/docs/preflight.md
"""

EXAMPLES = r"""
- name: Check the demo project before deploying it
  homeiq.deploy.preflight_check:
    project_src: /srv/homeiq
    env_files:
      - .env
    profiles:
      - production
    min_free_gb: 10
    influxdb_url: http://127.0.0.1:8086
    influxdb_token_env: INFLUXDB_TOKEN
    home_assistant_url: http://ha.local:8123
    home_assistant_token: "{{ vault_ha_token }}"
    warn:
      - secret_scan
    gates:
      - name: security_tests
        command: pytest -q services/*/tests/test_*security*.py
  register: preflight

- name: Check a stack of domain projects from the repository root
  homeiq.deploy.preflight_check:
    project_src: /srv/homeiq
    projects:
      - name: homeiq-core-platform
        files: [domains/core-platform/compose.yml]
        env_files: [.env]
        profiles: [production]
      - name: homeiq-frontends
        files: [domains/frontends/compose.yml]
        env_files: [.env]
        profiles: [production]
  register: preflight

- name: Accept the current secret-scan findings (writes .homeiq-secrets-baseline.json; commit it)
  homeiq.deploy.preflight_check:
    project_src: /srv/homeiq
    only: [secret_scan]
    secret_scan_write_baseline: true

- name: Only report, never fail
  homeiq.deploy.preflight_check:
    project_src: /srv/homeiq
    fail_on_failure: false
  register: preflight
"""

RETURN = r"""
checks:
  description: One entry per check that ran, in order.
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: Name of the check (C(gate:NAME) for gates).
      type: str
      sample: ports
    project:
      description: The compose project a per-project check judged (with I(projects) only).
      type: str
      sample: homeiq-core-platform
    result:
      description: C(pass), C(warn) (failed, but listed in I(warn)) or C(fail).
      type: str
      sample: fail
    why:
      description: One line a person can act on.
      type: str
      sample: "1 of 7 published ports are taken: 127.0.0.1:8086/tcp (influxdb) is held by process python3 (pid 4242)"
    details:
      description: The items behind the verdict (a port, a finding, a line of output each).
      type: list
      elements: str
  sample:
    - check: engine
      result: pass
      why: Docker Engine 20.10.24 (API 1.41, linux/amd64) answers at unix:///var/run/docker.sock
      details: []
skipped_checks:
  description: Checks that did not run, with why (not configured, or listed in I(skip)).
  returned: always
  type: list
  elements: dict
  sample:
    - check: home_assistant
      why: not configured (home_assistant_url is empty)
counts:
  description: How many checks passed, warned, failed and were skipped.
  returned: always
  type: dict
  sample: {pass: 14, warn: 1, fail: 0, skip: 2}
failed_checks:
  description: Names of the failed checks; with I(projects), a per-project check reads C(NAME [PROJECT]).
  returned: always
  type: list
  elements: str
  sample: [ports, tokens]
warned_checks:
  description: Names of the checks that warned.
  returned: always
  type: list
  elements: str
  sample: [secret_scan]
summary:
  description: The summary as lines, one per check (skipped ones included).
  returned: always
  type: list
  elements: str
  sample:
    - "PASS  engine: Docker Engine 20.10.24 (API 1.41, linux/amd64) answers at unix:///var/run/docker.sock"
    - "FAIL  tokens: INFLUXDB_TOKEN is a known default or placeholder value: set real values"
project_name:
  description: The compose project name the checks used (with I(projects), the names joined by commas).
  returned: always
  type: str
  sample: homeiq-demo
projects:
  description: The names of the projects checked, in order.
  returned: when I(projects) is given
  type: list
  elements: str
  sample: [homeiq-core-platform, homeiq-frontends]
msg:
  description: One line naming the failed checks, or saying all passed.
  returned: always
  type: str
  sample: "preflight: 2 of 16 checks failed (ports, tokens); nothing was built or deployed: fix them and run again"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._preflight import PreflightError, run_preflight
from ansible_collections.homeiq.deploy.plugins.module_utils._stack import STACK_PROJECT_SPEC


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path", required=True),
            project_name=dict(type="str"),
            project_directory=dict(type="path"),
            services=dict(type="list", elements="str", default=[]),
            projects=dict(type="list", elements="dict", default=[], options=STACK_PROJECT_SPEC),
            files=dict(type="list", elements="path", default=[]),
            env_files=dict(type="list", elements="path", default=[]),
            profiles=dict(type="list", elements="str", default=[]),
            environment=dict(type="dict", default={}, no_log=True),
            docker_host=dict(type="str"),
            docker_cli=dict(type="path"),
            only=dict(type="list", elements="str", default=[]),
            skip=dict(type="list", elements="str", default=[]),
            warn=dict(type="list", elements="str", default=[]),
            fail_on_failure=dict(type="bool", default=True),
            compose_min_version=dict(type="str", default="2.21.0"),
            min_free_gb=dict(type="float", default=10),
            disk_paths=dict(type="list", elements="path", default=[]),
            network_hosts=dict(type="list", elements="str", default=[]),
            network_timeout=dict(type="float", default=5),
            required_env_vars=dict(type="list", elements="str", default=[]),
            secret_vars=dict(type="list", elements="str", default=[], no_log=False),
            env_example_files=dict(type="list", elements="path", default=[]),
            placeholder_values=dict(type="list", elements="str", default=[]),
            healthcheck_exempt=dict(type="list", elements="str", default=[]),
            limits_exempt=dict(type="list", elements="str", default=[]),
            home_assistant_url=dict(type="str"),
            home_assistant_token=dict(type="str", no_log=True),
            home_assistant_token_env=dict(type="str", no_log=False),
            influxdb_url=dict(type="str"),
            influxdb_token=dict(type="str", no_log=True),
            influxdb_token_env=dict(type="str", no_log=False),
            influxdb_org=dict(type="str"),
            influxdb_bucket=dict(type="str"),
            http_timeout=dict(type="float", default=10),
            validate_certs=dict(type="bool", default=True),
            secret_scan_paths=dict(type="list", elements="str", default=[], no_log=False),
            secret_scan_exclude=dict(type="list", elements="str", default=[], no_log=False),
            secret_scan_allow=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
                path=dict(type="str"),
                rule=dict(type="str"),
                fingerprint=dict(type="str"),
            )),
            secret_scan_baseline=dict(type="path", default=".homeiq-secrets-baseline.json"),
            secret_scan_write_baseline=dict(type="bool", default=False),
            gates=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                command=dict(type="str", required=True),
                chdir=dict(type="path"),
                timeout=dict(type="int"),
                environment=dict(type="dict", no_log=True),
            )),
            gate_timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    fail_on_failure = params.pop("fail_on_failure")
    params["check_mode"] = module.check_mode
    try:
        result = run_preflight(params)
    except PreflightError as exc:
        module.fail_json(msg=str(exc), changed=False)
    if fail_on_failure and result["failed_checks"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
