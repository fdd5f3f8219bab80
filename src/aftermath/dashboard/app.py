"""The Dash app: layout and callbacks over `Workspace` (the data) and `Jobs` (long runs on a thread).

Tabs: explore (sliders, the deterministic run redrawn on each move, a stochastic ensemble on request),
compare (policy mixes against the baseline, paired differences), store (stored runs, their bands, their
report) and network (the alliance network at a date). Dash renders text through React, which escapes
it; text that goes into Plotly is escaped in `figures`. No callback raises: a failure becomes a message
on the page and the server carries on.
"""

from __future__ import annotations

import base64
import binascii
import html as html_text
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dash
import numpy as np
from dash import ALL, MATCH, Input, Output, State, ctx, dcc, html, no_update

from aftermath.dashboard import figures
from aftermath.dashboard.jobs import Job, Jobs, error_text
from aftermath.dashboard.workspace import (
    OUTCOME,
    Entry,
    Settings,
    Workspace,
    band,
    filter_choices,
    observations_for,
    select_series,
    series_choices,
    series_dims,
    series_unit,
    value_table,
)
from aftermath.experiments import BASELINE, load_result, paired_differences, run_experiment, run_stored
from aftermath.formatting import Kind, number, span
from aftermath.formatting import band as band_text
from aftermath.network.export import network_graph
from aftermath.report.build import collect_stored, render
from aftermath.scenario.describe import outcome_kind
from aftermath.scenario.schema import Scenario, month_label
from aftermath.store import Store
from aftermath.summary import key_dates

POLL_MS = 400
POSTERIOR, PRIOR = "posterior", "prior"
"""The choices of where ensembles and comparisons draw their parameters from (as `--prior` on the command
line): the scenario's shipped posterior when it has a current one, or the declared priors."""
REPORT_STOCK_RUNS = 20
"""Baseline runs re-run for the map of a stored run's report opened from the dashboard (the CLI's 100 take
a minute on the default scenario)."""
LIMITS = {"samples": (1, 200), "replicates": (1, 50)}
STYLE = {"font-family": "system-ui, sans-serif", "margin": "0 auto", "max-width": "1300px", "padding": "8px 16px"}
CELL = {"padding": "2px 12px", "border-bottom": "1px solid #ddd", "text-align": "right"}
ERROR_STYLE = {"color": "#a61b1b", "white-space": "pre-wrap", "margin": "6px 0"}


def _number_input(id_: str, value: int, limits: tuple[int, int]) -> dcc.Input:
    return dcc.Input(id=id_, type="number", value=value, min=limits[0], max=limits[1], step=1,
                     style={"width": "70px", "margin-right": "12px"})


def _run_controls(prefix: str, samples: int, replicates: int, button: str) -> html.Div:
    """Samples, replicates, seed, 'store it' and the run button, with a progress bar and a status line."""
    return html.Div([
        html.Label("parameter samples "), _number_input(f"{prefix}-samples", samples, LIMITS["samples"]),
        html.Label("replicates each "), _number_input(f"{prefix}-replicates", replicates, LIMITS["replicates"]),
        html.Label("seed "), _number_input(f"{prefix}-seed", 1, (0, 2**31 - 1)),
        dcc.Checklist(id=f"{prefix}-store", options=[{"label": " write the run to the store", "value": "store"}],
                      value=[], inline=True, style={"display": "inline-block", "margin-right": "12px"}),
        html.Button(button, id=f"{prefix}-run", n_clicks=0),
        html.Div([html.Progress(id=f"{prefix}-progress", value="0", max="1", style={"width": "300px"}),
                  html.Span(id=f"{prefix}-status", style={"margin-left": "10px"})], style={"margin-top": "6px"}),
    ], style={"margin": "10px 0"})


def layout(workspace: Workspace, first: str) -> html.Div:
    keys = workspace.offered()
    explore = dcc.Tab(label="Explore", value="explore", children=[
        html.Div([
            html.Div([
                html.H3("Policies"),
                html.P("Strength 0 is off; the start slider moves the month the policy begins.",
                       style={"font-size": "0.85em"}),
                html.Div(id="policy-controls"),
                html.H3("Parameters"),
                dcc.Dropdown(id="parameter-picker", multi=True, placeholder="parameters to move..."),
                html.Div(id="parameter-controls"),
            ], style={"flex": "0 0 360px", "padding-right": "16px", "max-height": "900px", "overflow-y": "auto"}),
            html.Div([
                dcc.Graph(id="explore-chart", config={"displaylogo": False}),
                html.Div(id="explore-timing", style={"font-size": "0.85em", "color": "#555"}),
                html.Table(id="explore-numbers", style={"margin-top": "8px", "border-collapse": "collapse"}),
                html.H3("Ensemble (stochastic engine; parameter draws as chosen above the tabs)"),
                _run_controls("ensemble", 8, 4, "Run ensemble"),
            ], style={"flex": "1 1 auto", "min-width": "0"}),
        ], style={"display": "flex"}),
    ])
    compare = dcc.Tab(label="Compare", value="compare", children=[
        html.P("Each mix runs against the baseline with the same seed and parameter draws (common random "
               "numbers); the chart shows the paired differences, policy minus baseline, member by member. "
               "Strengths and start months are the Explore tab's (a policy at 0 there runs at its default)."),
        dcc.Dropdown(id="mix-policies", multi=True, placeholder="policies in a mix..."),
        html.Button("Add mix", id="mix-add", n_clicks=0, style={"margin": "6px 6px 6px 0"}),
        html.Button("Clear mixes", id="mix-clear", n_clicks=0),
        html.Ul(id="mix-list"),
        _run_controls("compare", 8, 4, "Run comparison"),
        dcc.Graph(id="compare-chart", config={"displaylogo": False}),
        html.Table(id="compare-numbers", style={"border-collapse": "collapse"}),
    ])
    store = dcc.Tab(label="Store", value="store", children=[
        html.P(f"Runs in {workspace.store}" if workspace.store else "No store given (--store PATH)."),
        html.Button("Refresh", id="store-refresh", n_clicks=0),
        html.Div(id="store-message", style=ERROR_STYLE),
        html.Div(html.Table(id="runs-table", style={"border-collapse": "collapse", "font-size": "0.85em"}),
                 style={"overflow-x": "auto", "max-height": "300px"}),
        html.Div([
            dcc.Dropdown(id="stored-run", placeholder="a run...", style={"width": "200px", "display": "inline-block"}),
            dcc.Dropdown(id="stored-series", placeholder="an outcome...",
                         style={"width": "520px", "display": "inline-block", "margin-left": "10px"}),
            html.A("Open this run's report", id="stored-report", href="", target="_blank",
                   style={"margin-left": "12px"}),
        ], style={"margin": "10px 0"}),
        html.Dl(id="stored-meta", style={"font-size": "0.85em"}),
        dcc.Graph(id="stored-chart", config={"displaylogo": False}),
    ])
    network = dcc.Tab(label="Alliance network", value="network", children=[
        html.P("The alliance network of the deterministic run at the Explore tab's settings. Hover a group."),
        html.Div(id="network-month", style={"font-weight": "bold"}),
        dcc.Slider(id="network-date", min=0, max=1, step=1, value=1, allow_direct_input=False),
        dcc.Graph(id="network-chart", config={"displaylogo": False}),
    ])
    return html.Div([
        html.H1("aftermath", style={"margin": "4px 0"}),
        html.Div([
            dcc.Dropdown(id="scenario", options=[{"label": k, "value": k} for k in keys], value=first,
                         clearable=False, style={"width": "420px", "display": "inline-block"}),
            dcc.Upload(html.Button("Open a scenario file..."), id="upload", max_size=20_000_000,
                       style={"display": "inline-block", "margin-left": "10px"}),
        ]),
        html.H2(id="scenario-title", style={"font-size": "1.2em"}),
        html.Div(id="message", style=ERROR_STYLE),
        html.Div([
            html.Label("Outcome "),
            dcc.Dropdown(id="series", clearable=False, style={"width": "620px", "display": "inline-block"}),
            html.Div(id="filter-controls", style={"display": "inline-block", "margin-left": "10px"}),
        ]),
        html.Div([
            html.Label("Ensembles and comparisons draw parameters from "),
            dcc.RadioItems(id="draws-from", value=POSTERIOR, inline=True,
                           options=[{"label": " the posterior shipped with the scenario ", "value": POSTERIOR},
                                    {"label": " the priors (declared distributions)", "value": PRIOR}],
                           style={"display": "inline-block"}),
            html.Div(id="draws-label", style={"font-size": "0.85em", "color": "#555"}),
        ], style={"margin": "6px 0"}),
        dcc.Tabs(id="tabs", value="explore", children=[explore, compare, store, network]),
        dcc.Store(id="ensemble-job"), dcc.Store(id="compare-job"), dcc.Store(id="mixes", data=[]),
        dcc.Store(id="ensemble-ready"), dcc.Store(id="compare-ready"),
        dcc.Interval(id="poll", interval=POLL_MS, disabled=True),
    ], style=STYLE)


def _year_marks(scenario: Scenario, every: int = 2) -> dict[int, str]:
    first, last = scenario.time.start, scenario.time.end
    return {m: str(m // 12) for m in range(first, last + 1) if m % 12 == 0 and (m // 12) % every == 0}


def policy_controls(scenario: Scenario) -> list:
    controls = []
    for name, policy in scenario.interventions.items():
        low, high = policy.strength_range
        high = max(high, policy.strength)
        controls.append(html.Div([
            html.B(name), html.Div(policy.description.strip(), style={"font-size": "0.8em", "color": "#444"}),
            html.Div("strength", style={"font-size": "0.8em"}),
            dcc.Slider(id={"kind": "strength", "name": name}, min=low, max=high, step=(high - low) / 20 or 0.05,
                       value=0, marks={low: f"{low:g}", high: f"{high:g}"}, updatemode="mouseup",
                       tooltip={"placement": "bottom"}),
            html.Div([f"start (declared {month_label(policy.start)}): ",
                      html.Span(month_label(policy.start), id={"kind": "start-month", "name": name})],
                     style={"font-size": "0.8em"}),
            dcc.Slider(id={"kind": "start", "name": name}, min=scenario.time.start, max=scenario.time.end, step=1,
                       value=policy.start, marks=_year_marks(scenario, 4), updatemode="mouseup",
                       allow_direct_input=False),
        ], style={"margin-bottom": "14px"}))
    return controls or [html.P("This scenario declares no policies.")]


def parameter_controls(entry: Entry, names: Sequence[str]) -> list:
    by_name = {lever.name: lever for lever in entry.levers}
    controls = []
    for name in names:
        lever = by_name.get(name)
        if lever is None:
            continue
        width = lever.high - lever.low
        controls.append(html.Div([
            html.B(name), html.Span(f" ({lever.unit}; declared {number(lever.value)}, 5-95% "
                                    f"{span(lever.low, lever.high)})", style={"font-size": "0.8em"}),
            dcc.Slider(id={"kind": "parameter", "name": name}, min=lever.low, max=lever.high,
                       step=width / 40 if width > 0 else None, value=lever.value, updatemode="mouseup",
                       marks={lever.low: number(lever.low), lever.high: number(lever.high)},
                       tooltip={"placement": "bottom"}),
        ], style={"margin-bottom": "10px"}))
    return controls


def settings_from(entry: Entry, strengths: Sequence, strength_ids: Sequence, starts: Sequence,
                  start_ids: Sequence, values: Sequence, value_ids: Sequence) -> Settings:
    """The explorer's settings from its sliders; sliders of another scenario (left over while the page
    redraws) are ignored, and a start month is kept only where it was moved."""
    policies = entry.scenario.interventions
    declared = {lever.name: lever.value for lever in entry.levers}
    return Settings.of(
        {i["name"]: v for i, v in zip(strength_ids, strengths, strict=True) if i["name"] in policies and v},
        {i["name"]: int(v) for i, v in zip(start_ids, starts, strict=True)
         if i["name"] in policies and v is not None and int(v) != policies[i["name"]].start},
        {i["name"]: v for i, v in zip(value_ids, values, strict=True)
         if i["name"] in declared and v is not None and v != declared[i["name"]]},
    )


def _filters(scenario: Scenario, values: Sequence, ids: Sequence) -> dict[str, list[str]]:
    return {i["dim"]: list(v or []) for i, v in zip(ids, values, strict=True) if i["dim"] in scenario.dimensions}


def _series_title(scenario: Scenario, choice: str, filters: Mapping[str, Sequence[str]]) -> str:
    picked = "; ".join(f"{dim}: {', '.join(v)}" for dim, v in filters.items() if v)
    return choice.split(":", 1)[1] + (f" ({picked})" if picked else "")


def _y_title(scenario: Scenario, choice: str) -> str:
    return series_unit(scenario, choice.removeprefix(OUTCOME)) if choice.startswith(OUTCOME) else "persons"


def _kind(scenario: Scenario, choice: str) -> Kind:
    """How the chosen series reads (aftermath.formatting): compartments are counts of people."""
    return outcome_kind(scenario, choice.removeprefix(OUTCOME)) if choice.startswith(OUTCOME) else "count"


def _numbers_table(rows: Sequence[tuple[str, float]], ensemble: Mapping[str, tuple] | None, kind: Kind) -> list:
    head = [html.Th("month"), html.Th("deterministic")] + ([html.Th("ensemble median (5-95%)")] if ensemble else [])
    body = []
    for date, value in rows:
        cells = [html.Td(date, style=CELL), html.Td(number(value, kind), className="value", style=CELL,
                                                   **{"data-value": repr(value)})]
        if ensemble:
            median, low, high = ensemble.get(date, (np.nan, np.nan, np.nan))
            cells.append(html.Td(band_text(median, low, high, kind), className="band", style=CELL))
        body.append(html.Tr(cells, **{"data-month": date}))
    return [html.Thead(html.Tr(head)), html.Tbody(body)]


def _band_at(times: np.ndarray, bands: Mapping[str, np.ndarray], dates: Sequence[str]) -> dict[str, tuple]:
    months = [str(t)[:7] for t in np.asarray(times, dtype="datetime64[M]")]
    return {d: (bands["median"][months.index(d)], bands["low"][months.index(d)], bands["high"][months.index(d)])
            for d in dates if d in months}


def _progress(job: Job | None) -> tuple[str, str, str]:
    if job is None:
        return "0", "1", ""
    if job.state == "running":
        return str(job.done), str(max(job.total, 1)), f"{job.label}: {job.done}/{job.total} members"
    if job.state == "failed":
        return "0", "1", f"{job.label} failed: {job.error}"
    return str(job.total), str(max(job.total, 1)), f"{job.label}: done in {job.seconds:.1f} s"


def make_app(workspace: Workspace, first: str | None = None) -> dash.Dash:
    """The dashboard over a workspace; `first` is the scenario shown at start (default: the first offered)."""
    jobs = Jobs()
    app = dash.Dash(__name__, title="aftermath dashboard", update_title=None)
    app.layout = layout(workspace, first or workspace.offered()[0])
    register_callbacks(app, workspace, jobs)
    register_routes(app, workspace)
    return app


def guarded(outputs: int, message_index: int) -> Callable:
    """A callback that never raises: on failure every output is left as it was but the message, which
    gets the error's one line."""

    def wrap(function: Callable) -> Callable:
        def run(*args: Any) -> Any:
            try:
                return function(*args)
            except dash.exceptions.PreventUpdate:
                raise
            except Exception as exc:
                result = [no_update] * outputs
                result[message_index] = error_text(exc)
                return tuple(result) if outputs > 1 else result[0]

        run.__name__ = function.__name__
        return run

    return wrap


def register_callbacks(app: dash.Dash, workspace: Workspace, jobs: Jobs) -> None:
    slider_inputs = [
        Input({"kind": "strength", "name": ALL}, "value"), Input({"kind": "start", "name": ALL}, "value"),
        Input({"kind": "parameter", "name": ALL}, "value"),
    ]
    slider_ids = [
        State({"kind": "strength", "name": ALL}, "id"), State({"kind": "start", "name": ALL}, "id"),
        State({"kind": "parameter", "name": ALL}, "id"),
    ]

    def current_settings(key: str, strengths, starts, values, strength_ids, start_ids, value_ids):
        return settings_from(workspace.entry(key), strengths, strength_ids, starts, start_ids, values, value_ids)

    @app.callback(
        Output("scenario", "options"), Output("scenario", "value"), Output("message", "children", allow_duplicate=True),
        Input("upload", "contents"), State("upload", "filename"), prevent_initial_call=True,
    )
    @guarded(3, 2)
    def upload(contents: str | None, filename: str | None):
        if not contents:
            raise dash.exceptions.PreventUpdate
        try:
            text = base64.b64decode(contents.split(",", 1)[1]).decode("utf-8")
        except (IndexError, binascii.Error, UnicodeDecodeError):
            return no_update, no_update, f"{filename}: not a UTF-8 text file; expected a YAML scenario"
        key = workspace.add_upload(text, filename or "uploaded.yaml")
        return [{"label": k, "value": k} for k in workspace.offered()], key, ""

    @app.callback(
        Output("scenario-title", "children"), Output("policy-controls", "children"),
        Output("parameter-picker", "options"), Output("parameter-picker", "value"),
        Output("series", "options"), Output("series", "value"), Output("mix-policies", "options"),
        Output("network-date", "min"), Output("network-date", "max"), Output("network-date", "value"),
        Output("network-date", "marks"), Output("message", "children"),
        Input("scenario", "value"),
    )
    @guarded(12, 11)
    def choose_scenario(key: str):
        scenario = workspace.entry(key).scenario
        choices = series_choices(scenario)
        lever_names = [lever.name for lever in workspace.entry(key).levers]
        return (
            scenario.title, policy_controls(scenario),
            [{"label": n, "value": n} for n in lever_names], lever_names[:2],
            [{"label": label, "value": value} for value, label in choices], choices[0][0],
            [{"label": n, "value": n} for n in scenario.interventions],
            scenario.time.start, scenario.time.end, scenario.time.end, _year_marks(scenario), "",
        )

    @app.callback(Output({"kind": "start-month", "name": MATCH}, "children"),
                  Input({"kind": "start", "name": MATCH}, "value"))
    def show_start(month: int | None):
        return month_label(int(month)) if month is not None else ""

    @app.callback(Output("draws-label", "children"), Input("scenario", "value"), Input("draws-from", "value"))
    def show_draws(key: str, draws_from: str | None):
        try:
            source = workspace.parameters(key, draws_from == PRIOR)
        except Exception as exc:
            return html.Span(error_text(exc), style=ERROR_STYLE)
        said = f"Parameters are drawn from the {source.label}."
        if source.warning:
            return f"{said} Warning: {source.warning}."
        if draws_from != PRIOR and source.kind == PRIOR:
            return f"{said} No posterior is shipped with this scenario (see 'aftermath calibrate --draws-file')."
        return said

    @app.callback(Output("network-month", "children"), Input("network-date", "value"))
    def show_network_month(month: int | None):
        return month_label(int(month)) if month is not None else ""

    @app.callback(Output("parameter-controls", "children"), Input("parameter-picker", "value"),
                  State("scenario", "value"))
    def choose_parameters(names: list[str] | None, key: str):
        try:
            return parameter_controls(workspace.entry(key), names or [])
        except Exception as exc:
            return html.Div(error_text(exc), style=ERROR_STYLE)

    @app.callback(Output("filter-controls", "children"), Input("series", "value"), State("scenario", "value"))
    def choose_series(choice: str | None, key: str):
        if not choice:
            return []
        try:
            scenario = workspace.entry(key).scenario
            return [dcc.Dropdown(id={"kind": "filter", "dim": dim}, multi=True, placeholder=f"all {dim}",
                                 options=[{"label": label, "value": v} for v, label in filter_choices(scenario, dim)],
                                 style={"width": "300px", "display": "inline-block"})
                    for dim in series_dims(scenario, choice)]
        except Exception as exc:
            return html.Div(error_text(exc), style=ERROR_STYLE)

    @app.callback(
        Output("explore-chart", "figure"), Output("explore-numbers", "children"), Output("explore-timing", "children"),
        Output("message", "children", allow_duplicate=True),
        Input("scenario", "value"), *slider_inputs, Input("series", "value"),
        Input({"kind": "filter", "dim": ALL}, "value"), Input("ensemble-ready", "data"),
        *slider_ids, State({"kind": "filter", "dim": ALL}, "id"), prevent_initial_call="initial_duplicate",
    )
    @guarded(4, 3)
    def explore(key, strengths, starts, values, choice, filter_values, ready, strength_ids, start_ids, value_ids,
                filter_ids):
        began = time.perf_counter()
        scenario = workspace.entry(key).scenario
        valid = dict(series_choices(scenario))
        choice = choice if choice in valid else next(iter(valid))
        filters = _filters(scenario, filter_values, filter_ids)
        settings = current_settings(key, strengths, starts, values, strength_ids, start_ids, value_ids)
        dataset = workspace.explore(key, settings, keep_compartments=not choice.startswith(OUTCOME))
        engine_seconds = time.perf_counter() - began
        data = select_series(dataset, scenario, choice, filters)
        job = jobs.get(ready)
        ensemble, label = None, ""
        if job is not None and job.state == "done" and job.result["key"] == key and job.result["settings"] == settings:
            result = job.result["result"]
            ensemble_data = select_series(result.arms[result.reference], scenario, choice, filters)
            ensemble, label = band(ensemble_data), f"ensemble {job.result['size']}, {job.result['drawn_from']}"
        observed = observations_for(scenario, choice) if not any(filters.values()) else []
        times = data["time"].values
        figure = figures.explore_figure(times, data.values[0], _series_title(scenario, choice, filters),
                                        _y_title(scenario, choice), ensemble, label, observed)
        dates = key_dates(scenario)
        table = _numbers_table(value_table(data.isel(replicate=0), dates),
                               _band_at(times, ensemble, dates) if ensemble else None, _kind(scenario, choice))
        policies = ", ".join(f"{k}={v:g}" for k, v in settings.strengths) or "baseline"
        timing = (f"deterministic run ({policies}): {engine_seconds:.2f} s on the server, "
                  f"{time.perf_counter() - began:.2f} s with the chart")
        return figure, table, timing, ""

    def start_job(prefix: str, key: str, settings: Settings, arms: list, samples, replicates, seed, store_it,
                  label: str, prior: bool) -> Job:
        samples, replicates, seed = _checked(samples, "samples"), _checked(replicates, "replicates"), int(seed or 0)
        experiment, source = workspace.experiment(key, settings, arms, samples, replicates, seed, prior)
        total = experiment.members * len(experiment.arms)

        def work(advance: Callable[[int], None]) -> dict:
            if store_it:
                if workspace.store is None:
                    raise ValueError("no store: start the dashboard with --store PATH to keep runs")
                store = Store(workspace.store)
                run_id = run_stored(store, experiment, prefix, progress=lambda n: advance(n * len(experiment.arms)))
                result = load_result(store, run_id).result
            else:
                run_id = None
                result = run_experiment(experiment, progress=lambda n: advance(n * len(experiment.arms)))
            return {"key": key, "settings": settings, "result": result, "run_id": run_id, "drawn_from": source.kind,
                    "size": f"{samples} x {replicates}" + (f", run {run_id}" if run_id else "")}

        return jobs.start(f"{label} (parameters from the {source.label})", total, work)

    def launch(prefix: str, label: str, key: str, draws_from: str | None, arms_of: Callable[[Settings], list],
               sliders: Sequence, samples, replicates, seed, store_it) -> tuple:
        """Start a job from the Explore tab's sliders: (job id, poll disabled, status line)."""
        settings = current_settings(key, *sliders)
        try:
            job = start_job(prefix, key, settings, arms_of(settings), samples, replicates, seed, bool(store_it), label,
                            draws_from == PRIOR)
        except RuntimeError as exc:
            return no_update, no_update, str(exc)
        return job.job_id, False, f"{job.label}: 0/{job.total} members"

    slider_states = [
        State({"kind": "strength", "name": ALL}, "value"), State({"kind": "start", "name": ALL}, "value"),
        State({"kind": "parameter", "name": ALL}, "value"), *slider_ids,
    ]

    @app.callback(
        Output("ensemble-job", "data"), Output("poll", "disabled", allow_duplicate=True),
        Output("ensemble-status", "children", allow_duplicate=True),
        Input("ensemble-run", "n_clicks"), State("scenario", "value"), State("draws-from", "value"), *slider_states,
        State("ensemble-samples", "value"), State("ensemble-replicates", "value"), State("ensemble-seed", "value"),
        State("ensemble-store", "value"), prevent_initial_call=True,
    )
    @guarded(3, 2)
    def run_ensemble(clicks, key, draws_from, *rest):
        return launch("ensemble", "ensemble", key, draws_from, lambda settings: [settings.policies], rest[:6],
                      *rest[6:])

    @app.callback(
        Output("mixes", "data"), Output("mix-list", "children"), Output("mix-policies", "value"),
        Input("mix-add", "n_clicks"), Input("mix-clear", "n_clicks"), Input("scenario", "value"),
        State("mix-policies", "value"), State("mixes", "data"),
    )
    def edit_mixes(add, clear, key, picked, mixes):
        mixes = list(mixes or [])
        if ctx.triggered_id in ("mix-clear", "scenario"):
            mixes = []
        elif ctx.triggered_id == "mix-add" and picked and sorted(picked) not in mixes:
            mixes.append(sorted(picked))
        return mixes, [html.Li(" + ".join(mix)) for mix in mixes], []

    @app.callback(
        Output("compare-job", "data"), Output("poll", "disabled", allow_duplicate=True),
        Output("compare-status", "children", allow_duplicate=True),
        Input("compare-run", "n_clicks"), State("scenario", "value"), State("draws-from", "value"),
        State("mixes", "data"), *slider_states,
        State("compare-samples", "value"), State("compare-replicates", "value"), State("compare-seed", "value"),
        State("compare-store", "value"), prevent_initial_call=True,
    )
    @guarded(3, 2)
    def run_compare(clicks, key, draws_from, mixes, *rest):
        if not mixes:
            return no_update, no_update, "add at least one policy mix to compare with the baseline"

        def arms(settings: Settings) -> list:
            chosen = settings.policies  # a policy left at 0 in Explore runs at its default strength (None)
            return [{}, *[{name: chosen.get(name) for name in mix} for mix in mixes]]

        return launch("compare", "comparison", key, draws_from, arms, rest[:6], *rest[6:])

    @app.callback(
        Output("ensemble-progress", "value"), Output("ensemble-progress", "max"),
        Output("ensemble-status", "children"), Output("ensemble-ready", "data"),
        Output("compare-progress", "value"), Output("compare-progress", "max"),
        Output("compare-status", "children"), Output("compare-ready", "data"), Output("poll", "disabled"),
        Input("poll", "n_intervals"), State("ensemble-job", "data"), State("compare-job", "data"),
        State("ensemble-ready", "data"), State("compare-ready", "data"), prevent_initial_call=True,
    )
    def poll(_, ensemble_id, compare_id, ensemble_ready, compare_ready):
        ensemble_job, compare_job = jobs.get(ensemble_id), jobs.get(compare_id)
        running = any(job is not None and job.state == "running" for job in (ensemble_job, compare_job))

        def ready(job: Job | None, shown: int | None):
            return job.job_id if job is not None and job.state == "done" and job.job_id != shown else no_update

        return (*_progress(ensemble_job), ready(ensemble_job, ensemble_ready),
                *_progress(compare_job), ready(compare_job, compare_ready), not running)

    @app.callback(
        Output("compare-chart", "figure"), Output("compare-numbers", "children"),
        Output("compare-status", "children", allow_duplicate=True),
        Input("compare-ready", "data"), Input("series", "value"), Input({"kind": "filter", "dim": ALL}, "value"),
        State({"kind": "filter", "dim": ALL}, "id"), prevent_initial_call=True,
    )
    @guarded(3, 2)
    def show_comparison(ready, choice, filter_values, filter_ids):
        job = jobs.get(ready)
        if job is None or job.state != "done" or not choice:
            raise dash.exceptions.PreventUpdate
        scenario = workspace.entry(job.result["key"]).scenario
        if choice not in dict(series_choices(scenario)) or not choice.startswith(OUTCOME):
            return no_update, no_update, "the comparison has the scenario's outcomes only: pick an outcome"
        filters = _filters(scenario, filter_values, filter_ids)
        result = job.result["result"]
        differences = {label: band(select_series(data, scenario, choice, filters))
                       for label, data in paired_differences(result).items()}
        times = result.arms[result.reference]["time"].values
        title = f"{_series_title(scenario, choice, filters)}: policy mix - {BASELINE}, paired (5-95%)"
        figure = figures.bands_figure(times, differences, title, "difference", zero_line=True)
        levels = {label: band(select_series(data, scenario, choice, filters)) for label, data in result.arms.items()}
        dates = key_dates(scenario)
        kind = _kind(scenario, choice)
        head = html.Tr([html.Th("month"), *[html.Th(f"{label}") for label in levels],
                        *[html.Th(f"difference {label}") for label in differences]])
        rows = []
        for date in dates:
            cells = [_band_at(times, b, [date]).get(date) for b in [*levels.values(), *differences.values()]]
            rows.append(html.Tr([html.Td(date, style=CELL),
                                 *[html.Td(band_text(*c, kind, signed=i >= len(levels)) if c else "", style=CELL)
                                   for i, c in enumerate(cells)]]))
        return figure, [html.Thead(head), html.Tbody(rows)], no_update

    @app.callback(
        Output("runs-table", "children"), Output("stored-run", "options"),
        Output("store-message", "children"),
        Input("store-refresh", "n_clicks"), Input("tabs", "value"), Input("ensemble-ready", "data"),
        Input("compare-ready", "data"),
    )
    @guarded(3, 2)
    def list_runs(_, tab, __, ___):
        if workspace.store is None or not Path(workspace.store).exists():
            return [], [], f"no run store at {workspace.store}: runs you choose to store are written there"
        table = Store(workspace.store, lock_timeout=10).runs()
        head = html.Thead(html.Tr([html.Th(c, style=CELL) for c in table.columns]))
        body = html.Tbody([html.Tr([html.Td(str(v), style=CELL) for v in row]) for row in table.itertuples(False)])
        options = [{"label": f"run {r}", "value": int(r)} for r in table["run_id"]]
        return [head, body], options, ""

    @app.callback(
        Output("stored-series", "options"), Output("stored-series", "value"), Output("stored-meta", "children"),
        Output("stored-report", "href"), Output("store-message", "children", allow_duplicate=True),
        Input("stored-run", "value"), State("stored-series", "value"), prevent_initial_call=True,
    )
    @guarded(5, 4)
    def choose_run(run_id, choice):
        if run_id is None:
            raise dash.exceptions.PreventUpdate
        stored = workspace.stored(int(run_id))
        run = stored.run
        scenario_outcomes = [c for c in series_choices(stored.experiment.scenario) if c[0].startswith(OUTCOME)]
        fields = ("kind", "scenario", "scenario_file", "scenario_hash", "seed", "engine", "sampler", "samples",
                  "replicates", "members", "status", "message", "started", "finished", "executor", "versions")
        meta = []
        for name in fields:
            meta += [html.Dt(name, style={"font-weight": "bold"}), html.Dd(str(run.row.get(name)))]
        meta += [html.Dt("arms", style={"font-weight": "bold"}),
                 html.Dd("; ".join(f"{label}: {policies}" for label, policies in run.arms))]
        values = [c[0] for c in scenario_outcomes]
        return ([{"label": label, "value": value} for value, label in scenario_outcomes],
                choice if choice in values else values[0], meta, f"/report/{int(run_id)}", "")

    @app.callback(
        Output("stored-chart", "figure"), Output("store-message", "children", allow_duplicate=True),
        Input("stored-series", "value"), State("stored-run", "value"), prevent_initial_call=True,
    )
    @guarded(2, 1)
    def show_run(choice, run_id):
        if run_id is None or not choice:
            raise dash.exceptions.PreventUpdate
        stored = workspace.stored(int(run_id))
        scenario = stored.experiment.scenario
        result = stored.result
        bands = {label: band(select_series(data, scenario, choice, {})) for label, data in result.arms.items()}
        times = result.arms[result.reference]["time"].values
        title = f"run {run_id}: {choice.removeprefix(OUTCOME)}, {stored.run.row['status']}"
        observed = observations_for(scenario, choice)
        return figures.bands_figure(times, bands, title, _y_title(scenario, choice), observed), ""

    @app.callback(
        Output("network-chart", "figure"), Output("message", "children", allow_duplicate=True),
        Input("tabs", "value"), Input("network-date", "value"), Input("scenario", "value"), *slider_inputs,
        *slider_ids, prevent_initial_call=True,
    )
    @guarded(2, 1)
    def show_network(tab, month, key, strengths, starts, values, strength_ids, start_ids, value_ids):
        if tab != "network" or month is None:
            raise dash.exceptions.PreventUpdate
        scenario = workspace.entry(key).scenario
        if scenario.network is None:
            return figures.go.Figure(), f"{scenario.name} has no alliance network (try alliance_network)"
        settings = current_settings(key, strengths, starts, values, strength_ids, start_ids, value_ids)
        dataset = workspace.explore(key, settings)
        date = month_label(int(month))
        graph = network_graph(dataset, scenario, date)
        positions = positions_for(key, scenario, dataset)
        return figures.network_figure(graph, positions, f"{scenario.title}: alliance network in {date}"), ""

    layouts: dict[str, dict] = {}

    def positions_for(key: str, scenario: Scenario, dataset) -> dict:
        if key not in layouts:
            end = month_label(scenario.time.end)
            everything = network_graph(dataset, scenario, end)
            for tie in scenario.network.ties:  # type: ignore[union-attr]
                everything.add_edge(*tie.groups)
            layouts[key] = figures.network_layout(everything, list(scenario.network.groups))  # type: ignore[union-attr]
        return layouts[key]


def _checked(value: Any, name: str) -> int:
    low, high = LIMITS[name]
    if value is None or not low <= int(value) <= high:
        raise ValueError(f"{name}: expected a whole number from {low} to {high}")
    return int(value)


def register_routes(app: dash.Dash, workspace: Workspace) -> None:
    """/report/RUN: a stored run's report, rendered in memory (nothing is written)."""
    from flask import Response

    @app.server.route("/report/<int:run_id>")
    def stored_report(run_id: int) -> Response:
        if workspace.store is None:
            return Response("no store: start the dashboard with --store PATH", status=404, mimetype="text/plain")
        try:
            content = collect_stored(Store(workspace.store, lock_timeout=10), run_id, stock_runs=REPORT_STOCK_RUNS)
            return Response(render(content), mimetype="text/html")
        except Exception as exc:
            return Response(html_text.escape(error_text(exc)), status=400, mimetype="text/plain")
