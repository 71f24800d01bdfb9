"""Runs a module's main() in-process: exit_json and fail_json raise, so a test reads the result."""
from __future__ import annotations

import pytest
from ansible.module_utils import basic


class Exit(Exception):
    """The module called exit_json; args[0] is its result."""


class Fail(Exception):
    """The module called fail_json; args[0] is its result."""


@pytest.fixture
def module_calls(monkeypatch):
    def exit_json(self, **kw):
        raise Exit(kw)

    def fail_json(self, **kw):
        raise Fail(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
