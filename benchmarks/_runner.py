"""Running one benchmark job in a fresh worker process, for both orchestrators.

The worker runs under the implementation's own interpreter (tomoalign's venv, or an ETSpy venv
made by ``make bench-venvs``), writes a JSON record, and is killed with its whole process group
on timeout. A failure becomes a record with ``error`` instead of an exception.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from _common import HERE, RESULTS, ROOT


def impl_python(impl: str) -> Path:
    """The interpreter of an implementation: this one for tomoalign, a venv for ETSpy."""
    if impl.startswith("tomoalign"):
        return Path(sys.executable)
    return HERE / f".venv-{impl}" / "bin" / "python"


def available(impl: str) -> bool:
    """Whether the implementation's interpreter exists (ETSpy venvs: make bench-venvs)."""
    return impl_python(impl).exists()


def warn_missing(impls: Iterable[str], labels: Mapping[str, str]) -> list[str]:
    """Say which implementations' venvs are missing (``make bench-venvs``); return them."""
    missing = [impl for impl in impls if not available(impl)]
    for impl in missing:
        print(f"[bench] {labels[impl]} venv missing: run make bench-venvs", file=sys.stderr)
    return missing


def short(msg: str, limit: int = 90) -> str:
    """One line of at most ``limit`` characters, safe inside a markdown table."""
    msg = " ".join(msg.split()).replace("|", "/")
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def run_worker(
    worker: Path, impl: str, worker_args: list[str], *, timeout: float, mem_limit_gb: float
) -> dict:
    """Run ``worker`` in ``impl``'s interpreter; always returns a record (maybe an error)."""
    env = dict(os.environ)
    if not impl.startswith("tomoalign"):
        env.pop("PYTHONPATH", None)  # the ETSpy venvs must not see tomoalign's sources
    env.setdefault("PYTHONWARNINGS", "ignore")
    RESULTS.mkdir(parents=True, exist_ok=True)
    fd, out = tempfile.mkstemp(prefix=f".{worker.stem}-", suffix=".json", dir=RESULTS)
    os.close(fd)
    cmd = [str(impl_python(impl)), str(worker), "--impl", impl, *worker_args]
    cmd += ["--mem-limit-gb", str(mem_limit_gb), "--out", out]
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so that a timeout kills the worker's whole group
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"impl": impl, "error": f"timeout after {timeout:g} s", "error_type": "Timeout"}
        text = Path(out).read_text()
        if proc.returncode == 0 and text:
            return json.loads(text)
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            why = f"worker killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        else:
            why = f"worker exited with status {proc.returncode}"
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [""]
        return {"impl": impl, "error": f"{why}: {last[0][:300]}", "error_type": "WorkerFailed"}
    finally:
        Path(out).unlink(missing_ok=True)
