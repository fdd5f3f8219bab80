"""How commands print numbers and names: one formatter (aftermath.formatting) and the scenario's labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from aftermath.cli.app import console
from aftermath.formatting import Kind, band

if TYPE_CHECKING:
    import pandas as pd

    from aftermath.scenario.schema import Scenario

BAND_COLUMNS = ("outcome", "date", "median", "low", "high")


def cell(median: float, low: float, high: float, kind: Kind = "number", signed: bool = False) -> str:
    """A table cell: the median over its 5-95% band, on two lines."""
    return band(median, low, high, kind, signed, separator="\n")


def outcome_heading(scenario: Scenario, name: str) -> str:
    """'Detained in Syria/Iraq' over 'detained_total: stock, people': the label, then the name (for --json and
    `explain NAME`) and what kind of number it is."""
    from aftermath.scenario.describe import outcome_kind, outcome_label, outcome_quantity

    kind = outcome_kind(scenario, name)
    unit = {"count": "people", "share": "share", "number": "number"}[kind]
    return f"{outcome_label(scenario, name)}\n[dim]{name}: {outcome_quantity(scenario, name)}, {unit}[/dim]"


def outcome_metadata(scenario: Scenario, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What each outcome is, for JSON output: label, description, kind of number, stock/flow/cumulative."""
    from aftermath.scenario.describe import outcome_kind, outcome_label, outcome_quantity

    return {
        name: {
            "label": outcome_label(scenario, name),
            "description": scenario.outcomes[name].description.strip(),
            "kind": outcome_kind(scenario, name),
            "quantity": outcome_quantity(scenario, name),
            "by": list(scenario.outcomes[name].by),
        }
        for name in names
        if name in scenario.outcomes
    }


def strata_metadata(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Display names of every stratum, by dimension (ids without a label map to themselves)."""
    from aftermath.scenario.describe import stratum_label

    return {dim: {s: stratum_label(scenario, dim, s) for s in strata} for dim, strata in scenario.dimensions.items()}


def scalar_rows(table: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of outcomes that are one number per date (no strata)."""
    fixed = {*BAND_COLUMNS, *extra}
    strata = [c for c in table.columns if c not in fixed]
    return table[table[strata].isna().all(axis=1)] if strata else table


def shown_outcomes(scenario: Scenario, table: pd.DataFrame, everything: bool) -> list[str]:
    """The outcomes of `table` to print: the scenario's headline set, or every one-number outcome."""
    from aftermath.scenario.describe import headline_outcomes

    present = list(dict.fromkeys(table["outcome"])) if len(table) else []
    if everything:
        return present
    return [name for name in headline_outcomes(scenario) if name in present]


def print_bands(scenario: Scenario, table: pd.DataFrame, subtitle: str, policies: Mapping[str, float],
                everything: bool = False, units: Mapping[str, str] | None = None) -> None:
    """The bands table of a run: one row per outcome (label, kind, and its unit where `units` names it) and,
    with `everything`, per stratum; one column per key date."""
    import pandas as pd

    from aftermath.scenario.describe import outcome_kind, outcome_label, stratum_label

    strata = [c for c in table.columns if c not in BAND_COLUMNS]
    rows = table if everything else scalar_rows(table)
    names = shown_outcomes(scenario, rows, everything)
    rows = rows[rows["outcome"].isin(names)]
    dates = list(dict.fromkeys(rows["date"]))
    grid = Table(
        title=f"{scenario.title}\n{subtitle}" + (f", policies {dict(policies)}" if policies else ""),
        title_justify="left",
    )
    grid.add_column("outcome\nmedian (5-95%)", no_wrap=True)
    for date in dates:
        grid.add_column(date, justify="right")
    for key, group in rows.groupby(["outcome", *strata], sort=False, dropna=False):
        outcome, *where = key if isinstance(key, tuple) else (key,)
        kind = outcome_kind(scenario, str(outcome))
        cells = {r.date: cell(r.median, r.low, r.high, kind) for r in group.itertuples()}
        heading = outcome_heading(scenario, str(outcome))
        unit = (units or {}).get(str(outcome))
        if unit:
            heading = f"{heading} ({unit})"
        named = [stratum_label(scenario, dim, str(value))
                 for dim, value in zip(strata, where, strict=True) if not pd.isna(value)]
        if named:
            heading = f"{outcome_label(scenario, str(outcome))}: {', '.join(named)}"
        grid.add_row(heading, *[cells.get(d, "") for d in dates])
    console.print(grid, highlight=False)
    hidden = len(set(table["outcome"])) - len(names)
    if hidden > 0:
        console.print(f"{len(names)} headline outcomes shown in this table; {hidden} more (detailed or by stratum) "
                      "with --all", highlight=False)
