"""Run a test's function in a forked child of a clean server process, killed after a time limit.

A run that hangs must fail its test, not block the suite, so it runs in a child that can be killed. The
child cannot be forked from pytest's own process: numba's OpenMP threading layer (GNU libgomp) aborts a
child forked from a process that has already run a parallel kernel, and pytest's process may have. So
`Isolated` starts a server process (`python -m tests.isolated`) that imports aftermath but never runs a
kernel, and the server forks one child per call. Calls and replies are pickles over the server's pipes.
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the server stopped")
    (size,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(size))


class Isolated:
    """A server process; `call('module:function', *args, limit=s)` runs the function in a fresh child."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.isolated"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
        )

    def call(self, function: str, *args: Any, limit: float = 60.0) -> Any:
        """The function's return value; AssertionError if it hangs past `limit` s, raises or crashes."""
        assert self.process.stdin is not None and self.process.stdout is not None
        _send(self.process.stdin, (function, args, limit))
        status, value = _receive(self.process.stdout)
        if status == "hung":
            raise AssertionError(f"{function}{args!r} still ran after {limit:g} s: it hangs")
        if status != "ok":
            raise AssertionError(f"{function}{args!r}: {value}")
        return value

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def _child(function: str, args: tuple, reply: int) -> None:
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the server's stdin carries the calls
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # and its stdout the replies
    try:
        module, name = function.split(":")
        result: Any = ("ok", getattr(importlib.import_module(module), name)(*args))
    except BaseException as exc:
        result = ("error", f"{type(exc).__name__}: {exc}")
    with os.fdopen(reply, "wb") as stream:
        stream.write(pickle.dumps(result))
    os._exit(0)


def main_status(args: list[str]) -> int:
    """Run the console entry point on `args` as the installed script does; its exit status (an exception
    that escapes prints its traceback and gives 1, as the interpreter would)."""
    import traceback

    from aftermath.cli import main

    sys.argv = ["aftermath", *args]
    try:
        main()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def run_cli(args: list[str], folder: str, cwd: str | None = None) -> dict[str, Any]:
    """`aftermath ARGS` in the folder `cwd` (call it in a child: it takes over stdout and stderr, and changes
    directory): exit status, stdout, stderr, kept in `folder` until read."""
    if cwd is not None:
        os.chdir(cwd)
    out, err = Path(folder) / "stdout", Path(folder) / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        os.dup2(stdout.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  (pytest may have replaced sys.stdout)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    code = main_status(args)
    return {"status": code, "stdout": out.read_text(), "stderr": err.read_text()}


def _warm() -> None:
    """Import once what children use, and load the kernels that run on one thread (never a parallel one)."""
    import numpy as np
    import scipy.stats  # noqa: F401
    import xarray

    import aftermath.cli
    import aftermath.experiments.sampling  # noqa: F401
    import tests.conftest  # noqa: F401
    from aftermath.engines.kernels import binomial_array, first_invalid, reduce_columns

    with tempfile.TemporaryDirectory() as folder:  # xarray imports dask and more on first use
        dataset = xarray.Dataset({"x": (("replicate", "time"), np.zeros((2, 2)))})
        dataset["x"].quantile([0.5], dim="replicate")
        dataset.to_netcdf(Path(folder) / "warm.nc", engine="netcdf4")
    values = np.zeros((1, 1))
    first_invalid(values)
    binomial_array(values, values, np.uint64(0), np.int64(0), np.uint64(0), np.int64(0))
    reduce_columns(values, np.zeros(2, np.int64), np.zeros(1, np.int64), values)


def _serve() -> None:
    _warm()

    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    while True:
        try:
            function, args, limit = _receive(requests)
        except EOFError:
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            _child(function, args, write)
        os.close(write)
        hung, chunks = False, []
        deadline = time.monotonic() + limit
        with os.fdopen(read, "rb", buffering=0) as stream:  # read while the child runs: a reply over the
            while True:                                     # pipe's 64 KiB would block its write until read
                if not select.select([stream], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    os.kill(pid, signal.SIGKILL)
                    hung = True
                    break
                chunk = stream.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        os.waitpid(pid, 0)
        data = b"".join(chunks)
        if hung:
            _send(replies, ("hung", None))
        else:
            _send(replies, pickle.loads(data) if data else ("crashed", "the child died without a reply"))


if __name__ == "__main__":
    _serve()
