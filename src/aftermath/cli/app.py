"""The typer app every command module adds to, and the entry point that turns bad input into exit 2."""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console

from aftermath.errors import ModelError, ScenarioError

app = typer.Typer(
    name="aftermath",
    help="Model foreign fighters, remnants and alliances after a militant organisation loses its territory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
errors = Console(stderr=True)
BAD_INPUT = 2


def fail(message: str) -> None:
    """Report bad input in one line and stop with exit status 2."""
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(BAD_INPUT)


def main() -> None:
    """Console entry point: one clear line and exit 2 for bad input, never a traceback."""
    try:
        result = app(standalone_mode=False)
    except (ScenarioError, ModelError) as exc:
        fail(str(exc))
    except click.exceptions.UsageError as exc:
        fail(exc.format_message() + (f" (see 'aftermath {exc.ctx.info_name} --help')" if exc.ctx else ""))
    except click.exceptions.ClickException as exc:
        fail(exc.format_message())
    except (click.exceptions.Abort, KeyboardInterrupt):
        errors.print("interrupted")
        raise SystemExit(130) from None
    sys.exit(result if isinstance(result, int) else 0)
