"""The SSH runner: attempts run detached on a GPU server (setsid + nohup) under the same supervisor.

The run never depends on the SSH link: it writes its files in the remote work directory, and every poll opens
(or reopens) a connection and reads them by byte offset. A dropped connection costs one failed poll, nothing more.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import shlex
import time
from pathlib import Path
from typing import Any

from platform_core.connections import get_connection
from platform_core.context import Platform
from platform_core.errors import InvalidInput, RemoteError
from platform_core.runners.base import Runner
from platform_core.runners.ssh import SSHSession, open_session

MAX_MODEL_UPLOAD_BYTES = 2 * 1024**3  # a local model larger than this must already be on the server
STOP_WAIT_S = 45
FACTS_TTL_S = 600


LEADER_START_WINDOW_S = 600  # the trainer (its group's leader) starts within this long of its supervisor


class SSHRunner(Runner):
    kind = "ssh"

    def __init__(self, platform: Platform, connection: str):
        self.platform = platform
        self.profile = get_connection(platform, connection)
        self.location = self.profile["name"]
        self._session: SSHSession | None = None
        self._python: str | None = None
        self._gpus: int | None = None

    # -- connection ----------------------------------------------------------------------------------------------
    @property
    def session(self) -> SSHSession:
        if self._session is None:
            self._session = open_session(self.platform, self.profile["id"])
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _reset(self) -> None:
        self.close()

    def _check(self, script: str, what: str, timeout: float = 60) -> str:
        try:
            return self.session.check(["bash", "-c", script], what, timeout=timeout)
        except RemoteError:
            self._reset()
            raise

    # -- facts ---------------------------------------------------------------------------------------------------
    def workdir(self) -> str:
        return self.session.workdir()

    def outputs_root(self) -> str:
        return f"{self.workdir()}/outputs"

    def python(self) -> str:
        if self._python is None:
            from platform_core.runners.remote_setup import remote_python

            self._python = remote_python(self.session)
        return self._python

    def gpu_count(self) -> int:
        """GPUs on the server (`nvidia-smi -L`), remembered in the settings for 10 minutes so previews stay quick."""
        if self._gpus is None:
            key = f"facts:{self.location}"
            facts = self.platform.store.get_setting(key) or {}
            if time.time() - facts.get("checked_at", 0) < FACTS_TTL_S:
                self._gpus = int(facts.get("gpus", 0))
            else:
                out = self.session.run(["bash", "-c", "nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true"], timeout=30)
                self._gpus = int((out.stdout or "0").strip() or 0)
                self.platform.store.set_setting(key, {"gpus": self._gpus, "checked_at": time.time()})
        return self._gpus

    def has_gpu(self) -> bool:
        return self.gpu_count() > 0

    # -- plans without a connection (form previews) ----------------------------------------------------------------
    def planned_outputs_root(self) -> str:
        return f"{self.profile['workdir'].rstrip('/')}/outputs"

    def planned_python(self) -> str:
        return self.profile.get("python_path") or (
            f"<conda env {self.profile['conda_env']}>/bin/python" if self.profile.get("conda_env") else "python3"
        )

    def planned_kit(self) -> str:
        from platform_core.jobs.layout import kit_hash

        return f"{self.profile['workdir'].rstrip('/')}/.platform/kit-{kit_hash()}"

    def planned_dataset_path(self, local_path) -> str:
        return f"{self.profile['workdir'].rstrip('/')}/datasets/{Path(local_path).name}"

    # -- files ---------------------------------------------------------------------------------------------------
    def ensure_kit(self) -> str:
        from platform_core.jobs.layout import KIT_FILES, kit_hash

        kit = f"{self.workdir()}/.platform/kit-{kit_hash()}"
        if self.session.file_size(f"{kit}/.complete") is None:
            for name, source in KIT_FILES.items():
                self.session.put_atomic(str(source), f"{kit}/{name}")
            self.write_files(kit, {".complete": "ok\n"})
        return kit

    def write_files(self, directory: str, files: dict[str, str]) -> None:
        self.session.mkdirs(directory)
        sftp = self.session.sftp()
        for name, content in files.items():
            target = posixpath.join(self.session.expand(directory), name)
            tmp = f"{target}.tmp-{int(time.time() * 1000)}"
            try:
                sftp.putfo(io.BytesIO(content.encode("utf-8")), tmp)
                sftp.posix_rename(tmp, target)
            except OSError as exc:
                self._reset()
                raise RemoteError(f"writing {target} on {self.session.describe()} failed: {exc}") from exc

    def model_path(self, model: dict[str, Any]) -> str:
        if model["location"] == self.location:
            path = model["path"]
            self._check(
                f"test -f {shlex.quote(self.session.expand(path))}/config.json",
                f"checking that model {model['name']} is at {path}",
            )
            return self.session.expand(path)
        if model["location"] != "local":
            raise InvalidInput(f"model {model['name']!r} is on {model['location']}, not on {self.location}")
        return self._upload_model(Path(model["path"]), model["name"])

    def _upload_model(self, local: Path, name: str) -> str:
        files = sorted(p for p in local.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        if total > MAX_MODEL_UPLOAD_BYTES:
            raise InvalidInput(
                f"model {name!r} ({total / 2**30:.1f} GiB) is only on this machine; copy it to the "
                f"server (e.g. {self.profile['workdir']}/models) and register it there"
            )
        digest = hashlib.sha256()
        for path in files:
            digest.update(f"{path.relative_to(local)}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
        remote = f"{self.workdir()}/models/{local.name}-{digest.hexdigest()[:10]}"
        if self.session.file_size(f"{remote}/.complete") is None:
            staging = f"{remote}.partial"
            self.session.run(["rm", "-rf", "--", staging], timeout=60)
            for path in files:
                self.session.put_atomic(str(path), f"{staging}/{path.relative_to(local).as_posix()}")
            self.write_files(staging, {".complete": "ok\n"})
            self._check(
                f"rm -rf -- {shlex.quote(remote)} && mv -- {shlex.quote(staging)} {shlex.quote(remote)}",
                "placing the uploaded model",
            )
        return remote

    def dataset_path(self, dataset_id: int, data_format: str) -> tuple[str, int]:
        from platform_core.datasets.sync import ensure_synced
        from platform_core.jobs.data import converted_dataset

        _, rows = converted_dataset(self.platform, dataset_id, data_format)
        remote = ensure_synced(self.platform, dataset_id, self.profile["id"], kind=data_format, session=self.session)
        return remote, rows

    def read_bytes(self, path: str, offset: int = 0, limit: int | None = None) -> bytes:
        try:
            return self.session.read_from(path, offset, limit)
        except RemoteError:
            self._reset()
            raise

    def file_size(self, path: str) -> int | None:
        try:
            return self.session.file_size(path)
        except RemoteError:
            self._reset()
            raise

    def list_dir(self, path: str) -> list[tuple[str, bool, int]]:
        script = (
            f'd={shlex.quote(path)}; [ -d "$d" ] || exit 0; for e in "$d"/*; do [ -e "$e" ] || continue; '
            'if [ -d "$e" ]; then k=d; else k=f; fi; '
            'printf "%s\\t%s\\t%s\\n" "$(basename "$e")" "$k" "$(du -sb "$e" | cut -f1)"; done'
        )
        out = self._check(script, f"listing {path}")
        entries = []
        for line in out.splitlines():
            name, kind, size = line.split("\t")
            entries.append((name, kind == "d", int(size or 0)))
        return entries

    # -- processes -----------------------------------------------------------------------------------------------
    def launch(self, attempt_dir: str, run_spec: dict[str, Any], run_id: int) -> dict[str, Any]:
        kit = self.ensure_kit()
        self.write_files(attempt_dir, {"run.json": json.dumps(run_spec, indent=2)})
        q = shlex.quote
        # `;` before setsid (an && list would be backgrounded as a whole), and every stream redirected, so the
        # channel closes at once and the job keeps running when this connection goes away.
        script = (
            f"cd {q(attempt_dir)}; setsid nohup {q(self.python())} {q(kit + '/supervisor.py')} "
            f"--run-dir {q(attempt_dir)} > {q(attempt_dir + '/supervisor.log')} 2>&1 < /dev/null & echo $!"
        )
        pid = int(self._check(script, "starting the job supervisor", timeout=30).strip().splitlines()[-1])
        return {"pid": pid, "host": self.profile["host"]}

    def _pid_alive(self, pid: int | None) -> bool:
        if not pid:
            return False
        out = self.session.run(["ps", "-o", "stat=", "-p", str(int(pid))], timeout=20)
        state = (out.stdout or "").strip()
        return bool(state) and not state.startswith("Z")  # zombies count as dead

    def alive(self, run: dict[str, Any]) -> bool:
        try:
            return self._pid_alive(run.get("pid"))
        except RemoteError:
            self._reset()
            raise

    def _group_members(self, pgid: int | None, since: float | None = None) -> list[int]:
        """Live (non-zombie) processes of a process group on the server, of the SSH user only; with `since` (the
        supervisor's start, server clock), only processes started after it: a pgid reused after a reboot is not ours.
        """
        if not pgid:
            return []
        out = self.session.run(
            ["sh", "-c", 'date +%s; ps -o pid=,pgid=,stat=,etimes= -u "$(id -u)"'], timeout=20
        )  # fixed script, no user input
        lines = (out.stdout or "").splitlines()
        try:
            now = float(lines[0])
        except (IndexError, ValueError):
            return []
        members = []
        for line in lines[1:]:
            parts = line.split()
            if len(parts) < 4 or parts[1] != str(int(pgid)) or parts[2].startswith("Z") or not parts[3].isdigit():
                continue
            started = now - int(parts[3])
            if since is not None:
                if started < since - 2:
                    continue  # older than the run: the pgid belongs to someone else now
                if int(parts[0]) == int(pgid) and started > since + LEADER_START_WINDOW_S:
                    return []  # the group's leader started long after the run (a pid reused after a reboot)
            members.append(int(parts[0]))
        return members

    def _wait_gone(self, pid: int | None, pgid: int | None, since: float | None, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            if not self._pid_alive(pid) and not self._group_members(pgid, since):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)

    def stop(self, run: dict[str, Any]) -> bool:
        """Stop the supervisor (it terminates the trainer), then verify the trainer's process group is gone too.

        The trainer runs in its own session (pgid in supervisor.json). If the supervisor died without taking it
        along (killed, OOM) or the group outlives it, the group is killed here and `stop_note` says so.
        """
        self.stop_note = ""
        pid = run.get("pid")
        status = self.read_json(f"{run['run_dir']}/supervisor.json") or {}
        # The trainer's group is only ours while the supervisor's record says the run is on.
        pgid = status.get("pgid") if status.get("state") in ("starting", "running") else None
        since = status.get("started_at")
        if self._pid_alive(pid):
            self.session.run(["kill", "-TERM", str(int(pid))], timeout=20)
            if self._wait_gone(pid, pgid, since, STOP_WAIT_S):
                return True
        elif not self._group_members(pgid, since):
            return True
        survivors = self._group_members(pgid, since)
        for target in (pgid, pid):
            if target:
                self.session.run(["kill", "-KILL", "--", f"-{int(target)}"], timeout=20)
                self.session.run(["kill", "-KILL", str(int(target))], timeout=20)
        gone = self._wait_gone(pid, pgid, since, 10)
        if survivors:
            pids = ", ".join(map(str, survivors))
            self.stop_note = (
                f"trainer processes {pids} (group {pgid}) outlived the supervisor and were killed"
                if gone
                else f"trainer processes of group {pgid} survived SIGKILL on {self.session.describe()}"
            )
        return gone
