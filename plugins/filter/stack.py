# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for stacks of compose projects: what the deploy, pipeline and rollback roles decide.

Each filter is documented in the YAML file of its name beside this one; the logic lives in
plugins/module_utils/_stack_plan.py.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.homeiq.deploy.plugins.module_utils import _stack_plan as plan


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except plan.StackError as exc:
            raise AnsibleFilterError(str(exc)) from None
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


def compose_target(projects, project_name="", files=None, env_files=None, profiles=None, services=None, project_directory=""):
    return plan.compose_target(projects, project_name=project_name, files=files, env_files=env_files, profiles=profiles,
                               services=services, project_directory=project_directory)


def compose_logs_commands(failing, target, tail=200, prefix=""):
    return plan.logs_commands(failing, target, tail=tail, prefix=prefix)


def deploy_summary(result, name="", check_mode=False):
    return plan.summary_lines(result, name=name, check_mode=bool(check_mode))


def stack_changed_projects(result):
    return plan.changed_projects(result)


def stack_replaced_images(result):
    return plan.replaced_images(result)


def stack_failing_services(checks, current_images=None, previous_images=None, project=""):
    return plan.failing_services(checks, current_images, previous_images, project=project)


def stack_images_nested(images):
    return plan.is_stack_images(images)


def stack_services_count(images):
    return plan.services_count(images)


def stack_restore_plan(images, target=None):
    return plan.restore_plan(images, target)


class FilterModule:
    """homeiq.deploy filters for stacks of compose projects."""

    def filters(self):
        published = (compose_target, compose_logs_commands, deploy_summary, stack_changed_projects, stack_failing_services,
                     stack_images_nested, stack_replaced_images, stack_restore_plan, stack_services_count)
        return {f.__name__: _wrap(f) for f in published}
