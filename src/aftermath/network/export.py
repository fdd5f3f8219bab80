"""The network of a run at any date (networkx, GraphML, JSON) and its summaries, as bands.

A run holds many replicates; the exported graph is the ensemble's: a tie's `probability` is the
share of runs (or, from the deterministic engine, the probability) in which it exists at that
date, and a group's numbers are medians with their 5-95% band. `replicate=` exports one run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from aftermath.files import atomic_path, check_output_path
from aftermath.network.describe import group_label
from aftermath.network.schema import CAPACITIES
from aftermath.scenario.schema import Scenario, month_label, parse_month
from aftermath.summary import band

if TYPE_CHECKING:
    import networkx as nx

GRAPH_FORMATS = (".graphml", ".json")
GROUP_COLUMNS = {
    "network_allies": "allies",
    "network_centrality": "centrality",
    "network_capacity": "capacity",
    "network_lethality": "lethality",
    "network_strength": "strength",
    "network_arrivals": "arrivals",
}


def at_date(dataset: xr.Dataset, date: str) -> xr.Dataset:
    """The dataset at one month; a ValueError names the horizon if the date is outside it."""
    try:
        month = parse_month(date)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    times = dataset["time"].values
    wanted = np.datetime64(month_label(month), "M").astype(times.dtype)
    if wanted not in times:
        first, last = (pd.Timestamp(times[i]).strftime("%Y-%m") for i in (0, -1))
        raise ValueError(f"{date} is outside the run ({first} to {last})")
    return dataset.sel(time=wanted)


def group_table(dataset: xr.Dataset, date: str) -> pd.DataFrame:
    """Per group at `date`: share of runs in which it is active, and bands of its numbers."""
    return _group_rows(at_date(dataset, date))


def network_graph(dataset: xr.Dataset, scenario: Scenario, date: str, replicate: int | None = None) -> nx.Graph:
    """The alliance network at `date`: groups as nodes, alliance ties (with their probability) and rivalries."""
    import networkx as nx  # imported when used: it costs a quarter second at CLI start-up

    network = scenario.network
    if network is None:
        raise ValueError(f"the scenario {scenario.name!r} has no network section")
    now = at_date(dataset, date)
    if replicate is not None:
        if replicate not in now["replicate"].values:
            raise ValueError(f"replicate {replicate} is not in the run")
        now = now.sel(replicate=[replicate])
    graph = nx.Graph(scenario=scenario.name, date=month_label(parse_month(date)), runs=int(now.sizes["replicate"]))
    for row in _group_rows(now).to_dict("records"):
        spec = network.groups[row["group"]]
        attributes = {k: v for k, v in row.items() if k != "group"}
        attributes.update({f"declared_{k}": getattr(spec.capacities, k) for k in CAPACITIES})
        graph.add_node(row["group"], label=group_label(scenario, row["group"]), family=spec.family,
                       description=spec.description.strip(), **attributes)
    declared = {frozenset(t.groups): t for t in network.ties}
    probability = now["network_ties"].values.mean(axis=0)
    for label, share in zip(now["tie"].values, probability, strict=True):
        if share <= 0:
            continue
        first, second = str(label).split("--")
        tie = declared.get(frozenset((first, second)))
        graph.add_edge(first, second, type=tie.type if tie else "cooperation", probability=float(share),
                       start=month_label(tie.start) if tie else "")
    for tie in network.ties:
        if tie.type == "rivalry":
            graph.add_edge(*tie.groups, type="rivalry", probability=1.0, start=month_label(tie.start))
    return graph


def _group_rows(now: xr.Dataset) -> pd.DataFrame:
    rows = []
    for g, group in enumerate(now["group"].values):
        row: dict[str, object] = {"group": str(group), "active": float(now["network_alive"].values[:, g].mean())}
        for variable, column in GROUP_COLUMNS.items():
            row[column], row[f"{column}_low"], row[f"{column}_high"] = band(now[variable].values[:, g])
        rows.append(row)
    return pd.DataFrame(rows)


def write_graph(graph: nx.Graph, path: str | Path) -> Path:
    """Write GraphML or node-link JSON by the file's extension, atomically."""
    import networkx as nx  # imported when used: it costs a quarter second at CLI start-up

    path = Path(path)
    check_output_path(path, list(GRAPH_FORMATS), "graph")
    with atomic_path(path) as partial:
        if path.suffix.lower() == ".graphml":
            nx.write_graphml(graph, partial)
        else:
            partial.write_text(json.dumps(nx.node_link_data(graph, edges="links"), indent=2), encoding="utf-8")
    return path


def network_summary(
    dataset: xr.Dataset, dates: list[str], name: Callable[[str], str] = str, hubs: int = 2,
) -> list[tuple[str, list[tuple]]]:
    """Rows (label, [(median, low, high) per date]) an analyst reads first: provinces, ties, hubs,
    groups active, endings, and arrivals by affiliate; `name` gives a group's display name."""
    picked = [at_date(dataset, d) for d in dates]
    rows: list[tuple[str, list[tuple]]] = []

    def add(label: str, pick: Callable[[xr.Dataset], np.ndarray]) -> None:
        rows.append((label, [band(pick(now)) for now in picked]))

    add("active provinces", lambda now: now["network_provinces"].values)
    add("alliance ties", lambda now: now["network_ties"].values.sum(axis=1))
    add("groups active", lambda now: now["network_alive"].values.sum(axis=1))
    groups = [str(g) for g in dataset["group"].values]
    centrality = dataset["network_centrality"].median("replicate").max("time").values  # the hubs of the run
    for g in np.argsort(-centrality, kind="stable")[:hubs]:
        add(f"centrality: {name(groups[g])}", lambda now, g=g: now["network_centrality"].values[:, g])
    for e, ending in enumerate(dataset["ending"].values):
        add(f"ended by {ending}", lambda now, e=e: now["network_endings"].values[:, e])
    arrivals = dataset["network_arrivals"].isel(time=-1).max("replicate").values
    for g in np.nonzero(arrivals > 0)[0]:
        add(f"arrivals: {name(groups[g])}", lambda now, g=g: now["network_arrivals"].values[:, g])
    return rows


def survival_curves(dataset: xr.Dataset) -> pd.DataFrame:
    """Share of runs (or, deterministic, the probability) in which each group is still active, by month."""
    curves = dataset["network_alive"].mean("replicate").to_pandas()
    curves.index = pd.to_datetime(curves.index).strftime("%Y-%m")
    return curves
