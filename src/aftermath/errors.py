"""Errors that reach the analyst as one clear line instead of a traceback."""

from __future__ import annotations

from pathlib import Path

FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """Render ('flows', 3, 'rate') as 'flows[3].rate'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(scenario)"


class ScenarioError(Exception):
    """A scenario file is wrong: names the file, the line, the field and what was expected."""

    def __init__(
        self,
        message: str,
        path: FieldPath = (),
        *,
        expected: str | None = None,
        file: str | Path | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.path = tuple(path)
        self.expected = expected
        self.file = str(file) if file is not None else None
        self.line = line
        super().__init__(str(self))

    def located(self, file: str | Path | None, line: int | None) -> ScenarioError:
        """The same error with its place in the file filled in."""
        return ScenarioError(
            self.message,
            self.path,
            expected=self.expected,
            file=self.file or file,
            line=self.line or line,
        )

    def __str__(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {format_path(self.path)}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        return text


class ModelError(Exception):
    """A valid scenario produced an impossible state while running (e.g. a negative rate)."""


class ResourceError(Exception):
    """A request the machine or the run store cannot hold (memory, seed range, disk space, a file)."""


class StoreError(Exception):
    """The run store cannot be used as asked: missing, locked, another schema, unknown run."""
