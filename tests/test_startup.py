"""Start-up and loading: `aftermath --help` imports no heavy library, the CLI's copies of library constants
agree with the library, and the fast YAML reader reads exactly what the line-numbering reader reads."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftermath.cli import options
from aftermath.scenario import catalogue, loader
from aftermath.scenario.fastyaml import fast_document, top_level_text

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "xarray", "pandas", "scipy", "duckdb", "matplotlib", "sklearn", "pyarrow", "pydantic", "ruamel",
         "emcee", "scoringrules", "networkx", "SALib", "pymoo", "ema_workbench", "jinja2", "dash", "plotly")


def _modules_after(*argv: str) -> set[str]:
    """Top-level packages imported by a fresh `aftermath ARGV` (run in-process in a child interpreter)."""
    code = (
        "import sys\n"
        f"sys.argv = ['aftermath', *{list(argv)!r}]\n"
        "from aftermath.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(done.stderr.split()[-1000:])


def test_help_imports_no_heavy_library():
    loaded = _modules_after("--help")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_scenarios_imports_no_model_or_engine_library():
    loaded = _modules_after("scenarios")
    assert not loaded & {"numba", "xarray", "pandas", "scipy", "duckdb", "matplotlib", "sklearn"}


def test_cli_constants_equal_the_library_ones():
    from aftermath.decisions.optimise import METRICS
    from aftermath.decisions.sensitivity import METHODS, MINIMUM
    from aftermath.decisions.stored import ALL_ARMS
    from aftermath.engines.ode import METHODS as ODE_METHODS
    from aftermath.engines.ode import OdeOptions
    from aftermath.engines.simulate import ENGINES
    from aftermath.experiments.sampling import SAMPLERS
    from aftermath.fitcheck import FIT_END
    from aftermath.inference.calibration import DEFAULT_UNTIL
    from aftermath.report.build import FIT_UNTIL, STOCK_RUNS

    assert options.ENGINES == ENGINES
    assert options.ODE_METHODS == ODE_METHODS
    assert (
        OdeOptions().method, OdeOptions().rtol, OdeOptions().atol,
    ) == (options.ODE_METHOD, options.ODE_RTOL, options.ODE_ATOL)
    assert options.SENSITIVITY_METHODS == METHODS
    assert MINIMUM["rbd-fast"] == options.RBD_FAST_MINIMUM
    assert options.ROBUSTNESS_METRICS == METRICS
    assert options.FIT_END == FIT_END == FIT_UNTIL == DEFAULT_UNTIL
    assert options.REPORT_RUNS == STOCK_RUNS
    assert options.SAMPLERS == SAMPLERS
    assert options.ALL_ARMS == ALL_ARMS


def _plain(value):
    """A ruamel or PyYAML document as plain Python (ruamel's scalar and container subclasses dropped)."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for kind in (bool, str, int, float, dt.datetime, dt.date):
        if isinstance(value, kind):
            return (kind.__name__, kind(value) if kind in (str, int, float) else value)
    return value


def _slow(text: str):
    return loader._read_yaml(loader._without_comment_lines(text, "t.yaml"), "t.yaml")


YAML_FILES = sorted(
    [*catalogue.shipped_scenarios().values(), *ROOT.glob("tests/**/*.yaml"), *ROOT.glob("docs/**/*.yaml")]
)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)) if ROOT in p.parents else p.name)
def test_fast_reader_reads_what_the_line_numbering_reader_reads(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    fast = fast_document(text)
    if fast is not None:
        assert _plain(fast) == _plain(_slow(text))


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)) if ROOT in p.parents else p.name)
def test_a_listed_title_is_the_title_the_fast_reader_reads(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    title, fast = top_level_text(text, "title"), fast_document(text)
    if fast is not None and isinstance(fast.get("title"), str):
        assert title == fast["title"]
    elif fast is not None:
        assert title is None


def test_shipped_scenarios_take_the_fast_path():
    for path in catalogue.shipped_scenarios().values():
        assert fast_document(path.read_text(encoding="utf-8")) is not None, path


SCALARS = st.one_of(
    st.from_regex(r"\A[-+]?[0-9_]{0,4}(\.[0-9_]{0,3})?([eE][-+]?[0-9]{1,2})?\Z"),
    st.from_regex(r"\A[-+]?0[xob][0-9a-fA-F_]{1,4}\Z"),
    st.from_regex(r"\A[0-9]{1,4}(:[0-9]{1,2}){1,2}\Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2})?\Z"),
    st.sampled_from(["yes", "no", "on", "off", "y", "n", "Yes", "NO", "true", "False", "TRUE", "null", "Null", "~",
                     "", ".inf", "-.Inf", ".nan", ".NaN", "<<", "=", "2017-12", "0", "-0", "+1", "1e5", "1.", ".5",
                     "1_000", "0o17", "017", "08", "0x1F", "1:20", "12e", "e5"]),
    st.text(st.sampled_from("0123456789.-+eE_xo:tTfFyYnN~ "), max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(SCALARS, st.booleans())
def test_fast_reader_resolves_scalars_as_yaml_1_2(scalar: str, as_key: bool):
    text = f"{scalar}: x\n" if as_key else f"k: {scalar}\n"
    fast = fast_document(text)
    if fast is None:
        return
    try:
        slow = _slow(text)
    except loader.ScenarioError:
        pytest.fail(f"the fast reader read {text!r}, which the line-numbering reader refuses")
    assert _plain(fast) == _plain(slow), text


@settings(max_examples=200, deadline=None)
@given(SCALARS, st.sampled_from(["", "before: [1, {title: 2}]\n", "before:\n  title: no\n"]))
def test_a_listed_title_is_read_as_yaml_1_2(scalar: str, before: str):
    text = f"{before}title: {scalar}\n"
    fast = fast_document(text)
    listed = top_level_text(text, "title")
    if listed is not None:
        assert fast is not None and fast["title"] == listed, text
    elif fast is not None:
        assert not isinstance(fast["title"], str), text


FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False) | st.sampled_from([0.0, 1.0, -1.0, 1e-300])
POSITIVE = st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, exclude_min=False)


@st.composite
def distributions(draw):
    from aftermath.scenario.schema import Distribution

    kind = draw(st.sampled_from(["uniform", "triangular", "normal", "lognormal"]))
    if kind in ("uniform", "triangular"):
        low, high = sorted(draw(st.lists(FINITE, min_size=2, max_size=2, unique=True)))
        mode = draw(st.floats(min_value=low, max_value=high)) if kind == "triangular" else None
        return Distribution(type=kind, low=low, high=high, mode=mode)
    ends = sorted(draw(st.lists(FINITE, min_size=2, max_size=2, unique=True)))
    low, high = draw(st.sampled_from([(None, None), (ends[0], None), (None, ends[1]), tuple(ends)]))
    if kind == "normal":
        return Distribution(type=kind, mean=draw(FINITE), sd=draw(POSITIVE), low=low, high=high)
    return Distribution(type=kind, median=draw(POSITIVE), sigma=draw(POSITIVE), low=low, high=high)


@settings(max_examples=300, deadline=None)
@given(distributions())
def test_validation_reads_distributions_as_scipy_stats_does(distribution):
    """The closed forms validation uses give scipy.stats' numbers (support exactly; truncated mass and quantiles
    to rounding: the standard library's normal quantile and erfc against scipy.special's ndtri and ndtr)."""
    import numpy as np

    from aftermath.scenario.validate import TAIL, Truncated, checked_distribution, frozen_distribution

    closed, frozen = checked_distribution(distribution), frozen_distribution(distribution)
    q = np.array([0.0, TAIL, 0.05, 0.5, 0.95, 1 - TAIL, 1.0])
    with np.errstate(all="ignore"):
        assert isinstance(closed, Truncated) == isinstance(frozen, Truncated)
        np.testing.assert_array_equal(np.array(closed.support(), float), np.array(frozen.support(), float))
        if isinstance(frozen, Truncated):
            # a mass far in a tail is a difference of two tiny probabilities; validation refuses one below 1e-9,
            # and reads no quantile of it
            np.testing.assert_allclose(closed.mass(), frozen.mass(), rtol=1e-6, atol=1e-300)
            if not frozen.mass() > 1e-9:
                return
        expected = frozen.ppf(q)
        finite = np.abs(expected[np.isfinite(expected)])
        # a truncated normal's quantile goes through the untruncated one's cdf and back: rounding is absolute
        # there, on the scale of |mean| + sd (e.g. 2e-12 for N(7950, 3575) truncated to [0, 1])
        spread = abs(distribution.mean) + distribution.sd if distribution.type == "normal" else 0.0
        atol = np.full(q.shape, 1e-12 * max(finite.max(initial=1.0), spread))
        if isinstance(frozen, Truncated):
            # and near q = 0 or 1 a probability is resolved only to eps, so the quantile only to about
            # eps / density, whoever computes it (N(1, 1.94) cut at 0, q = 1 - eps: 16.74 or 16.91, both
            # within 0.3 of the truth): the tolerance is that conditioning, 4 eps / density
            density = frozen.base.pdf(np.where(np.isfinite(expected), expected, 0.0)) / frozen.mass()
            atol = np.maximum(atol, np.where(density > 0, 4 * np.finfo(float).eps / density, np.inf))
        actual = closed.ppf(q)
        assert np.isclose(actual, expected, rtol=1e-10, atol=atol, equal_nan=True).all(), (q, actual, expected, atol)


def test_loading_a_scenario_does_not_import_scipy():
    """scipy.stats costs over a second at the first load, scipy.special (which any scipy module imports) half."""
    code = "import sys; from aftermath import load_scenario; load_scenario(); print('scipy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("first", ["aftermath.network", "aftermath.homefront"])
def test_shipped_sub_models_keep_their_order_whichever_is_imported_first(first: str):
    code = (f"import {first}\nfrom aftermath.scenario.submodels import registered, scenario_class\n"
            "print(*[s.name for s in registered()], *list(scenario_class().model_fields)[-2:])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.split() == ["home_front", "network", "home_front", "network"]
