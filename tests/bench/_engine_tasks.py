"""Small top-level task functions for the engine tests: workers import this module by name (its folder
goes on their PYTHONPATH), as they import ``evalsuite.bench.jobs.run_task`` in a real study."""

from __future__ import annotations

import os
import socket
import time
from typing import Any


def square(payload: dict[str, Any]) -> dict[str, Any]:
    """The square of ``payload["x"]``, with where it ran and what the engine granted it."""
    time.sleep(float(payload.get("sleep", 0.0)))
    return {
        "x": payload["x"],
        "y": payload["x"] ** 2,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def boom(payload: dict[str, Any]) -> dict[str, Any]:
    """Raise for odd ``x``; the square otherwise."""
    if payload["x"] % 2:
        raise ValueError(f"boom on x={payload['x']}")
    return square(payload)


def evalsuite_file(payload: dict[str, Any]) -> dict[str, Any]:
    """Where the worker imported evalsuite from."""
    import evalsuite

    return {"file": evalsuite.__file__}


def hard_exit(payload: dict[str, Any]) -> dict[str, Any]:
    """Die without raising, as an OOM-killed or segfaulting job does."""
    print("about to die", flush=True)
    import sys

    sys.stderr.write("dying on purpose\n")
    sys.stderr.flush()
    os._exit(3)


def stamp(payload: dict[str, Any]) -> dict[str, Any]:
    """When the task started and ended (wall clock), to check that jobs did not overlap."""
    start = time.time()
    time.sleep(float(payload.get("sleep", 0.0)))
    return {"x": payload["x"], "start": start, "end": time.time()}
