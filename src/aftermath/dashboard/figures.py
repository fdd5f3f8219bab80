"""Plotly figures of the dashboard: a series over time with its bands and the recorded figures on top,
paired difference bands, and the alliance network.

Plotly draws titles, legends and hover text as markup (it reads <b>, <br>, <a> ...), so every piece of
scenario text passes through `html.escape` on its way in.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from aftermath.formatting import band as band_text
from aftermath.formatting import number
from aftermath.network.schema import CAPACITIES

COLOURS = ("#1f5f8b", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")


def _months(times: np.ndarray) -> list[str]:
    return [str(t)[:7] for t in np.asarray(times, dtype="datetime64[M]")]


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _layout(figure: go.Figure, title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        title={"text": html.escape(title), "font": {"size": 15}}, margin={"l": 60, "r": 20, "t": 50, "b": 40},
        yaxis_title=html.escape(y_title), hovermode="x unified", template="plotly_white", height=420,
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def add_band(figure: go.Figure, times: np.ndarray, band: Mapping[str, np.ndarray], name: str, colour: str) -> None:
    """A 5-95% band (filled) and its median line."""
    months = _months(times)
    label = html.escape(name)
    figure.add_trace(go.Scatter(x=months, y=band["high"], mode="lines", line={"width": 0}, showlegend=False,
                                hoverinfo="skip", legendgroup=label))
    figure.add_trace(go.Scatter(x=months, y=band["low"], mode="lines", line={"width": 0}, fill="tonexty",
                                fillcolor=_rgba(colour, 0.22), name=f"{label}: 5-95%", legendgroup=label,
                                hovertemplate="5%: %{y:,.4g}<extra></extra>"))
    figure.add_trace(go.Scatter(x=months, y=band["median"], mode="lines", line={"color": colour, "width": 2},
                                name=f"{label}: median", legendgroup=label,
                                hovertemplate="median: %{y:,.4g}<extra></extra>"))


def add_observations(figure: go.Figure, observations: Sequence[tuple]) -> None:
    """Recorded figures (month, value, low, high, source) as points with their range."""
    if not observations:
        return
    months = [o[0] for o in observations]
    values = np.array([o[1] for o in observations])
    plus = [(o[3] - o[1]) if o[3] is not None else 0.0 for o in observations]
    minus = [(o[1] - o[2]) if o[2] is not None else 0.0 for o in observations]
    figure.add_trace(go.Scatter(
        x=months, y=values, mode="markers", name="recorded", marker={"color": "black", "size": 8, "symbol": "diamond"},
        error_y={"type": "data", "array": plus, "arrayminus": minus, "visible": True, "color": "#555"},
        text=[html.escape(o[4]) for o in observations], hovertemplate="recorded: %{y:,.4g} (%{text})<extra></extra>",
    ))


def explore_figure(
    times: np.ndarray, values: np.ndarray, title: str, y_title: str, ensemble: Mapping[str, np.ndarray] | None,
    ensemble_label: str, observations: Sequence[tuple],
) -> go.Figure:
    """The deterministic run as a line, the latest ensemble's band if it matches, the recorded figures."""
    figure = go.Figure()
    if ensemble is not None:
        add_band(figure, times, ensemble, ensemble_label, COLOURS[1])
    figure.add_trace(go.Scatter(x=_months(times), y=values, mode="lines", name="deterministic",
                                line={"color": COLOURS[0], "width": 3},
                                hovertemplate="deterministic: %{y:,.4g}<extra></extra>"))
    add_observations(figure, observations)
    return _layout(figure, title, y_title)


def bands_figure(
    times: np.ndarray, bands: Mapping[str, Mapping[str, np.ndarray]], title: str, y_title: str,
    observations: Sequence[tuple] = (), zero_line: bool = False,
) -> go.Figure:
    """Several labelled bands (arms of a stored run, or paired differences) over time."""
    figure = go.Figure()
    for position, (label, band) in enumerate(bands.items()):
        add_band(figure, times, band, label, COLOURS[position % len(COLOURS)])
    add_observations(figure, observations)
    if zero_line:
        figure.add_hline(y=0, line={"color": "#333", "width": 1, "dash": "dot"})
    return _layout(figure, title, y_title)


def network_layout(graph: nx.Graph, groups: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Fixed positions of every declared group (spring layout, seeded), so nodes stay put as the date moves."""
    full = nx.Graph()
    full.add_nodes_from(groups)
    full.add_edges_from(graph.edges)
    return {node: (float(x), float(y)) for node, (x, y) in nx.spring_layout(full, seed=3, k=0.9).items()}


def network_figure(graph: nx.Graph, positions: Mapping[str, tuple[float, float]], title: str) -> go.Figure:
    """Groups as nodes (size: strength; colour: share of runs active), alliance ties as lines (width:
    probability), rivalries dotted; hover a group for its capacities and ties."""
    figure = go.Figure()
    ties = [(a, b, d) for a, b, d in graph.edges(data=True) if d.get("type") != "rivalry"]
    rivalries = [(a, b, d) for a, b, d in graph.edges(data=True) if d.get("type") == "rivalry"]
    bins = ((0.0, 0.34, 1.0), (0.34, 0.67, 2.5), (0.67, 1.01, 4.5))
    for low, high, width in bins:
        chosen = [(a, b) for a, b, d in ties if low < d["probability"] <= high]
        _add_edges(figure, chosen, positions, {"color": "#34495e", "width": width},
                   f"tie, probability {number(low, 'share')} to {number(min(high, 1), 'share')}")
    _add_edges(figure, [(a, b) for a, b, _ in rivalries], positions, {"color": "#c0392b", "width": 1, "dash": "dot"},
               "rivalry")
    nodes = list(graph.nodes(data=True))
    strength = np.array([d["strength"] for _, d in nodes], dtype=float)
    sizes = 12 + 30 * np.sqrt(strength / strength.max()) if len(nodes) and strength.max() > 0 else 14
    figure.add_trace(go.Scatter(
        x=[positions[n][0] for n, _ in nodes], y=[positions[n][1] for n, _ in nodes], mode="markers+text",
        text=[html.escape(n) for n, _ in nodes], textposition="top center", name="groups",
        hovertext=[_group_hover(graph, n, d) for n, d in nodes], hoverinfo="text",
        marker={"size": sizes, "color": [d["active"] for _, d in nodes], "colorscale": "Blues", "cmin": 0, "cmax": 1,
                "line": {"color": "#222", "width": 1}, "colorbar": {"title": "active<br>(share)", "thickness": 12}},
    ))
    figure.update_layout(
        title={"text": html.escape(title), "font": {"size": 15}}, template="plotly_white", height=560,
        xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.02}, hovermode="closest",
    )
    return figure


def _add_edges(figure: go.Figure, edges: Sequence[tuple[str, str]], positions: Mapping, line: dict, name: str) -> None:
    if not edges:
        return
    xs: list[float | None] = []
    ys: list[float | None] = []
    for a, b in edges:
        xs += [positions[a][0], positions[b][0], None]
        ys += [positions[a][1], positions[b][1], None]
    figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=line, name=name, hoverinfo="skip"))


def _group_hover(graph: nx.Graph, node: str, data: Mapping) -> str:
    ties = sorted(((graph.edges[node, other].get("probability", 0.0), other, graph.edges[node, other].get("type", ""))
                   for other in graph.neighbors(node)), reverse=True)
    lines = [
        f"<b>{html.escape(node)}</b> ({html.escape(str(data.get('family', '')))})",
        f"active in {number(data['active'], 'share')} of runs",
        f"strength {band_text(data['strength'], data['strength_low'], data['strength_high'], 'count')}",
        f"allies {band_text(data['allies'], data['allies_low'], data['allies_high'])}",
        f"capacity {band_text(data['capacity'], data['capacity_low'], data['capacity_high'])}",
        "declared capacities: " + ", ".join(f"{c} {number(data[f'declared_{c}'])}" for c in CAPACITIES),
    ]
    shown = [f"{html.escape(o)} {t} {number(p, 'share')}" for p, o, t in ties[:9]]
    lines.append("ties: " + ("<br>".join(", ".join(shown[i : i + 3]) for i in range(0, len(shown), 3)) or "none")
                 + (f"<br>and {len(ties) - 9} more" if len(ties) > 9 else ""))
    return "<br>".join(lines)
