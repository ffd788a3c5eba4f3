"""The EWS test server, driven by real exchangelib calls: what a client sees is what Exchange does."""

from __future__ import annotations

import base64
from datetime import timedelta

import exchangelib
import pytest
import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    Account,
    Attendee,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    FailFast,
    FaultTolerance,
    Mailbox,
    Message,
    Version,
)
from exchangelib import errors as ews_errors
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.recurrence import NumberedPattern, Recurrence, WeeklyPattern
from exchangelib.version import EXCHANGE_2016

from tests.servers.ews.fixtures import PROGRAMME, SERVICE_USER, ews_schema, ews_server, needs_ews_schema  # noqa: F401  (fixtures)
from tests.servers.ews.server import EwsServer

TZ = EWSTimeZone("Europe/Berlin")
START = EWSDateTime(2027, 1, 5, 15, 0, tzinfo=TZ)


class Tag(ExtendedProperty):
    property_set_id = "0d4e6a52-6a0b-4c1d-8f43-1b2f8c9e7a10"
    property_name = "test-tag"
    property_type = "String"


@pytest.fixture(scope="module", autouse=True)
def tag_property():
    for cls in (CalendarItem, Message):
        cls.register("tag", Tag)
    yield
    for cls in (CalendarItem, Message):
        cls.deregister("tag")


def account(server: EwsServer, address: str = PROGRAMME, *, user=SERVICE_USER, access=DELEGATE, policy=None) -> Account:
    config = Configuration(
        service_endpoint=server.url,
        credentials=Credentials(*user),
        auth_type=BASIC,
        version=Version(build=EXCHANGE_2016),
        retry_policy=policy or FailFast(),
    )
    return Account(address, config=config, autodiscover=False, access_type=access, default_timezone=TZ)


def series(acct: Account, tag: str, *attendees: str) -> CalendarItem:
    return CalendarItem(
        account=acct, folder=acct.calendar, subject=f"Series {tag}", body="agenda", start=START, end=START + timedelta(minutes=45),
        required_attendees=[Attendee(mailbox=Mailbox(email_address=a), response_type="Unknown") for a in attendees],
        recurrence=Recurrence(pattern=WeeklyPattern(interval=2, weekdays=["Tuesday"]), boundary=NumberedPattern(start=START.date(), number=6)),
        legacy_free_busy_status="Busy", uid=f"{tag}@test", tag=tag,
    )  # fmt: skip


@pytest.fixture
def ews(ews_server: EwsServer) -> EwsServer:
    for name in ("alex", "sam"):
        ews_server.control.add_mailbox(f"{name}@corp.example")
        ews_server.control.add_account(name, "pw", f"{name}@corp.example")
    return ews_server


def test_invitations_land_in_attendee_mailboxes_and_calendars(ews: EwsServer) -> None:
    acct = account(ews)
    result = acct.bulk_create(folder=acct.calendar, items=[series(acct, "a", "alex@corp.example")], send_meeting_invitations="SendToAllAndSaveCopy")
    assert not isinstance(result[0], Exception)
    alex = account(ews, "alex@corp.example", user=("alex", "pw"))
    (request,) = list(alex.inbox.all())
    assert type(request).__name__ == "MeetingRequest" and request.subject == "Series a"
    (copy,) = list(alex.calendar.all())
    assert copy.uid == "a@test" and copy.type == "RecurringMaster"


def test_every_request_exchangelib_sends_is_checked_against_the_schema(ews: EwsServer, needs_ews_schema) -> None:
    acct = account(ews)
    acct.bulk_create(folder=acct.calendar, items=[series(acct, "a", "alex@corp.example")], send_meeting_invitations="SendToAllAndSaveCopy")
    list(account(ews, "alex@corp.example", user=("alex", "pw")).inbox.all())
    assert ews.validated == len(ews.log) > 0 and not ews.invalid


def test_find_item_filters_on_extended_property_sorts_and_pages(ews: EwsServer) -> None:
    acct = account(ews)
    items = [series(acct, t) for t in ("c", "a", "d", "b")]
    acct.bulk_create(folder=acct.calendar, items=items, send_meeting_invitations="SendToNone")
    query = acct.calendar.filter(tag__in=["a", "b", "c"]).order_by("-subject").only("subject", "tag")
    query.page_size = 2
    assert [i.subject for i in query] == ["Series c", "Series b", "Series a"]
    assert ews.counts["FindItem"] == 2  # two pages of two
    assert acct.calendar.filter(tag="zzz").count() == 0


def test_get_item_returns_injected_mime_byte_for_byte(ews: EwsServer) -> None:
    raw = b"From: alex@corp.example\r\nTo: mentoring@corp.example\r\nSubject: hello\r\nMessage-ID: <m1@x>\r\n\r\nhi \xc3\xa9\r\n"
    item_id = ews.control.inject_message(PROGRAMME, raw)
    acct = account(ews)
    (message,) = acct.fetch(ids=[(item_id, None)], only_fields=["mime_content", "subject", "is_read"])
    assert bytes(message.mime_content) == raw and message.subject == "hello" and message.is_read is False


def test_update_move_and_delete(ews: EwsServer) -> None:
    item_id = ews.control.inject_message(PROGRAMME, b"Subject: x\r\nFrom: a@b\r\n\r\nbody\r\n")
    acct = account(ews)
    (message,) = acct.fetch(ids=[(item_id, None)])
    message.is_read, message.categories = True, ["done"]
    message.save(update_fields=["is_read", "categories"])
    assert acct.inbox.filter(categories__contains=["done"]).count() == 1
    message.move(acct.trash)
    assert acct.inbox.all().count() == 0 and acct.trash.all().count() == 1
    message.delete()
    assert acct.trash.all().count() == 0


def test_deleting_an_occurrence_sends_a_cancellation_and_frees_the_time(ews: EwsServer) -> None:
    acct = account(ews)
    (created,) = acct.bulk_create(folder=acct.calendar, items=[series(acct, "o", "sam@corp.example")], send_meeting_invitations="SendToAllAndSaveCopy")
    master = acct.calendar.get(id=created.id)
    master.occurrence(2).delete(send_meeting_cancellations="SendToAllAndSaveCopy")
    assert [d.start for d in acct.calendar.get(id=created.id).deleted_occurrences] == [START + timedelta(days=14)]
    kinds = [type(i).__name__ for i in account(ews, "sam@corp.example", user=("sam", "pw")).inbox.all().order_by("datetime_received")]
    assert kinds == ["MeetingRequest", "MeetingCancellation"]
    views = list(acct.protocol.get_free_busy_info([("sam@corp.example", "Required", False)], START - timedelta(days=1), START + timedelta(days=41)))
    assert [e.start for e in views[0].calendar_events] == [START, START + timedelta(days=28)]


def test_moving_an_occurrence_makes_an_exception_and_a_new_pattern_drops_it(ews: EwsServer) -> None:
    acct = account(ews)
    (created,) = acct.bulk_create(folder=acct.calendar, items=[series(acct, "mv", "sam@corp.example")], send_meeting_invitations="SendToAllAndSaveCopy")
    third = acct.calendar.get(id=created.id).occurrence(3)
    third.start, third.end = START + timedelta(days=29, hours=-1), START + timedelta(days=29, minutes=-15)  # Tue 15:00 → Wed 14:00
    third.save(update_fields=["start", "end"], send_meeting_invitations="SendToAllAndSaveCopy")
    master = acct.calendar.get(id=created.id)
    (moved,) = master.modified_occurrences
    assert (moved.original_start, moved.start) == (START + timedelta(days=28), START + timedelta(days=29, hours=-1))
    sam = account(ews, "sam@corp.example", user=("sam", "pw"))
    update = list(sam.inbox.all().order_by("datetime_received").only("mime_content"))[-1]
    assert b"RECURRENCE-ID:20270202T140000Z" in update.mime_content and b"DTSTART:20270203T130000Z" in update.mime_content
    views = list(acct.protocol.get_free_busy_info([("sam@corp.example", "Required", False)], START - timedelta(days=1), START + timedelta(days=41)))
    assert START + timedelta(days=29, hours=-1) in [e.start for e in views[0].calendar_events]
    master.recurrence = Recurrence(pattern=WeeklyPattern(interval=1, weekdays=["Tuesday"]), boundary=NumberedPattern(start=START.date(), number=6))
    master.save(update_fields=["recurrence"], send_meeting_invitations="SendToAllAndSaveCopy")
    assert acct.calendar.get(id=created.id).modified_occurrences is None


def test_attendee_accept_reaches_the_organiser_as_a_reply(ews: EwsServer) -> None:
    acct = account(ews)
    acct.bulk_create(folder=acct.calendar, items=[series(acct, "r", "alex@corp.example")], send_meeting_invitations="SendToAllAndSaveCopy")
    alex = account(ews, "alex@corp.example", user=("alex", "pw"))
    next(iter(alex.inbox.all())).accept()  # AcceptItem, as Outlook sends it
    (response,) = list(acct.inbox.all().only("mime_content", "subject"))
    assert response.subject == "Accepted: Series r"
    assert b"METHOD:REPLY" in response.mime_content and b"PARTSTAT=ACCEPTED:mailto:alex@corp.example" in response.mime_content
    (organiser_copy,) = list(acct.calendar.all())
    assert [a.response_type for a in organiser_copy.required_attendees] == ["Accept"]


def test_availability_limits_are_enforced_like_exchange(ews: EwsServer) -> None:
    acct = account(ews)
    with pytest.raises(ews_errors.ErrorTimeIntervalTooBig):
        list(acct.protocol.get_free_busy_info([("alex@corp.example", "Required", False)], START, START + timedelta(days=43)))
    views = list(acct.protocol.get_free_busy_info([("ghost@corp.example", "Required", False)], START, START + timedelta(days=1)))
    assert isinstance(views[0], ews_errors.ErrorMailRecipientNotFound)


def test_impersonation_needs_the_role(ews: EwsServer) -> None:
    assert account(ews, "alex@corp.example", access=IMPERSONATION).inbox.all().count() == 0
    with pytest.raises(ews_errors.ErrorImpersonateUserDenied):
        account(ews, PROGRAMME, user=("sam", "pw"), access=IMPERSONATION).root  # noqa: B018
    with pytest.raises(ews_errors.UnauthorizedError):
        account(ews, user=(SERVICE_USER[0], "wrong")).root  # noqa: B018


def test_server_busy_is_retried_after_the_back_off(ews: EwsServer) -> None:
    ews.add_fault("busy", "GetFolder", back_off_ms=30)
    ews.add_fault("slow", "GetFolder", delay_seconds=0.05)
    acct = account(ews, policy=FaultTolerance(max_wait=1))
    assert acct.root.name  # answered after one busy fault and one slow answer
    assert ews.faults.fired == [("busy", "GetFolder"), ("slow", "GetFolder")]


def test_dropped_connection_and_http_errors_reach_the_client(ews: EwsServer) -> None:
    ews.add_fault("drop")
    with pytest.raises(ews_errors.ErrorTimeoutExpired):
        account(ews).root  # noqa: B018
    ews.add_fault("http503")
    with pytest.raises(ews_errors.ErrorServerBusy, match="HTTP 503"):
        account(ews).root  # noqa: B018
    exchangelib.close_connections()


def test_invalid_request_is_rejected_and_recorded(ews: EwsServer, needs_ews_schema) -> None:
    body = (b'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Body>'
            b"<m:GetFolder><m:Nonsense/></m:GetFolder></s:Body></s:Envelope>")  # fmt: skip
    auth = "Basic " + base64.b64encode(":".join(SERVICE_USER).encode()).decode()
    answer = requests.post(ews.url, data=body, headers={"Authorization": auth, "Content-Type": "text/xml"}, timeout=5)
    assert answer.status_code == 500 and b"ErrorSchemaValidation" in answer.content
    assert len(ews.invalid) == 1 and "Nonsense" in ews.invalid[0]
    ews.expected_invalid = 1


def test_request_counts_per_operation(ews: EwsServer) -> None:
    acct = account(ews)
    acct.calendar.all().count()
    assert dict(ews.counts) == {"GetFolder": 2, "FindItem": 1}
