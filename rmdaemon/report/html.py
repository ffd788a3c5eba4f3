"""The report as one self-contained HTML file: inline CSS and SVG charts, no script, no link to
anything outside it, so it opens offline and can be mailed as an attachment. The page is the
Jinja2 template ``report.html`` (autoescaped; overridable in ``[templates] dir``)."""

from __future__ import annotations

import jinja2

from rmdaemon.compose import REPORT_TEMPLATE
from rmdaemon.programme.engagement import WEEK_STATES
from rmdaemon.programme.metrics import percent
from rmdaemon.report import data as fmt
from rmdaemon.report.data import ReportData

TEMPLATE = REPORT_TEMPLATE


def render(report: ReportData, env: jinja2.Environment) -> str:
    # Imported here, not with the module: the daemon imports the report for the digest job, and
    # pygal is 90 modules and ~7 MB in every tick's process for charts drawn once a week.
    from rmdaemon.report import charts  # noqa: PLC0415

    s = report.summary
    context = {
        "report": report, "s": s, "fmt": fmt, "percent": percent,
        "charts": charts.all_charts(report), "week_states": WEEK_STATES,
        "figures": [("this period", s.this_period), ("overall", s.overall)],
        "notes_by_pair": _by_pair(report),
    }
    return env.get_template(TEMPLATE).render(context)


def _by_pair(report: ReportData) -> list[tuple[str, str, list]]:
    grouped: dict[str, list] = {}
    for note in report.notes:
        grouped.setdefault(note.pair_id, []).append(note)
    return [(pair_id, report.people.get(pair_id, ""), notes) for pair_id, notes in grouped.items()]
