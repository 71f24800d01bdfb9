# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the verify role: the checks to run, the compose projects to judge, and the outcome.

Documented in verify_targets.yml, verify_project_names.yml and verify_outcome.yml beside this file.
The decisions live in module_utils/_verify_targets.py.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.homeiq.deploy.plugins.module_utils._verify_targets import (
    VerifyInputError, browser_findings, nginx_findings, outcome, plan_or_error, project_names, route_findings)


def verify_targets(catalogues, scheme="http", host="127.0.0.1", browser_host=None, max_latency_ms=500):
    if not isinstance(catalogues, dict):
        raise AnsibleFilterError("verify_targets expects a dict of catalogues (services, functional_checks, nginx_checks, "
                                 "auth_checks, browser_checks)")
    unknown = sorted(set(catalogues) - {"services", "functional_checks", "nginx_checks", "auth_checks", "browser_checks"})
    if unknown:
        raise AnsibleFilterError("verify_targets: unknown catalogue %s" % ", ".join(unknown))
    try:
        max_latency_ms = int(max_latency_ms)
    except (TypeError, ValueError):
        raise AnsibleFilterError("verify_max_latency_ms %r is not a number of milliseconds: set a whole number such as 500"
                                 % (max_latency_ms,)) from None
    return plan_or_error(scheme=scheme, host=host, browser_host=browser_host or host,
                         max_latency_ms=max_latency_ms, **catalogues)


def verify_project_names(deploy_projects, project_name=""):
    try:
        return project_names(deploy_projects, project_name or "")
    except VerifyInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


def verify_outcome(health_services, routes=None, nginx=None, browser=None):
    route_list = route_findings(routes)
    nginx_list = nginx_findings(nginx)
    browser_list = browser_findings(browser)
    result = outcome(health_services, routes=route_list, nginx=nginx_list, browser=browser_list)
    result.update(routes=route_list, nginx=nginx_list, browser=browser_list)
    return result


class FilterModule:
    def filters(self):
        return {
            "verify_targets": verify_targets,
            "verify_project_names": verify_project_names,
            "verify_outcome": verify_outcome,
        }
