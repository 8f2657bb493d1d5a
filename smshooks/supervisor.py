"""Several processors, one child process each (`smshooks process all`): they use every core, not one GIL.

The children are `smshooks process <name>`, the production layout, started with this process's settings. Their
metrics go to a shared PROMETHEUS_MULTIPROC_DIR and are served, with /healthz and /readyz, on the metrics port by
this process. SIGTERM or SIGINT is passed on and each child finishes its batch; a child that exits on its own stops
the others and this process exits 1. Killed itself, it takes the children with it (PR_SET_PDEATHSIG), so a
SIGKILL of `smshooks process all` stops every processor as abruptly as it stopped the threads it replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from core.settings import Settings
from processors import observability

log = logging.getLogger(__name__)

# set in each child's environment: the supervisor's pid, so the child can tie its life to it
SUPERVISOR_PID = "SMSHOOKS_SUPERVISOR_PID"
# how long stopped children get to finish their batch before they are killed
STOP_SECONDS = 60.0
PR_SET_PDEATHSIG = 1


def supervise(names: list[str], settings: Settings, stop_flag: threading.Event) -> int:
    """Run each processor in a child process (a name given twice, twice) until `stop_flag` is set or a child
    exits; the exit code."""
    metrics_dir = tempfile.mkdtemp(prefix="smshooks-processors-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "SMSHOOKS_METRICS_PORT": "0",
           SUPERVISOR_PID: str(os.getpid())}
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)
    observability.serve_metrics(settings, registry)
    # a processor named twice runs twice: both children join its group and share its partitions
    children: dict[str, subprocess.Popen] = {}
    started: Counter[str] = Counter()
    for name in names:
        started[name] += 1
        label = name if names.count(name) == 1 else f"{name} ({started[name]} of {names.count(name)})"
        children[label] = subprocess.Popen([sys.executable, "-m", "smshooks", "process", name], env=env)
    failed = None
    try:
        while failed is None and not stop_flag.is_set():
            failed = next((name for name, child in children.items() if child.poll() is not None), None)
            stop_flag.wait(0.5)
    finally:
        if failed is not None:
            log.error("processor %s exited with %s; stopping the others", failed, children[failed].returncode)
        codes = stop_all(children)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if failed is not None or any(codes.values()):
        return 1
    return 0


def stop_all(children: dict[str, subprocess.Popen]) -> dict[str, int]:
    """SIGTERM every child still running, wait for each to finish its batch (killed after STOP_SECONDS)."""
    stopped = set()
    for name, child in children.items():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            stopped.add(name)
    codes = {}
    for name, child in children.items():
        try:
            codes[name] = child.wait(timeout=STOP_SECONDS)
            if name in stopped and codes[name] == -signal.SIGTERM:
                codes[name] = 0  # still starting, before its handlers were installed: it had no batch to finish
        except subprocess.TimeoutExpired:
            log.warning("processor %s did not stop within %.0f s; killing it", name, STOP_SECONDS)
            child.kill()
            codes[name] = child.wait()
    return codes


def tie_to_supervisor() -> None:
    """In a child: die with the supervisor (SIGKILL from the kernel when it dies), or at once if it is gone."""
    expected = os.environ.get(SUPERVISOR_PID)
    if not expected:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(expected):  # it died before the prctl above took effect
        os._exit(1)
