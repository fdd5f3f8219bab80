"""Serving the dashboard: a threaded WSGI server (werkzeug, which Dash's Flask brings) on a host and port."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from aftermath import shipped_scenarios
from aftermath.dashboard.app import make_app
from aftermath.dashboard.workspace import Workspace
from aftermath.scenario.catalogue import DEFAULT_SCENARIO

LOCAL_HOST = "127.0.0.1"


def is_local(host: str) -> bool:
    """Whether only this machine can reach a server bound to `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dashboard_server(
    scenario: str | Path | None = None, store: str | Path | None = None, host: str = LOCAL_HOST, port: int = 8050,
) -> tuple[BaseWSGIServer, str]:
    """A ready server (not yet serving) and its URL. The scenario (a file or shipped name; default: the
    default scenario) is read and validated first, so a bad one raises ScenarioError before any port is
    taken. Port 0 picks a free port. Raises OSError if the port cannot be had."""
    shipped = shipped_scenarios()
    files: Sequence[str | Path] = [scenario] if scenario is not None and str(scenario) not in shipped else []
    workspace = Workspace(files=files, store=Path(store) if store is not None else None)
    first = str(scenario) if scenario is not None else DEFAULT_SCENARIO
    workspace.entry(first)
    app = make_app(workspace, first)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Bind here, so a taken port is an OSError to report (werkzeug would print and exit).
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(128)
        server = make_server(host, listening.getsockname()[1], app.server, threaded=True, fd=listening.fileno())
    finally:
        listening.close()  # the server holds its own duplicate
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{server.port}/"


def serve_in_thread(server: BaseWSGIServer) -> threading.Thread:
    """Serve on a daemon thread (tests, benchmarks); `server.shutdown()` stops it."""
    thread = threading.Thread(target=server.serve_forever, name="aftermath-dashboard", daemon=True)
    thread.start()
    return thread
