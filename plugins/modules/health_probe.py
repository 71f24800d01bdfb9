#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: health_probe
short_description: Probe many HTTP health endpoints at once and judge each one
version_added: 0.1.0
description:
  - Sends one request to every target at the same time (up to O(concurrency) at once) and
    judges each answer. A target is C(healthy) when its status code is one of
    O(targets[].expected_status), it answered within O(targets[].max_latency_ms), its
    O(targets[].json_query) or O(targets[].body_contains) assertion holds, and its
    O(targets[].container), if named, is running and not unhealthy.
  - Targets that are not yet healthy are probed again after O(retry_delay) seconds, up to
    O(retries) more times; nothing new starts after the overall O(deadline).
  - The report has the shape the runbook's C(health-check.sh --json) promised (C(timestamp),
    C(overall_status), C(summary), C(services)), so its consumers keep working. Written to
    O(report_path), the file holds that JSON and nothing else, replaced atomically.
  - C(overall_status) is C(pass) when every target is healthy, C(degraded) when only
    non-critical targets are not, and C(fail) when a critical target is not. O(fail_on)
    decides which of those fails the task.
  - Request headers (tokens) are never part of the output.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - requests
  - jmespath (for O(targets[].json_query))
  - docker (the Python SDK, for O(targets[].container))
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Probes are sent in check mode too (they are meant to be safe requests); the report file is not written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Probing changes nothing; C(changed) is always false. The report file is an output, rewritten on every run.
options:
  targets:
    description: The endpoints to probe.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Service name, unique; it names the target in the report.
        type: str
        required: true
      url:
        description: URL to request (V(http) or V(https)). A password in the URL is masked in the report.
        type: str
        required: true
      critical:
        description: Whether a failure of this target makes the overall status C(fail) rather than C(degraded).
        type: bool
        default: false
      method:
        description: HTTP method.
        type: str
        default: GET
      headers:
        description: Request headers, for example C(Authorization). Never shown in output or logs.
        type: dict
      body:
        description: Request body; a dict or list is sent as JSON, anything else as text.
        type: raw
      expected_status:
        description: Status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      max_latency_ms:
        description: Longest acceptable time in milliseconds from sending the request to reading the body.
        type: int
        default: 500
      json_query:
        description:
          - A JMESPath expression evaluated on the JSON body. Without O(targets[].json_equals) its value must be
            true in JMESPath terms (not null, false, or an empty string, list or object).
          - A body that is not JSON makes the target unhealthy.
        type: str
      json_equals:
        description: The value O(targets[].json_query) must give.
        type: raw
      body_contains:
        description: Text the body must contain.
        type: str
      container:
        description:
          - Name or ID of a container that must be running and not unhealthy (a container whose
            healthcheck is still C(starting) is not healthy yet). A Compose service name is accepted
            when exactly one container carries it.
        type: str
      follow_redirects:
        description:
          - Follow redirects and judge the final answer. By default the first answer is judged,
            so a health endpoint that redirects (for example to a login page) is unhealthy unless
            its 3xx status is expected.
        type: bool
        default: false
  concurrency:
    description: Most requests in flight at once.
    type: int
    default: 16
  timeout:
    description: Seconds one request may take (connecting and reading), capped by what is left of O(deadline).
    type: float
    default: 10
  retries:
    description: How many more times a target that is not healthy is probed.
    type: int
    default: 3
  retry_delay:
    description: Seconds between the attempts of one target.
    type: float
    default: 2
  deadline:
    description:
      - Overall seconds for the whole probe. No attempt starts after it and running ones are cut
        to it; targets never probed are reported as C(error). No limit when unset.
    type: float
  critical_only:
    description: Probe only the targets marked critical.
    type: bool
    default: false
  compose_project:
    description:
      - Also judge every container of this Compose project (by its label C(com.docker.compose.project)). Each must
        be running and not unhealthy, or have run once and exited with code 0 (a one-shot container).
      - Each container is one more entry in the report, named after the container, with a null C(url).
        A project without containers is one failing entry.
      - A list names several projects (the projects of a stack), each judged so.
    type: list
    elements: str
  compose_project_critical:
    description: Whether the containers of O(compose_project) count as critical.
    type: bool
    default: true
  fail_on:
    description:
      - V(critical) fails the task when the overall status is C(fail), V(any) when it is not C(pass),
        V(never) never (read RV(overall_status) instead).
    type: str
    choices: [critical, any, never]
    default: critical
  report_path:
    description: Write the JSON report to this file (directories are created). Not written in check mode.
    type: path
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  max_body_bytes:
    description:
      - Most bytes of a body read. A larger body is not read further; its target stays healthy when
        it has no body assertion and becomes unhealthy when it has one.
    type: int
    default: 1048576
notes:
  - Requests go out from the host the task runs on; delegate to the Docker host to probe
    ports published only on its loopback interface.
seealso:
  - module: homeiq.deploy.route_order_check
"""

EXAMPLES = r"""
- name: Probe the core services and keep the report
  homeiq.deploy.health_probe:
    targets:
      - name: data-api
        url: http://127.0.0.1:8006/health
        critical: true
        json_query: status
        json_equals: healthy
        container: homeiq-data-api
      - name: admin-api metrics
        url: http://127.0.0.1:8004/api/v1/stats
        headers:
          Authorization: "Bearer {{ admin_api_token }}"
        max_latency_ms: 1000
      - name: dashboard
        url: http://127.0.0.1:3000/
        body_contains: HomeIQ
    deadline: 60
    report_path: /var/lib/homeiq/reports/health.json
  register: health

- name: Only the critical services, never failing the task
  homeiq.deploy.health_probe:
    targets: "{{ verify_services }}"
    critical_only: true
    fail_on: never
  register: critical_health
"""

RETURN = r"""
timestamp:
  description: When the probe finished, UTC, ISO 8601.
  returned: always
  type: str
  sample: "2025-11-26T23:10:00Z"
overall_status:
  description: V(pass), V(degraded) (only non-critical targets failed) or V(fail) (a critical target failed).
  returned: always
  type: str
  sample: degraded
summary:
  description: Counts.
  returned: always
  type: dict
  contains:
    total:
      description: Targets probed.
      type: int
    passed:
      description: Healthy targets.
      type: int
    failed:
      description: Targets not healthy.
      type: int
    critical_passed:
      description: Healthy critical targets.
      type: int
    critical_failed:
      description: Critical targets not healthy.
      type: int
  sample: {total: 7, passed: 6, failed: 1, critical_passed: 5, critical_failed: 0}
services:
  description: One entry per target, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Target name.
      type: str
    url:
      description: Target URL (a password in it masked); null for the containers of O(compose_project).
      type: str
    status:
      description: V(healthy), V(unhealthy) (it answered, but the answer or its container failed a check) or V(error) (no answer).
      type: str
    status_code:
      description: HTTP status of the last attempt, null without an answer.
      type: int
    response_time_ms:
      description: Milliseconds of the last attempt.
      type: float
    critical:
      description: Whether the target is critical.
      type: bool
    attempts:
      description: Attempts made.
      type: int
    error:
      description: Why the target is not healthy, null when it is.
      type: str
    container_status:
      description: State of the named container, for example V(running (healthy)) or V(exited); null when none is named.
      type: str
  sample:
    - name: data-api
      url: http://127.0.0.1:8006/health
      status: healthy
      status_code: 200
      response_time_ms: 3.2
      critical: true
      attempts: 1
      error: null
      container_status: running (healthy)
failed_services:
  description: Names of the targets that are not healthy.
  returned: always
  type: list
  elements: str
  sample: [weather-api]
critical_failed_services:
  description: Names of the critical targets that are not healthy.
  returned: always
  type: list
  elements: str
  sample: []
report_path:
  description: Absolute path of the report file (where it would be written, in check mode); null without O(report_path).
  returned: always
  type: str
report_written:
  description: Whether the report file was written.
  returned: always
  type: bool
elapsed_ms:
  description: Wall time of the whole probe in milliseconds.
  returned: always
  type: float
  sample: 412.7
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._probe import ProbeInputError, run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                url=dict(type="str", required=True),
                critical=dict(type="bool", default=False),
                method=dict(type="str", default="GET"),
                headers=dict(type="dict", no_log=True),
                body=dict(type="raw"),
                expected_status=dict(type="list", elements="int", default=[200]),
                max_latency_ms=dict(type="int", default=500),
                json_query=dict(type="str"),
                json_equals=dict(type="raw"),
                body_contains=dict(type="str"),
                container=dict(type="str"),
                follow_redirects=dict(type="bool", default=False),
            )),
            concurrency=dict(type="int", default=16),
            timeout=dict(type="float", default=10),
            retries=dict(type="int", default=3),
            retry_delay=dict(type="float", default=2),
            deadline=dict(type="float"),
            critical_only=dict(type="bool", default=False),
            compose_project=dict(type="list", elements="str"),
            compose_project_critical=dict(type="bool", default=True),
            fail_on=dict(type="str", default="critical", choices=["critical", "any", "never"]),
            report_path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            max_body_bytes=dict(type="int", default=1048576),
        ),
        supports_check_mode=True,
    )
    try:
        result, failure = run(module.params, check_mode=module.check_mode)
    except ProbeInputError as exc:
        module.fail_json(msg=str(exc))
    if failure:
        module.fail_json(msg=failure, changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
