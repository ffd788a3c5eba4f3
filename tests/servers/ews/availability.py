"""GetUserAvailability: busy blocks from the calendars the server stores plus scripted busy time.

Limits enforced like Exchange: at most 100 mailboxes per request (ErrorMailboxDataArrayTooBig) and
a time window of at most 42 days (ErrorTimeIntervalTooBig). Unknown addresses come back as a
per-mailbox error (ErrorMailRecipientNotFound), not as a failed request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from lxml import etree

from tests.servers.ews.context import Context
from tests.servers.ews.recurrence import item_occurrences, zone
from tests.servers.ews.soap import EwsError, SoapFault, m, response_message, sub, t
from tests.servers.ews.store import Busy, Store
from tests.servers.ews.timezones import WEEKDAYS, changes

MAX_MAILBOXES = 100
MAX_WINDOW = timedelta(days=42)
CODES = {"Free": "0", "Tentative": "1", "Busy": "2", "OOF": "3", "WorkingElsewhere": "4"}


def get_user_availability(ctx: Context) -> etree._Element:
    body = ctx.body
    tz = zone(ctx.request.timezone_id)
    mailboxes = [(a.text or "").strip().casefold() for a in body.iterfind(f".//{t('MailboxData')}/{t('Email')}/{t('Address')}")]
    if len(mailboxes) > MAX_MAILBOXES:
        raise SoapFault("ErrorMailboxDataArrayTooBig", f"The MailboxData array has {len(mailboxes)} entries; at most {MAX_MAILBOXES} are allowed.")
    options = body.find(t("FreeBusyViewOptions"))
    start = _local(options.findtext(f"{t('TimeWindow')}/{t('StartTime')}"), tz)
    end = _local(options.findtext(f"{t('TimeWindow')}/{t('EndTime')}"), tz)
    if end - start > MAX_WINDOW:
        raise SoapFault("ErrorTimeIntervalTooBig", "The specified time interval is invalid (greater than 42 days).")
    interval = int(options.findtext(t("MergedFreeBusyIntervalInMinutes")) or 30)
    view = options.findtext(t("RequestedView")) or "DetailedMerged"
    response = etree.Element(m("GetUserAvailabilityResponse"))
    array = sub(response, m("FreeBusyResponseArray"))
    for address in mailboxes:
        entry = sub(array, m("FreeBusyResponse"))
        if address not in ctx.store.mailboxes:
            error = EwsError("ErrorMailRecipientNotFound", f"Unable to resolve e-mail address {address} to an Active Directory object.")
            entry.append(response_message("ResponseMessage", error))
            continue
        entry.append(response_message("ResponseMessage"))
        entry.append(_view(ctx.store, address, start, end, tz, interval, view))
    return response


def _local(text: str | None, tz: ZoneInfo) -> datetime:
    """A TimeWindow value: naive means the request's zone (TimeZoneContext)."""
    moment = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def busy_blocks(store: Store, address: str, start: datetime, end: datetime) -> list[Busy]:
    """Every busy block of a mailbox overlapping [start, end): calendar occurrences + scripted busy."""
    blocks = [b for b in store.busy.get(address, []) if b.start < end and b.end > start]
    for item in store.in_folder(address, "calendar"):
        if item.kind != "CalendarItem" or item.text("MyResponseType") == "Decline":
            continue
        status = item.text("LegacyFreeBusyStatus", "Busy")
        if status == "Free":
            continue
        for occ in item_occurrences(item):
            if occ.index not in item.deleted_occurrences and occ.start < end and occ.end > start:
                blocks.append(Busy(occ.start, occ.end, status))
    return sorted(blocks, key=lambda b: b.start)


def _view(store: Store, address: str, start: datetime, end: datetime, tz: ZoneInfo, interval: int, view: str) -> etree._Element:
    blocks = busy_blocks(store, address, start, end)
    node = etree.Element(m("FreeBusyView"))
    sub(node, t("FreeBusyViewType"), view if view != "None" else "None")
    if "Merged" in view:
        sub(node, t("MergedFreeBusy"), _merged(blocks, start, end, interval))
    if view.startswith("Detailed") or view.startswith("FreeBusy"):
        events = sub(node, t("CalendarEventArray"))
        for block in blocks:
            event = sub(events, t("CalendarEvent"))
            sub(event, t("StartTime"), _naive(block.start, tz))
            sub(event, t("EndTime"), _naive(block.end, tz))
            sub(event, t("BusyType"), block.busy_type)
    node.append(_working_hours(store, address))
    return node


def _naive(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")


def _merged(blocks: list[Busy], start: datetime, end: datetime, interval: int) -> str:
    codes = []
    slot = start
    while slot < end:
        nxt = slot + timedelta(minutes=interval)
        inside = [CODES.get(b.busy_type, "2") for b in blocks if b.start < nxt and b.end > slot]
        codes.append(max(inside, default="0"))
        slot = nxt
    return "".join(codes)


def _working_hours(store: Store, address: str) -> etree._Element:
    hours = store.working_hours.get(address, store.default_working_hours)
    tz = ZoneInfo(hours.timezone)
    node = etree.Element(t("WorkingHours"))
    node.append(availability_timezone(tz))
    periods = sub(node, t("WorkingPeriodArray"))
    for days, start, end in hours.working_periods():
        period = sub(periods, t("WorkingPeriod"))
        sub(period, t("DayOfWeek"), " ".join(WEEKDAYS[d] for d in days))
        sub(period, t("StartTimeInMinutes"), start)
        sub(period, t("EndTimeInMinutes"), end)
    return node


def availability_timezone(tz: ZoneInfo) -> etree._Element:
    """``t:TimeZone`` (Bias + StandardTime/DaylightTime) as Exchange writes a mailbox's zone."""
    january = datetime(2027, 1, 15, tzinfo=tz).utcoffset()
    july = datetime(2027, 7, 15, tzinfo=tz).utcoffset()
    standard, daylight = min(january, july), max(january, july)
    node = etree.Element(t("TimeZone"))
    sub(node, t("Bias"), int(-standard.total_seconds() // 60))
    found = {c.to_daylight: c for c in changes(tz)}
    for tag, to_daylight, bias in (("StandardTime", False, timedelta(0)), ("DaylightTime", True, -(daylight - standard))):
        change = found.get(to_daylight)
        part = sub(node, t(tag))
        sub(part, t("Bias"), int(bias.total_seconds() // 60) if change else 0)
        offset = change.offset if change else timedelta(0)
        sub(part, t("Time"), f"{int(offset.total_seconds()) // 3600:02d}:{int(offset.total_seconds()) % 3600 // 60:02d}:00")
        sub(part, t("DayOrder"), (5 if change.occurrence == -1 else change.occurrence) if change else 1)
        sub(part, t("Month"), change.month if change else (1 if not to_daylight else 12))
        sub(part, t("DayOfWeek"), WEEKDAYS[change.weekday] if change else "Sunday")
    return node


OPERATIONS = {"GetUserAvailabilityRequest": get_user_availability}

