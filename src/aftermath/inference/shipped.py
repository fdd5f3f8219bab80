"""A scenario's shipped posterior: a file of calibrated parameter draws beside the scenario file.

`NAME.yaml` may have `NAME.posterior.csv` beside it, written by `aftermath calibrate --draws-file`. The
commands that draw parameters (run, ensemble, compare, fit-check, report) then draw them from it by
default (`parameter_source`); `--prior` draws from the declared distributions instead, `--posterior RUN`
from a stored calibration.

The file is CSV with a header of `#` lines:

    # aftermath posterior draws: regenerate with COMMAND
    # model_hash: the hash of the scenario it was calibrated on, without its prose (model.compile.model_hash)
    # draws_sha256: SHA-256 of the file's text after the header lines
    # meta: JSON {"method", "until", "run_id", "diagnostics"}
    parameter names..., weight, log_likelihood
    one row per draw

On reading, the draws' hash is checked (a changed file is refused: ShippedPosteriorError) and the
scenario's model hash is compared with the one the draws were made for (a mismatch makes the draws stale:
they are not used, and the caller says so and draws from the prior). The model hash covers the scenario's
numbers, names and structure and the observation errors, not its prose (titles, descriptions, notes,
citations, reasons), so rewording a scenario keeps its posterior; changing a number makes it stale.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aftermath.files import write_text
from aftermath.inference.calibration import Posterior, check_matches
from aftermath.model.compile import model_hash
from aftermath.scenario.schema import Scenario

SUFFIX = ".posterior.csv"
_COLUMNS = ("weight", "log_likelihood")
_KEYS = ("aftermath posterior draws", "model_hash", "draws_sha256", "meta")


class ShippedPosteriorError(ValueError):
    """A draws file that cannot be read or whose draws do not match their recorded hash."""


@dataclass(frozen=True)
class ParameterSource:
    """Where a command's parameter draws come from: `posterior` (None: the declared priors, or fixed
    values), and `label`, the words the output shows for it; `kind` is 'posterior', 'prior' or 'fixed'."""

    kind: str
    label: str
    posterior: Posterior | None = None
    warning: str | None = None

    def draws(self, samples: int, seed: int, fixed: Collection[str] = ()) -> dict[str, np.ndarray] | None:
        """An experiment's `samples` parameter draws {name: (samples,)} from the posterior (the same
        seed gives the same draws), without the parameters in `fixed` (set to a value by the caller);
        None when the draws come from the priors (the experiment samples them itself)."""
        if self.posterior is None:
            return None
        return self.posterior.parameter_draws(samples, seed, fixed)


def draws_path(scenario: Scenario) -> Path | None:
    """The draws file beside `scenario`'s file (NAME.posterior.csv), or None for a scenario read from
    a string."""
    source = Path(scenario._source)
    if source.suffix not in (".yaml", ".yml"):
        return None
    return source.with_name(source.stem + SUFFIX)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def write_draws(path: str | Path, scenario: Scenario, posterior: Posterior, command: str) -> Path:
    """Write `posterior` as a draws file (atomically) for `scenario`; `command` is how to regenerate it.
    Returns the path."""
    check_matches(posterior, scenario)
    names = list(posterior.names)
    table = np.column_stack([*(posterior.draws[n] for n in names), posterior.weights, posterior.log_likelihood])
    body = io.StringIO()
    np.savetxt(body, table, delimiter=",", fmt="%.7g", header=",".join([*names, *_COLUMNS]), comments="")
    text = body.getvalue()
    meta = {"method": posterior.method, "until": posterior.until, "run_id": posterior.run_id,
            "diagnostics": posterior.diagnostics}
    head = [f"# aftermath posterior draws: regenerate with {command}",
            f"# model_hash: {model_hash(scenario)}",
            f"# draws_sha256: {_digest(text)}",
            f"# meta: {json.dumps(meta, sort_keys=True, allow_nan=False)}"]
    return write_text("\n".join(head) + "\n" + text, path)


def read_draws(path: str | Path) -> tuple[Posterior, str, str]:
    """(posterior, the scenario's model hash it was made for, regenerate command) of a draws file. Raises
    ShippedPosteriorError if the file cannot be read, is not a draws file, or its draws do not match their
    recorded hash."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise ShippedPosteriorError(f"{path}: cannot read the posterior draws ({exc})") from None
    header: dict[str, str] = {}
    for line in lines[:len(_KEYS)]:
        key, _, value = line.removeprefix("# ").partition(": ")
        header[key] = value.strip()
    command = (header.get(_KEYS[0], "").removeprefix("regenerate with ")
               or "aftermath calibrate SCENARIO --draws-file FILE")
    if not all(key in header for key in _KEYS):
        raise ShippedPosteriorError(f"{path}: not an aftermath posterior draws file (expected the header lines "
                                    f"{', '.join(_KEYS)}); regenerate it with {command}")
    body = "".join(lines[len(_KEYS):])
    if _digest(body) != header["draws_sha256"]:
        raise ShippedPosteriorError(
            f"{path}: the draws were changed after 'aftermath calibrate' wrote them (their SHA-256 does not "
            f"match the one recorded in the file), so they are refused; regenerate the file with {command}"
        )
    try:
        meta = json.loads(header["meta"])
        columns = lines[len(_KEYS)].strip().split(",")
        table = np.loadtxt(io.StringIO(body), delimiter=",", skiprows=1, ndmin=2)
    except (ValueError, IndexError) as exc:
        raise ShippedPosteriorError(f"{path}: cannot read the posterior draws ({exc})") from None
    names = tuple(columns[:-len(_COLUMNS)])
    posterior = Posterior(
        names=names, draws={n: table[:, i] for i, n in enumerate(names)}, weights=table[:, -2],
        log_likelihood=table[:, -1], method=meta["method"], until=meta["until"], diagnostics=meta["diagnostics"],
        run_id=meta["run_id"], source=f"shipped posterior {path.name}",
    )
    return posterior, header["model_hash"], command


def shipped_posterior(scenario: Scenario) -> tuple[Posterior | None, str | None]:
    """(the posterior shipped beside `scenario`, None) if there is one and it was made for this scenario;
    (None, why not) if its model hash differs (the draws are stale); (None, None) if there is none.
    Raises ShippedPosteriorError for a file that was changed or cannot be read."""
    path = draws_path(scenario)
    if path is None or not path.is_file():
        return None, None
    posterior, made_for, command = read_draws(path)
    current = model_hash(scenario)
    if made_for != current:
        return None, (f"{path} was calibrated on another version of scenario {scenario.name!r} (model hash "
                      f"{made_for}, now {current}), so its draws are not used; rerun {command}")
    return posterior, None


def parameter_source(scenario: Scenario, stored: Posterior | None = None, *, prior: bool = False,
                     fixed: bool = False) -> ParameterSource:
    """Where the parameter draws of a command on `scenario` come from: fixed values (`fixed`), the
    declared priors (`prior`), a stored calibration's posterior (`stored`), else the posterior shipped
    beside the scenario if there is a current one, else the priors (with a warning if the shipped draws
    are stale). Raises ShippedPosteriorError for a changed or unreadable draws file, ValueError if
    `stored` does not fit the scenario."""
    if fixed:
        return ParameterSource("fixed", "fixed parameters (their values)")
    if stored is not None:
        check_matches(stored, scenario)
        return ParameterSource("posterior", stored.label, stored)
    if prior:
        return ParameterSource("prior", "prior (the declared distributions)")
    shipped, stale = shipped_posterior(scenario)
    if shipped is not None:
        return ParameterSource("posterior", shipped.label, shipped)
    return ParameterSource("prior", "prior (the declared distributions)", warning=stale)
