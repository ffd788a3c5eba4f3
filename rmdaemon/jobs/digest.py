"""The champion's weekly digest: aggregate health, the pairs that need a word, what comes next.

Due once a week at ``[digest] weekday``/``time`` in the programme zone; the key names the week,
so a daemon that was down on Monday sends it when it comes back, and never twice. A digest covers
the time since the last one (a daemon down for three weeks sends one digest for the three), and
never time before the programme's first session.
Figures come from ``metrics`` (the same numbers as ``rmdaemon report``); notes only from pairs
where both people said SHARE NOTES.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rmdaemon import compose, report
from rmdaemon.programme import engagement, metrics
from rmdaemon.records import DECLINED, ENDED, FINAL, outbox_keys
from rmdaemon.programme.context import Context
from rmdaemon.programme.delivery import deliver
from rmdaemon.model import JobResult
from rmdaemon.phrases import day, local_time, phrase


QUIET = "digest:quiet"  # meta: the latest week found quiet after the end, so later ticks need not read every table


def due_slot(ctx: Context) -> datetime:
    """The latest digest moment at or before now (aware, in the programme zone)."""
    zone = ZoneInfo(ctx.settings.program.timezone)
    local = ctx.now.astimezone(zone)
    day = local.date() - timedelta(days=(local.weekday() - ctx.settings.digest.weekday) % 7)
    slot = datetime.combine(day, ctx.settings.digest.time, zone)
    return slot if slot <= local else slot - timedelta(days=7)


def run(ctx: Context) -> JobResult:
    result = JobResult("digest")
    slot = due_slot(ctx)
    key = f"digest:{slot.date().isoformat()}"
    sent = [k for k in outbox_keys(ctx.store, *FINAL) if k.startswith("digest:")]
    if key in sent or ctx.store.meta(QUIET) == key:
        return result  # this week's is out (or was found quiet): most ticks stop here, before reading every table
    since = _since(ctx, metrics.first_session(ctx.store), sent, slot)
    if since is None or since >= slot:
        return result  # no session before the slot (or the clock went back): nothing to report yet
    snap = metrics.snapshot(ctx.store)
    if sent and _over_and_quiet(ctx, snap, metrics.Period(since, slot)):
        if ctx.store.writer:  # final: what arrives from now on is received after the slot, in next week's period
            ctx.store.set_meta_later(QUIET, key)
        return result
    summary = metrics.programme_summary(snap, ctx.pairs, ctx.settings, ctx.now, since, slot, by="week",
                                        horizon=timedelta(days=7), questions=ctx.templates.questions)
    zone = ctx.settings.program.timezone
    context = {
        "s": summary, "week_label": ctx.templates.said(week_label(since, slot)),
        "attention": engagement.attention(snap, metrics.members(snap, ctx.pairs), ctx.settings.nudges, ctx.now),
        "notes": metrics.shared_notes(snap, ctx.pairs, since, slot, now=ctx.now),
        "pct": metrics.percent, "local": lambda moment: local_time(moment, zone, ctx.settings.program.language),
    }
    message = ctx.mail.email("digest", key=key, to=ctx.mail.champion(), context=context, kind="digest",
                             files=_report(ctx, snap, slot))
    if deliver(ctx, [message], result):
        result.lines.append(f"digest for the {context['week_label']} sent to {ctx.settings.program.champion}")
    return result


def week_label(since: datetime, slot: datetime) -> dict:
    """The days a digest covers, as a phrase: "week of 04 Jan to 10 Jan 2027" in the champion's language."""
    return phrase("digest.week" if slot - since < timedelta(days=8) else "digest.weeks",
                  start=day(since.date(), "MMMd"), end=day((slot - timedelta(days=1)).date(), "yMMMd"))


def _since(ctx: Context, first: str | None, sent: list[str], slot: datetime) -> datetime | None:
    """Where this digest starts: where the last one ended (one digest for all the weeks the
    daemon was down), and never before the day of the programme's first session (``first``;
    None: no session had started by the digest's moment)."""
    zone = ZoneInfo(ctx.settings.program.timezone)
    if first is None or datetime.fromisoformat(first) >= slot:
        return None
    since = datetime.combine(datetime.fromisoformat(first).astimezone(zone).date(), time(0), zone)
    if sent:
        last = date.fromisoformat(max(sent).partition(":")[2])
        since = max(since, datetime.combine(last, ctx.settings.digest.time, zone))
    return since


def _over_and_quiet(ctx: Context, snap: metrics.Snapshot, period: metrics.Period) -> bool:
    """Once every pair is over (ended or declined, none still to be invited) and a digest has
    reported the end, a week in which nothing happened sends no digest: an empty mail every week
    for ever teaches the champion to ignore it. A late log, survey answer or command still gets
    one."""
    everyone = metrics.members(snap, ctx.pairs)
    if not everyone or any(m.doc is None or m.doc.state not in (ENDED, DECLINED) for m in everyone):
        return False
    return not (any(s["start"] in period for s in snap.sessions)
                or any(log.received in period for log in snap.logs)
                or any(row.get("received") in period for row in snap.surveys)
                or any(row.get("at") in period for row in snap.commands))


def _report(ctx: Context, snap: metrics.Snapshot, slot: datetime) -> tuple[compose.Attachment, ...]:
    """The HTML report of the whole programme so far, when ``[digest] attach_report`` asks for it:
    the same file ``rmdaemon report --format html`` writes, from the snapshot this digest read."""
    if not ctx.settings.digest.attach_report:
        return ()
    page = report.html_for(snap, ctx.pairs, ctx.settings, ctx.templates, ctx.now)
    return (compose.Attachment(f"report-{slot:%Y-%m-%d}.html", "text/html", page.encode("utf-8")),)
