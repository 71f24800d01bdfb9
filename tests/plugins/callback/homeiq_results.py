# Test-only callback: writes every task result as one JSON line to $HOMEIQ_RESULTS_FILE,
# so integration tests can assert on `changed`, `failed` and returned values of real runs.
from __future__ import annotations

DOCUMENTATION = r"""
name: homeiq_results
type: aggregate
short_description: Writes task results as JSON lines for the collection's tests
description: Test helper only; not shipped as part of the collection's interface.
requirements: []
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "homeiq_results"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status):
        path = os.environ.get("HOMEIQ_RESULTS_FILE")
        if not path:
            return
        task = result._task
        record = {
            "host": result._host.get_name(),
            "task": task.get_name(),
            "action": task.action,
            "status": status,
            "result": self._clean(result._result),
        }
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")

    @staticmethod
    def _clean(res):
        return {k: v for k, v in res.items() if not k.startswith("_ansible_")}

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
