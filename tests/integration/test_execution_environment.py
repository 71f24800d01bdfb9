"""execution-environment.yml: `ansible-builder create` succeeds offline and the build context's
requirements are the collection's own (requirements.txt, the pinned ansible-core and
ansible-runner, galaxy.yml's collection dependencies)."""
from __future__ import annotations

import re
import subprocess

import yaml

from tests.conftest import BIN, REPO


def pins(path):
    return dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)$", path.read_text(), re.M))


def test_ansible_builder_create_offline(tmp_path):
    context = tmp_path / "context"
    # No proxy, no index: create must not need the network.
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8",
           "PIP_NO_INDEX": "1", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context),
                           "--output-filename", "Containerfile"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    # The collection's runtime requirements, byte for byte.
    assert (context / "_build" / "requirements.txt").read_text() == (REPO / "requirements.txt").read_text()
    assert (context / "_build" / "bindep.txt").read_text() == (REPO / "awx" / "bindep.txt").read_text()
    # ansible-core and ansible-runner as requirements-dev.txt pins them.
    dev = pins(REPO / "requirements-dev.txt")
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]+)"', containerfile, re.M).group(1).split()
    assert sorted(refs) == sorted([f"ansible-core=={dev['ansible-core']}", f"ansible-runner=={dev['ansible-runner']}"])
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile


def test_collection_requirements_match_galaxy_yml():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    deps = yaml.safe_load((REPO / "galaxy.yml").read_text()).get("dependencies") or {}
    galaxy = ee["dependencies"].get("galaxy")
    if not deps:
        # Nothing to install: playbooks use ansible.builtin, and homeiq.deploy comes from the project.
        assert galaxy is None
    else:
        wanted = yaml.safe_load((REPO / galaxy).read_text())["collections"]
        assert {c["name"]: c.get("version", "*") for c in wanted} == deps
    assert ee["dependencies"]["python"] == "requirements.txt"
    assert ee["version"] == 3
