"""The report: one self-contained HTML file an analyst can hand to a policymaker, and figures for papers."""

from aftermath.report.build import build_report, collect, collect_stored, render
from aftermath.report.content import ReportContent

__all__ = ["ReportContent", "build_report", "collect", "collect_stored", "render"]
