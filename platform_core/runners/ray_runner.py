"""The Ray runner: the same supervised attempt, submitted to an existing Ray cluster with Ray's job API.

The entrypoint is the platform's supervisor, so a Ray job writes the same files as a local run. The run directory
must be visible to the cluster node that runs the entrypoint (a shared file system, or a cluster on this machine
such as `ray start --head`); status and stop go through Ray's JobSubmissionClient.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, RemoteError
from platform_core.runners.local import LocalRunner

FINAL_RAY_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


class RayRunner(LocalRunner):
    kind = "ray"

    def __init__(self, platform: Platform, address: str):
        super().__init__(platform)
        if not address:
            raise InvalidInput("Ray address: set the cluster's job address in Settings (e.g. http://head:8265)")
        self.address = address
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as exc:  # noqa: BLE001 - connection errors come in many types
                raise RemoteError(f"cannot reach the Ray cluster at {self.address}: {exc}") from exc
        return self._client

    def gpu_count(self) -> int:
        """GPUs the cluster reports through its dashboard (0 when it reports none)."""
        import json
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.address.rstrip('/')}/nodes?view=summary", timeout=5) as response:
                summary = json.load(response)["data"]["summary"]
        except Exception as exc:  # noqa: BLE001 - a dashboard without this endpoint, or unreachable
            raise RemoteError(f"cannot read the Ray cluster's resources from {self.address}: {exc}") from exc
        return int(sum((node.get("raylet") or {}).get("resourcesTotal", {}).get("GPU", 0) for node in summary))

    def launch(self, attempt_dir: str, run_spec: dict[str, Any], run_id: int) -> dict[str, Any]:
        import json

        kit = self.ensure_kit()
        self.write_files(attempt_dir, {"run.json": json.dumps(run_spec, indent=2)})
        submission_id = f"platform-run-{run_id}-{int(time.time())}"
        entrypoint = shlex.join(
            [run_spec.get("python") or self.python(), f"{kit}/supervisor.py", "--run-dir", attempt_dir]
        )
        try:
            self.client.submit_job(
                entrypoint=entrypoint, submission_id=submission_id, metadata={"platform_run": str(run_id)}
            )
        except Exception as exc:  # noqa: BLE001
            raise RemoteError(f"Ray refused the job: {exc}") from exc
        return {"pid": None, "host": self.address, "remote": {"submission_id": submission_id}}

    def _status(self, run: dict[str, Any]) -> str:
        submission_id = (run.get("remote") or {}).get("submission_id")
        if not submission_id:
            return "FAILED"
        try:
            return str(self.client.get_job_status(submission_id).value)
        except Exception as exc:  # noqa: BLE001
            raise RemoteError(f"Ray job status for {submission_id}: {exc}") from exc

    def alive(self, run: dict[str, Any]) -> bool:
        return self._status(run) not in FINAL_RAY_STATES

    def stop(self, run: dict[str, Any]) -> bool:
        submission_id = (run.get("remote") or {}).get("submission_id")
        if not submission_id:
            return True
        self.client.stop_job(submission_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._status(run) in FINAL_RAY_STATES:
                return True
            time.sleep(1)
        return False

    def logs(self, run: dict[str, Any]) -> str:
        """Ray's own log of the entrypoint (the supervisor's output; the trainer's is in stdout.log)."""
        submission_id = (run.get("remote") or {}).get("submission_id")
        return self.client.get_job_logs(submission_id) if submission_id else ""
