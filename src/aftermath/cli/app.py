"""The typer app every command module adds to, and the entry point that turns bad input into exit 2."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from aftermath.errors import ModelError, ResourceError, ScenarioError

app = typer.Typer(
    name="aftermath",
    help="Model foreign fighters, remnants and alliances after a militant organisation loses its territory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Piped output has no terminal width to respect: don't squeeze tables to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)
BAD_INPUT = 2
# Typer may bundle its own copy of click: take its exception classes from typer's, whichever it is.
UsageError = typer.BadParameter.__bases__[0]
ClickException = UsageError.__bases__[0]


def _version(value: bool) -> None:
    if value:
        from aftermath import __version__

        console.print(f"aftermath {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Model foreign fighters, remnants and alliances after a militant organisation loses its territory."""


def fail(message: str) -> None:
    """Report bad input in one line and stop with exit status 2."""
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(BAD_INPUT)


def main() -> None:
    """Console entry point: one clear line and exit 2 for bad input, never a traceback."""
    try:
        result = app(standalone_mode=False, prog_name="aftermath")
    except (ScenarioError, ModelError, ResourceError) as exc:
        fail(str(exc))
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            console.print(exc.ctx.get_help(), markup=False, highlight=False)
            raise SystemExit(0) from None
        fail(exc.format_message() + (f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""))
    except ClickException as exc:
        fail(exc.format_message())
    except (typer.Abort, KeyboardInterrupt):
        errors.print("interrupted")
        raise SystemExit(130) from None
    sys.exit(result if isinstance(result, int) else 0)
