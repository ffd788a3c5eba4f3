"""The emails that follow from a pair's calendar state: the offer of other times when someone
declined a session, and the short notices explaining a RESCHEDULE or a choice that could not be
done. Built afresh each tick from the stored series; the booking job sends each once."""

from __future__ import annotations

from datetime import datetime

from rmdaemon import itip
from rmdaemon.model import Outgoing, Pair, Person
from rmdaemon.phrases import local_time, moment
from rmdaemon.programme.messages import Mailer
from rmdaemon.programme.series import actual_start, meeting_for
from rmdaemon.records import RepairState


def offer_messages(mail: Mailer, pair: Pair, series: dict) -> list[Outgoing]:
    """The offer email of every open repair whose session is still ahead (rebuilt each tick, sent once)."""
    out = []
    for key, repair in (series.get("repairs") or {}).items():
        actual = actual_start(series, datetime.fromisoformat(key))
        if repair["state"] != RepairState.OFFERED or actual <= mail.now:
            continue
        names = [p.name for p in pair.people if p.address in repair["declined_by"]]
        options = [datetime.fromisoformat(o) for o in repair["offered"]]
        context = {
            "pair": pair, "decliners": " and ".join(names), "both_declined": len(names) == 2,
            "decliner_names": [p.first_name for p in pair.people if p.address in repair["declined_by"]],
            "when_mentee": local_time(actual, pair.mentee.timezone, pair.mentee.language),
            "when_mentor": local_time(actual, pair.mentor.timezone, pair.mentor.language),
            "options": [{"mentee": local_time(o, pair.mentee.timezone, pair.mentee.language),
                         "mentor": local_time(o, pair.mentor.timezone, pair.mentor.language)} for o in options],
            "checked_calendars": repair.get("checked_calendars", False),
            "comments": said(pair, series, key, repair["declined_by"]),
            "proposals": [{"who": pair.member(c["from"]).name, "reason": mail.templates.said(c.get("reason", "")),
                           "when": mail.templates.said(moment(datetime.fromisoformat(c["start"]), pair.mentee.timezone))}
                          for c in series.get("counters", []) if c["slot"] == key and c["state"] == "refused"
                          and pair.member(c["from"])],
        }
        out.append(mail.email("repair", key=f"repair:{series['uid']}:{key}", to=pair.people, context=context,
                              kind="repair", pair_id=pair.pair_id, token=repair["token"]))
    return out


def said(pair: Pair, series: dict, key: str, people: list[str]) -> list[dict]:
    """What the decliners wrote with their answer for this session (or with their proposal)."""
    comments = series.get("comments") or {}
    proposals = {c["from"]: c.get("comment", "") for c in series.get("counters", []) if c["slot"] == key}
    found = []
    for person in pair.people:
        text = (comments.get(person.address) or {}).get(key) or proposals.get(person.address, "")
        if person.address in people and text:
            found.append({"who": person.name, "text": text})
    return found


def notice_messages(mail: Mailer, pair: Pair | None, doc: dict) -> list[Outgoing]:
    """Queued notices (why a RESCHEDULE or a repair choice was not done, what happened in a
    calendar), each as a reply to its cause, with its iTIP part where it carries one."""
    out = []
    for notice in doc.get("notices", []):
        person = pair.member(notice["to"]) if pair else None
        if person is None:
            continue
        planned = notice.get("planned")
        when = None
        if planned and doc.get("series"):
            when = local_time(actual_start(doc["series"], datetime.fromisoformat(planned)), person.timezone,
                                      person.language)
        context = {"pair": pair, "person": person, "asked": notice["asked"], "when": when,
                   **{k: mail.templates.said(notice.get(k, "")) for k in ("reason", "what")},
                   **{k: notice.get(k, "") for k in ("comment", "who")}}
        out.append(mail.email(notice["kind"], key=notice["key"], to=(person,), context=context, kind="notice",
                              pair_id=doc["pair_id"], in_reply_to=notice.get("reply_to", ""),
                              calendar=_calendar_part(mail, pair, doc, notice, person)))
    return out


def _calendar_part(mail: Mailer, pair: Pair, doc: dict, notice: dict, person: Person) -> tuple[str, bytes] | None:
    """The invitation as it stands now (REFRESH) or the refusal of a proposal (DECLINECOUNTER)."""
    method = notice.get("calendar")
    series = doc.get("series")
    if not method or not series or series.get("cancelled"):
        return None
    meeting = meeting_for(mail, pair, doc)
    if method == "REQUEST":
        return method, itip.build_request(meeting, mail.now)
    planned = datetime.fromisoformat(notice["planned"]) if notice.get("planned") else None
    return method, itip.build_declinecounter(meeting, mail.now, person, planned,
                                             mail.templates.say(notice["reason"], person.language))
