"""Things the preflight integration tests start and stop: fake credentials, a tree with planted
secrets, a tmpfs, a process holding a port, a compose project holding a port."""
from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "compose"
SECRETS_TREE = HERE / "secrets_tree"
HOMEIQ_TREE = HERE / "homeiq_tree"
ALNUM = string.ascii_letters + string.digits


def rand(n, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _i in range(n))


def fake_jwt():
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return ".".join([part({"alg": "HS256", "typ": "JWT"}), part({"iss": rand(32), "iat": 1700000000}), rand(43, ALNUM + "-_")])


def planted_values():
    """Fresh fake credentials, one per marker of the secrets tree."""
    return {
        "GITHUB_TOKEN": "ghp_" + rand(36),
        "DB_PASSWORD": "Pw-" + rand(17),
        "YAML_PASSWORD": "Yp" + rand(18),
        "AWS_KEY_ID": "AKIA" + rand(16, string.ascii_uppercase + string.digits),
        "KEY_BEGIN": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "KEY_LINE_1": base64.b64encode(secrets.token_bytes(48)).decode(),
        "KEY_LINE_2": base64.b64encode(secrets.token_bytes(48)).decode(),
        "KEY_END": "-----END RSA " + "PRIVATE KEY-----",
        "HA_JWT": fake_jwt(),
        "SLACK_TOKEN": "xoxb-" + rand(12, string.digits) + "-" + rand(24),
        "URL_PASSWORD": "Up" + rand(14),
    }


# Where each planted secret must be reported: (file, line, rule).
EXPECTED_FINDINGS = {
    ("app/client.py", 4, "github-token"),
    ("app/client.py", 6, "assigned-secret"),
    ("config/settings.yaml", 4, "assigned-secret"),
    ("config/cloud.json", 3, "aws-access-key-id"),
    ("deploy/id_rsa", 1, "private-key (rsa)"),
    ("web/ha.js", 2, "jwt"),
    (".env.example", 2, "slack-token"),
    ("compose.yaml", 6, "url-credentials"),
}


# The secret values a person could misuse (the key's BEGIN/END lines are not secret).
SECRET_KEYS = ("GITHUB_TOKEN", "DB_PASSWORD", "YAML_PASSWORD", "AWS_KEY_ID", "KEY_LINE_1", "KEY_LINE_2",
               "HA_JWT", "SLACK_TOKEN", "URL_PASSWORD")


def materialize_secrets_tree(dst, values=None):
    """Copies the planted tree to dst with fresh values; returns the values."""
    values = values or planted_values()
    dst = Path(dst)
    for src in SECRETS_TREE.rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(SECRETS_TREE)
        target = dst / (str(rel)[: -len(".tmpl")] if src.name.endswith(".tmpl") else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        assert not src.name.endswith(".tmpl") or "@@" not in text.replace("@@@", "@"), f"unreplaced marker in {rel}"
        target.write_text(text)
    return values


def materialize_homeiq_tree(dst, env=None, values=None):
    """Copies the HomeIQ-shaped tree to dst with fresh literal defaults, and writes its .env
    (with a UTF-8 BOM when env has the key "\ufeff"). Returns the literal defaults."""
    values = values or {"PG_DEFAULT": "pg-" + rand(20), "SESSION_DEFAULT": "ss-" + rand(20), "ADMIN_DEFAULT": "ad-" + rand(20)}
    dst = Path(dst)
    for src in HOMEIQ_TREE.rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(HOMEIQ_TREE)
        target = dst / (str(rel)[: -len(".tmpl")] if src.name.endswith(".tmpl") else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        assert not src.name.endswith(".tmpl") or "@@" not in text, f"unreplaced marker in {rel}"
        target.write_text(text)
    if env is not None:
        env = dict(env)
        bom = "\ufeff" if env.pop("\ufeff", None) is not None else ""
        (dst / ".env").write_text(bom + "".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    return values


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tmpfs(size="32m"):
    """A tmpfs of `size` mounted on a fresh folder; unmounted and removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="preflight-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def port_holder(port, host="127.0.0.1"):
    """A real process listening on host:port; yields (pid, command name)."""
    code = ("import socket,sys,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(({host!r}, {port})); s.listen(8); print('ready', flush=True); time.sleep(900)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        yield proc.pid, comm
    finally:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def compose_up(src, env_file, name=None):
    """`docker compose up -d` of a fixture project under a unique name; always brought down."""
    name = name or "pf" + uuid.uuid4().hex[:10]
    base = ["docker", "compose", "--project-directory", str(src), "-p", name, "--env-file", str(env_file)]
    try:
        subprocess.run(base + ["up", "-d", "--quiet-pull"], check=True, capture_output=True, timeout=120)
        yield name
    finally:
        subprocess.run(base + ["down", "--remove-orphans", "--timeout", "1"], capture_output=True, timeout=120, check=False)


def load_root_conftest():
    """The repository's tests/conftest.py (run_playbook, REPO) under a name of its own."""
    import importlib.util  # pylint: disable=import-outside-toplevel

    path = HERE.parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("homeiq_root_conftest", path)
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_env(path, values):
    Path(path).write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return str(path)


def local_inventory(path, hosts=("localhost",)):
    """A YAML inventory of hosts that are all this machine, run with the controller's Python."""
    host_vars = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    Path(path).write_text(json.dumps({"all": {"hosts": {name: dict(host_vars) for name in hosts}}}))
    return str(path)


def secret_values_in(text, values):
    """The names of the values that appear in text (the tests want none)."""
    return sorted(k for k, v in values.items() if v and v in text)
