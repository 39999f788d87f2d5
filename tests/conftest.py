"""Shared fixtures: a fresh workspace per test, the demo kit built once, and a real sshd on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def platform(tmp_path, monkeypatch):
    """A Platform on an empty workspace in tmp_path (PLATFORM_HOME points there; no secret key in the env)."""
    from platform_core.context import get_platform, reset_platforms

    home = tmp_path / "ws"
    monkeypatch.setenv("PLATFORM_HOME", str(home))
    monkeypatch.delenv("PLATFORM_SECRET_KEY", raising=False)
    reset_platforms()
    yield get_platform(home)
    reset_platforms()


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory) -> Path:
    """The demo model, built once per test session (tests must not modify it)."""
    from platform_core.workspace.demo import build_model

    return build_model(tmp_path_factory.mktemp("demo") / "demo-qwen2-tiny")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SSHServer:
    """A real OpenSSH server on 127.0.0.1 with a test user that has a password and an authorized key."""

    user = "platformtest"
    password = "s3cret-Pa55-word"

    def __init__(self, lab: Path):
        self.lab = lab
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.client_key = lab / "id_ed25519"
        self.host_key = lab / "ssh_host_ed25519_key"

    @property
    def home(self) -> Path:
        return Path(f"/home/{self.user}")

    def setup(self) -> None:
        if not Path("/usr/sbin/sshd").exists():
            pytest.fail("openssh-server is not installed (make test installs it: scripts/install_system_deps.sh)")
        if os.geteuid() != 0:
            pytest.fail("the sshd fixture needs root to create its test user")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        if subprocess.run(["id", self.user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", self.user], check=True)
        subprocess.run(["chpasswd"], input=f"{self.user}:{self.password}\n", text=True, check=True)
        ssh_dir = self.home / ".ssh"
        subprocess.run(["install", "-d", "-m", "700", "-o", self.user, "-g", self.user, str(ssh_dir)], check=True)
        subprocess.run(
            [
                "install",
                "-m",
                "600",
                "-o",
                self.user,
                "-g",
                self.user,
                str(self.client_key) + ".pub",
                str(ssh_dir / "authorized_keys"),
            ],
            check=True,
        )
        # root logs in with the same key, from a file in the lab (root's own ~/.ssh is left alone): the "GPU
        # server" of the runner tests, whose Python can read this checkout's venv wherever CI cloned it. The lab
        # lies under /tmp (mode 1777), which StrictModes would refuse, so this throwaway sshd runs without it.
        root_keys = self.lab / "authorized_keys_root"
        root_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        root_keys.chmod(0o600)
        self.start()

    def start(self) -> None:
        for _attempt in range(5):
            self.port = free_port()
            config = self.lab / "sshd_config"
            config.write_text(
                f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {self.host_key}\nPidFile {self.lab}/sshd.pid\n"
                f"AuthorizedKeysFile .ssh/authorized_keys {self.lab}/authorized_keys_%u\n"
                "PubkeyAuthentication yes\nPasswordAuthentication yes\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n"
                f"AllowUsers {self.user} root\nStrictModes no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n"
                "MaxStartups 100\nMaxSessions 50\n"
            )
            subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], check=True)
            self.proc = subprocess.Popen(
                ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=open(self.lab / "sshd.log", "ab")
            )
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                        if sock.recv(16).startswith(b"SSH-2.0-"):
                            return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        pytest.fail("could not start sshd")

    def host_key_line(self) -> str:
        return " ".join((self.host_key.with_suffix(".pub")).read_text().split()[:2])

    def drop_connections(self) -> None:
        """Kill the per-connection sshd processes (a real dropped link; the listener stays)."""
        if self.proc is None:
            return
        out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        for line in out.splitlines():
            pid, ppid, args = line.strip().split(None, 2)
            if int(ppid) == self.proc.pid or (self.user in args and args.startswith("sshd")):
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        if self.proc is not None:
            self.drop_connections()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def cleanup_user_files(self) -> None:
        subprocess.run(["pkill", "-9", "-u", self.user], capture_output=True)
        for child in self.home.iterdir() if self.home.exists() else []:
            if child.name not in (".ssh", ".bashrc", ".profile", ".bash_logout"):
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd for the whole session (Debian's openssh-server, started without systemd)."""
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    server.setup()
    yield server
    server.stop()
    server.cleanup_user_files()


@pytest.fixture
def ssh_profile(platform, sshd):
    """A stored password profile for the sshd test user, with its host key trusted; returns the profile name."""
    from platform_core.connections import add_connection, trust_host_key

    sshd.cleanup_user_files()
    add_connection(
        platform, "lab", "127.0.0.1", sshd.user, port=sshd.port, password=sshd.password, workdir="~/verl_jobs"
    )
    trust_host_key(platform, "lab", sshd.host_key_line())
    return "lab"


@pytest.fixture(scope="session")
def demo_workspace_template(tmp_path_factory) -> Path:
    """A workspace with the demo kit built once (model, datasets, reward model, specs); copy it, never modify it."""
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("demo-template") / "ws"
    env = {**os.environ, "PLATFORM_HOME": str(home)}
    env.pop("PLATFORM_SECRET_KEY", None)
    out = subprocess.run(
        [sys.executable, "-m", "platform_core", "demo", "init", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return home


@pytest.fixture
def demo_platform(tmp_path, monkeypatch, demo_workspace_template):
    """A Platform on a fresh copy of the demo workspace (paths inside the store are rewritten to the copy)."""
    from platform_core.context import get_platform, reset_platforms

    home = tmp_path / "ws"
    shutil.copytree(demo_workspace_template, home, symlinks=True)
    monkeypatch.setenv("PLATFORM_HOME", str(home))
    monkeypatch.delenv("PLATFORM_SECRET_KEY", raising=False)
    reset_platforms()
    platform = get_platform(home)
    old, new = str(demo_workspace_template), str(home)
    with platform.store.transaction() as conn:
        conn.execute("UPDATE models SET path = replace(path, ?, ?)", (old, new))
        conn.execute("UPDATE datasets SET path = replace(path, ?, ?)", (old, new))
    for spec in (home / "demo" / "specs").glob("*.yaml"):
        spec.write_text(spec.read_text().replace(old, new))
    yield platform
    _stop_leftover_jobs(platform)
    reset_platforms()


def _stop_leftover_jobs(platform) -> None:
    """Tests must not leave trainers running (CPU for the next tests)."""
    from platform_core.jobs.service import ACTIVE_STATES, stop_job

    for job in platform.store.find("jobs"):
        if job["state"] in ACTIVE_STATES:
            try:
                stop_job(platform, job["id"])
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need an NVIDIA GPU: on a machine without one they are deselected (not skipped), so a
    custom -m expression cannot pull them in by accident. Run them with `pytest -m gpu` on a GPU machine."""
    if shutil.which("nvidia-smi"):
        return
    kept = [item for item in items if "gpu" not in item.keywords]
    deselected = [item for item in items if "gpu" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
