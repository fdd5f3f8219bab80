"""The interactive dashboard (Dash): explore a scenario with sliders, run ensembles and comparisons, browse
the run store, look at the alliance network. A thin layer over the public API, like the CLI.

Needs the `dashboard` extra: pip install -e '.[dashboard]'.
"""
