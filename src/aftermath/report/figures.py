"""The report's pictures, drawn once with matplotlib: inlined as SVG in the HTML, saved as PNG/SVG for papers.

One drawing path for both uses keeps the web page and the paper figures identical. Figures are
built with `matplotlib.figure.Figure` (no pyplot), so nothing global changes at import or use.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as DrawPath
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MaxNLocator

from aftermath.files import atomic_path
from aftermath.formatting import number
from aftermath.report.content import (
    Fan,
    HomeFrontContent,
    NetworkContent,
    ObservationRow,
    OutcomeSummary,
    PolicyEffect,
    SankeyData,
    label,
    largest_strata,
    strata_title,
)

INK = "#1d2733"
FAN = "#2f6690"
FITTED = "#1d2733"
LATER = "#d1495b"
PALETTE = ["#2f6690", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#c17c74", "#3a3a3a",
           "#a5be00", "#f18f01", "#6c8ead", "#b56576"]
MAX_PANELS = 6
LABEL_STEPS = 500
"""Steps of adjustText's label separation in the network figure (it stops earlier once nothing overlaps)."""
GAP = 0.012
MIN_SLOT = 0.03
CHAR_WIDTH = 4.4 / (7.6 * 72)
"""Width of one 7.5-point character as a share of the Sankey figure's width."""
"""Vertical room (share of the Sankey's height) every node keeps for its label."""
STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "aftermath-report",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": INK,
    "ytick.color": INK,
    "text.color": INK,
}


@dataclass(frozen=True)
class Picture:
    """A drawn figure with the name its files get and the alternative text a screen reader reads."""

    stem: str
    title: str
    figure: Figure


def plain(text: str) -> str:
    """Scenario text as literal matplotlib text: a '$' would otherwise start mathematics."""
    return text.replace("$", r"\$")


def _count_axis(axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda value, _: number(value)))


def _fan_on(ax, series: Fan, color: str = FAN, name: str = "middle run") -> None:
    times = series.times.astype("datetime64[D]")
    q05, q25, q50, q75, q95 = series.values
    ax.fill_between(times, q05, q95, color=color, alpha=0.18, linewidth=0, label="9 in 10 runs")
    ax.fill_between(times, q25, q75, color=color, alpha=0.38, linewidth=0, label="half of runs")
    ax.plot(times, q50, color=color, linewidth=1.8, label=name)


def fan_picture(
    outcome: OutcomeSummary, observations: Sequence[ObservationRow], fit_until: str
) -> Picture:
    """An outcome over time: middle run, the middle half of runs, and 9 in 10 runs; observations on top."""
    strata = largest_strata(outcome, MAX_PANELS) if outcome.by else [""]
    panels = len(strata)
    columns = 1 if panels == 1 else 2
    rows = -(-panels // columns)
    size = (5.4, 3.0) if panels == 1 else (7.6, 1.0 + 2.0 * rows)
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True)
    for k, key in enumerate(strata):
        ax = axes[k // columns][k % columns]
        _fan_on(ax, outcome.fans[key])
        _count_axis(ax.yaxis)
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(outcome.fans[key].values, initial=0.0))))
        if key:
            ax.set_title(plain(key), fontsize=9, loc="left")
        ax.grid(axis="y", color="#e4e8ec", linewidth=0.6)
    for k in range(panels, rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    if observations and not outcome.by:
        _observations_on(axes[0][0], observations, fit_until, outcome.fans[""])
    figure.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower left", fontsize=7.5, frameon=False,
                  ncols=5)
    title = strata_title(outcome, panels)
    figure.suptitle(plain(title), x=0.01, ha="left", fontsize=10, fontweight="bold")
    return Picture(f"fan-{outcome.name}", title, figure)


def _observations_on(ax, observations: Sequence[ObservationRow], fit_until: str, series: Fan) -> None:
    for fitted, color, marker, name in (
        (True, FITTED, "o", "record, used to fit"), (False, LATER, "D", "record, later (not used to fit)")
    ):
        chosen = [o for o in observations if o.fitted == fitted]
        if not chosen:
            continue
        dates = np.array([o.date for o in chosen], dtype="datetime64[M]").astype("datetime64[D]")
        values = np.array([o.value for o in chosen])
        below = values - np.array([o.value if o.low is None else o.low for o in chosen])
        above = np.array([o.value if o.high is None else o.high for o in chosen]) - values
        ax.errorbar(dates, values, yerr=[below, above], fmt=marker, color=color, markersize=5,
                    markerfacecolor=color if fitted else "white", capsize=2, linewidth=1, label=name, zorder=5)
    cutoff = np.datetime64(fit_until, "M")
    if series.times[0] < cutoff < series.times[-1]:
        ax.axvline(cutoff.astype("datetime64[D]"), color="#9aa5b1", linestyle="--", linewidth=0.8)
        ax.annotate(" fitted up to here", (cutoff.astype("datetime64[D]"), 1.0), xycoords=("data", "axes fraction"),
                    fontsize=7, color="#5c6b7a", va="top")


def _sankey_layout(data: SankeyData, size: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, top, slot) of each node: bars proportional to persons, each node at least a label high,
    destinations placed beside the pathway they come from."""
    columns = sorted(set(data.columns))
    per_column = [[n for n in range(len(data.nodes)) if data.columns[n] == c] for c in columns]

    def fits(scale: float) -> bool:
        return all(sum(max(size[n] * scale, MIN_SLOT) for n in nodes) + GAP * (len(nodes) - 1) <= 1
                   for nodes in per_column)

    low, high = 0.0, 1.0 / max(float(size.max()), 1e-9)
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    scale = low
    slot = np.maximum(size * scale, MIN_SLOT)
    top = np.zeros(len(data.nodes))
    parent = {b: a for a, b, _ in data.links if data.columns[b] == 2}
    for nodes in per_column:
        y = 1.0
        for n in nodes:
            wanted = y
            if n in parent:
                siblings = [m for m in nodes if parent.get(m) == parent[n]]
                wanted = min(y, top[parent[n]] - sum(slot[m] + GAP for m in siblings[: siblings.index(n)]))
            top[n] = wanted
            y = wanted - slot[n] - GAP
        overflow = -min(0.0, min(top[n] - slot[n] for n in nodes))
        for n in nodes:
            top[n] += overflow
    return scale, top, slot


def sankey_picture(data: SankeyData) -> Picture:
    """Flows drawn as bands from origin to pathway to destination, widths proportional to persons."""
    columns = sorted(set(data.columns))
    incoming = np.zeros(len(data.nodes))
    outgoing = np.zeros(len(data.nodes))
    for a, b, value in data.links:
        outgoing[a] += value
        incoming[b] += value
    size = np.maximum(incoming, outgoing)
    scale, top, _ = _sankey_layout(data, size)
    x_of = {c: i for i, c in enumerate(columns)}
    width = 0.035
    figure = Figure(figsize=(7.6, 5.2))
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)
    ax = figure.add_subplot()
    ax.set_axis_off()
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(n for n in range(len(data.nodes))
                                                                    if data.columns[n] == columns[0])}
    out_cursor = top.copy()
    in_cursor = top.copy()
    for a, b, value in sorted(data.links, key=lambda link: (-top[link[0]], -top[link[1]])):
        color = colors.setdefault(a, PALETTE[len(colors) % len(PALETTE)])
        height = value * scale
        x0, x1 = x_of[data.columns[a]] + width, x_of[data.columns[b]]
        y0, y1 = out_cursor[a], in_cursor[b]
        out_cursor[a] -= height
        in_cursor[b] -= height
        middle = (x0 + x1) / 2
        vertices = [(x0, y0), (middle, y0), (middle, y1), (x1, y1), (x1, y1 - height), (middle, y1 - height),
                    (middle, y0 - height), (x0, y0 - height), (x0, y0)]
        codes = [DrawPath.MOVETO, DrawPath.CURVE4, DrawPath.CURVE4, DrawPath.CURVE4, DrawPath.LINETO,
                 DrawPath.CURVE4, DrawPath.CURVE4, DrawPath.CURVE4, DrawPath.CLOSEPOLY]
        ax.add_patch(PathPatch(DrawPath(vertices, codes), facecolor=color, alpha=0.35, edgecolor="none"))
    for n, text in enumerate(data.nodes):
        x = x_of[data.columns[n]]
        height = size[n] * scale
        ax.add_patch(Rectangle((x, top[n] - height), width, height, facecolor=colors.get(n, INK), edgecolor="none"))
        right = data.columns[n] != columns[0]
        ax.text(x + width + 0.01 if right else x - 0.01, top[n] - max(height, MIN_SLOT) / 2,
                plain(f"{text}  {number(size[n])}"), ha="left" if right else "right", va="center", fontsize=7.5)
    right = len(columns) - 1 + 0.55
    longest = max(len(f"{data.nodes[n]}  {number(size[n])}") for n in range(len(data.nodes))
                  if data.columns[n] == columns[0])
    share = CHAR_WIDTH * longest  # of the figure's width, taken by the longest origin label
    ax.set_xlim(-(0.02 + share * right) / (1 - share), right)
    ax.set_ylim(-0.01, 1.01)
    title = f"Where the fighters were in {data.date} (average of runs)"
    figure.suptitle(title, x=0.01, ha="left", fontsize=10.5, fontweight="bold")
    return Picture("where-they-went", title, figure)


def policy_picture(effects: Sequence[PolicyEffect], outcomes: Sequence[str], date: str) -> Picture:
    """Each policy's change from the baseline at one date, one panel per outcome (each on its own scale)."""
    columns = 2 if len(outcomes) > 1 else 1
    rows = -(-len(outcomes) // columns)
    height = max(1.3, 0.32 * len(effects) + 0.8)
    figure = Figure(figsize=(7.4, height * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    names = [plain(e.label) for e in effects]
    for k, outcome in enumerate(outcomes):
        ax = axes[k // columns][k % columns]
        for row, effect in enumerate(effects):
            series = effect.differences[outcome]
            index = min(int(np.searchsorted(series.times, np.datetime64(date, "M"))), len(series.times) - 1)
            q05, q25, q50, q75, q95 = series.values[:, index]
            color = PALETTE[row % len(PALETTE)]
            ax.plot([q05, q95], [row, row], color=color, linewidth=1.2)
            ax.plot([q25, q75], [row, row], color=color, linewidth=5, solid_capstyle="butt")
            ax.plot([q50], [row], "o", color="white", markeredgecolor=color, markersize=5)
        ax.axvline(0, color="#9aa5b1", linewidth=0.8)
        ax.set_yticks(range(len(effects)), names if k % columns == 0 else [""] * len(effects), fontsize=8)
        ax.set_ylim(len(effects) - 0.5, -0.5)
        _count_axis(ax.xaxis)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(plain(label(outcome)), fontsize=9, loc="left")
        ax.grid(axis="x", color="#e4e8ec", linewidth=0.6)
    for k in range(len(outcomes), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    title = f"Change from no new policy in {date}"
    figure.suptitle(title, x=0.01, ha="left", fontsize=10.5, fontweight="bold")
    return Picture("policy-effects", title, figure)


def home_front_picture(data: HomeFrontContent) -> Picture:
    """Plots per year by region (median and 5-95% band over runs), with the recorded counts on top."""
    figure = Figure(figsize=(7.4, 3.2), layout="constrained")
    ax = figure.subplots()
    years = np.array(data.years)
    shown = [region for region, levels in data.regions.items() if np.nanmax(levels[1]) >= 0.5 or region in data.record]
    for k, region in enumerate(shown):
        levels = data.regions[region]
        color = PALETTE[k % len(PALETTE)]
        columns = [i for i, year in enumerate(years) if year in data_years(data, region)]
        x = years[columns]
        ax.fill_between(x, levels[0, columns], levels[2, columns], color=color, alpha=0.18, linewidth=0)
        ax.plot(x, levels[1, columns], color=color, linewidth=1.6, label=plain(label(region)))
        for year, value in data.record.get(region, []):
            ax.plot([year], [value], "D", color=INK, markersize=4.5)
    if data.record:
        ax.plot([], [], "D", color=INK, markersize=4.5, label="recorded (Europol TE-SAT)")
    ax.set_ylabel("plots per year")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _count_axis(ax.yaxis)
    ax.grid(axis="y", color="#e4e8ec", linewidth=0.6)
    ax.legend(fontsize=7.5, frameon=False, loc="upper left")
    title = "Plots at home per year by region"
    figure.suptitle(title, x=0.01, ha="left", fontsize=10.5, fontweight="bold")
    return Picture("home-front", title, figure)


def data_years(data: HomeFrontContent, region: str) -> list[int]:
    """The years with a model band for `region` (all of the run's whole years among those shown)."""
    return [year for i, year in enumerate(data.years) if np.isfinite(data.regions[region][1, i])]


def network_picture(data: NetworkContent) -> Picture:
    """The alliance network at each date, groups kept in place so the panels can be compared."""
    union = nx.Graph()
    for _, graph in data.graphs:
        union.add_nodes_from(graph.nodes(data=True))
        union.add_edges_from((a, b) for a, b, kind in graph.edges(data="type") if kind != "rivalry")
    position = nx.kamada_kawai_layout(union) if union.number_of_nodes() > 2 else nx.circular_layout(union)
    kinds = sorted({str(kind) for _, g in data.graphs for _, _, kind in g.edges(data="type") if kind != "rivalry"})
    tie_colors = {kind: PALETTE[(i + 3) % len(PALETTE)] for i, kind in enumerate(kinds)}
    families = sorted({str(union.nodes[n].get("family", "")) for n in union.nodes})
    colors = {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(families)}
    panels = len(data.graphs)
    columns = min(panels, 3)
    rows = -(-panels // columns)
    height = 3.3 * rows + 0.8
    figure = Figure(figsize=(7.6, height))
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.45 / height, top=1 - 0.6 / height, wspace=0.05,
                           hspace=0.12)
    axes = figure.subplots(rows, columns, squeeze=False)
    largest = max((float(g.nodes[n].get("strength", 0)) for _, g in data.graphs for n in g.nodes), default=1) or 1
    labelled: list[tuple[Axes, list[Text], list[np.ndarray]]] = []
    for k, (date, graph) in enumerate(data.graphs):
        ax = axes[k // columns][k % columns]
        ax.set_axis_off()
        ax.set_title(date, fontsize=9, loc="left")
        for a, b, attributes in graph.edges(data=True):
            (xa, ya), (xb, yb) = position[a], position[b]
            if attributes.get("type") == "rivalry":
                ax.plot([xa, xb], [ya, yb], color=LATER, linewidth=0.8, linestyle=(0, (3, 2)), alpha=0.6)
            else:
                share = float(attributes.get("probability", 1.0))
                ax.plot([xa, xb], [ya, yb], color=tie_colors[str(attributes.get("type"))], linewidth=0.4 + 2.2 * share,
                        alpha=0.15 + 0.7 * share)
        names = []
        for node, attributes in graph.nodes(data=True):
            x, y = position[node]
            active = float(attributes.get("active", 1.0))
            size = 18 + 260 * np.sqrt(max(float(attributes.get("strength", 0)), 0) / largest)
            ax.scatter([x], [y], s=size, color=colors[str(attributes.get("family", ""))], alpha=0.25 + 0.75 * active,
                       edgecolors="white", linewidths=0.6, zorder=3)
            name = str(attributes.get("label") or label(str(node)))
            names.append(ax.text(x, y, plain(name), ha="center", va="top", fontsize=6, alpha=0.4 + 0.6 * active,
                                 zorder=4))
        ax.margins(0.12)
        labelled.append((ax, names, [position[node] for node in graph.nodes]))
    for k in range(panels, rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    _separate_labels(figure, labelled)
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[f], label=plain(label(f) or "groups"))
               for f in families]
    handles += [Line2D([], [], color=tie_colors[k], linewidth=2, label=plain(k)) for k in kinds]
    handles.append(Line2D([], [], color=LATER, linestyle=(0, (3, 2)), label="rivalry"))
    figure.legend(handles=handles, loc="lower left", ncols=min(len(handles), 6), fontsize=7.5, frameon=False)
    title = "The alliance network"
    figure.suptitle(title, x=0.01, ha="left", fontsize=10, fontweight="bold")
    return Picture("alliance-network", title, figure)


def _separate_labels(figure: Figure, panels: Sequence[tuple[Axes, list[Text], list[np.ndarray]]]) -> None:
    """Move node labels apart so that none overlaps another or a node's centre (adjustText, run for a fixed
    number of steps, never a time limit, so the same network always gets the same picture)."""
    from adjustText import adjust_text  # imported when a network is drawn

    renderer = FigureCanvasAgg(figure).get_renderer()  # to measure the labels with
    for ax, texts, points in panels:
        if texts:
            xs, ys = np.array(points).T
            adjust_text(texts, x=xs, y=ys, ax=ax, expand=(1.2, 1.6), iter_lim=LABEL_STEPS, time_lim=None)
            _push_apart(ax, texts, renderer)


def _push_apart(ax: Axes, texts: list[Text], renderer) -> None:
    """What adjustText left overlapping (it minimises overlap, it does not promise none): move the lower label
    of each overlapping pair down below the other, until no two labels (with a margin) overlap."""
    for _ in range(len(texts) ** 2):
        boxes = [text.get_window_extent(renderer).expanded(1.08, 1.3) for text in texts]
        pair = next(((i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
                     if boxes[i].overlaps(boxes[j])), None)
        if pair is None:
            return
        lower, upper = sorted(pair, key=lambda k: (boxes[k].y0, k))
        x, y = ax.transData.transform(texts[lower].get_position())
        moved = ax.transData.inverted().transform((x, y - (boxes[lower].y1 - boxes[upper].y0)))
        texts[lower].set_position(tuple(moved))


def svg_markup(picture: Picture) -> str:
    """The figure as an inline <svg> element (no XML prolog), text kept as text."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        picture.figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def save_files(picture: Picture, folder: Path) -> list[Path]:
    """Write FOLDER/STEM.png and .svg, each via a temporary file renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, extra in ((".svg", {"metadata": {"Date": None}}), (".png", {"dpi": 200})):
        path = folder / f"{safe_stem(picture.stem)}{suffix}"
        with atomic_path(path) as partial, matplotlib.rc_context(STYLE):
            picture.figure.savefig(partial, format=suffix[1:], **extra)
        written.append(path)
    return written


def safe_stem(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "figure"
