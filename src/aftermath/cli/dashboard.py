"""`aftermath dashboard`: the interactive dashboard in the browser (needs the `dashboard` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.core import ScenarioArg
from aftermath.store import DEFAULT_STORE


@app.command()
def dashboard(
    scenario: ScenarioArg = None,
    store: Annotated[Path, typer.Option(help="The DuckDB run store to browse (and to write runs you choose to "
                                        "keep).")] = DEFAULT_STORE,
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port (0: any free port).")] = 8050,
    host: Annotated[str, typer.Option(help="The address to listen on; anything but 127.0.0.1 lets other "
                                      "machines in.")] = "127.0.0.1",
) -> None:
    """Start the interactive dashboard on a local web server and print its URL (Ctrl-C stops it)."""
    try:
        from aftermath.dashboard.server import dashboard_server, is_local
    except ImportError as exc:
        fail(f"the dashboard needs its extra ({exc.name} is missing): pip install -e '.[dashboard]'")
    if not is_local(host):
        errors.print(f"warning: listening on {host}: anyone who can reach this address can run models and read "
                     f"the store {store}; there is no login", markup=False, highlight=False)
    try:
        server, url = dashboard_server(scenario, store, host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc})")
    console.print(f"aftermath dashboard: {url} (Ctrl-C stops it)", markup=False, highlight=False)
    try:
        server.serve_forever()
    finally:
        server.server_close()
