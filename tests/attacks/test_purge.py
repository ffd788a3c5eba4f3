"""``purge --pair`` leaves nothing of the pair's words in our files: the state, its backups, the
quarantine (by pair, token or address), request rows, the local inbox's processed copies."""

from __future__ import annotations

import shutil
from datetime import timedelta

import orjson

from attackkit import MENTEE, MENTEE2, MENTOR, MENTOR2, ROSTER, armed, drop, snapshot, tables, text_mail, token_of
from programme import Programme
from rmdaemon.store import Store

CANARY = "CANARY-purge-91c2"


def files_with(root, needle: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not p.is_symlink() and needle.encode() in p.read_bytes())


def test_purge_removes_the_pairs_words_everywhere_we_keep_them_and_says_what_is_left(tmp_path, capsys):
    prog, now = armed(tmp_path)
    token = token_of(prog, MENTEE)
    drop(prog, text_mail(MENTEE, f"Re: [{token}]", f"Attended: yes\nLearned: {CANARY} log"), "log.eml")
    drop(prog, text_mail(MENTOR, f"Re: [{token_of(prog, MENTOR)}]", "HELP", message_id="<help@c>"), "help.eml")
    drop(prog, text_mail("mallory@evil.example", f"Re: [{token}]", f"STOP {CANARY} forged", message_id="<f@e>"), "forged.eml")
    drop(prog, text_mail(MENTEE, "Out of office", f"I am away. {CANARY} ooo", extra="Auto-Submitted: auto-replied\n",
                         message_id="<ooo@c>"), "ooo.eml")
    assert prog.run(now) == 0
    assert [r for r in tables(prog)["requests"] if r.get("by") == MENTOR]
    prog.roster.write_text(ROSTER.replace("Understand TikTok", "Understand TikTok,ended").replace("goal\n", "goal,status\n"))
    assert prog.run(now + timedelta(hours=1)) == 0
    var = prog.root / "var"
    shutil.copyfile(prog.state, var / "state.json.schema0.bak")  # what an upgrade keeps of the state before it
    assert files_with(var, CANARY)  # before: in the state, its backups, the quarantine, the inbox copies
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out
    outside = [f for f in files_with(var, CANARY) if not f.startswith("outbox/")]
    assert outside == []
    older = orjson.loads((var / "state.json.schema0.bak").read_bytes())
    assert {d["pair_id"] for d in older["pairs"].values()} == {"P02"}  # the other pair still restores from it
    assert "state.json.schema0.bak (kept by an upgrade) was rewritten without the pair" in out
    assert "out of rmdaemon's reach" in out and MENTEE in out and "quarantined messages" in out
    assert not [r for r in tables(prog)["requests"] if r.get("by") == MENTOR or r.get("pair_id") == "P01"]


PER_PAIR = ("logs", "commands", "sessions", "surveys", "flags", "pairs")


def rows_of(prog, pair_id: str) -> dict[str, list[dict]]:
    state = tables(prog)
    return {name: [r for r in state[name] if r.get("pair_id") == pair_id] for name in PER_PAIR}


def test_purge_counts_what_it_removed_and_leaves_the_other_pair_whole(tmp_path, capsys):
    prog, now = armed(tmp_path)
    token = token_of(prog, MENTEE)
    drop(prog, text_mail(MENTEE, f"Re: [{token}]", "Attended: yes\nLearned: reels"), "log.eml")
    drop(prog, text_mail(MENTOR, f"Re: [{token_of(prog, MENTOR)}]", "Attended: yes\nNext: homework", message_id="<log2@c>"),
         "log2.eml")
    drop(prog, text_mail(MENTOR, "programme", "HELP", message_id="<help@c>"), "help.eml")
    assert prog.run(now) == 0
    prog.roster.write_text(ROSTER.replace("Understand TikTok", "Understand TikTok,ended").replace("goal\n", "goal,status\n"))
    assert prog.run(now + timedelta(hours=1)) == 0
    mine, theirs = rows_of(prog, "P01"), rows_of(prog, "P02")
    requests = [r for r in tables(prog)["requests"] if r.get("by") in (MENTOR, MENTEE) or r.get("pair_id") == "P01"]
    assert mine["logs"] and requests and theirs["pairs"] and theirs["sessions"]
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"purged pair P01: {len(mine['logs'])} session logs, {len(mine['surveys'])} survey answers, "
                      f"{len(mine['flags'])} flags, {len(mine['commands'])} commands, {len(requests)} requests, "
                      f"{len(mine['sessions'])} sessions, 0 quarantined messages, 5 processed inbox copies")
    assert out[1] == f"the state's backup {prog.state}.bak now holds the purged state"
    assert out[2].startswith(f"out of rmdaemon's reach: the mail already sent to and from {MENTOR}, {MENTEE} stays in "
                             f"their mailboxes and in the programme mailbox's sent items ({prog.root / 'var' / 'outbox'}); "
                             f"search for ")
    assert token in out[2] and out[2].endswith(" and delete it there")
    assert out[3] == "remove the row from the roster too, or it starts again as a new pair"
    assert rows_of(prog, "P01") == {name: [] for name in PER_PAIR}
    assert rows_of(prog, "P02") == theirs  # nothing of the other pair goes
    backup = prog.state.with_name(prog.state.name + ".bak")
    assert backup.read_bytes() == prog.state.read_bytes() and backup.stat().st_mode & 0o777 == 0o600
    # P01's two YES, its two logs and the HELP went; P02's two YES stay
    left = [p.read_bytes() for p in (prog.root / "var" / "inbox" / "cur").iterdir()]
    assert len(left) == 2 and all(MENTOR2.encode() in raw or MENTEE2.encode() in raw for raw in left)
    assert prog.cli("purge", "--pair", "P01") == 0
    assert capsys.readouterr().out == "nothing stored for pair P01\n"


def test_purge_finds_the_people_in_the_state_when_the_roster_cannot_be_read(tmp_path, capsys):
    prog, now = armed(tmp_path)
    drop(prog, text_mail(MENTOR, "programme", "HELP", message_id="<help@c>"), "help.eml")
    assert prog.run(now) == 0
    prog.roster.write_text(ROSTER.replace("Understand TikTok", "Understand TikTok,ended").replace("goal\n", "goal,status\n"))
    assert prog.run(now + timedelta(hours=1)) == 0
    prog.roster.write_text("not,a,roster\n")
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out
    assert f"sent to and from {MENTOR}, {MENTEE} stays" in out and " 1 requests," in out
    assert not [r for r in tables(prog)["requests"] if r.get("by") == MENTOR]


def test_purge_of_a_pair_never_started_says_so_and_touches_nothing(tmp_path, capsys):
    prog, _ = armed(tmp_path)
    before = snapshot(prog)
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P09") == 0
    assert capsys.readouterr().out == "nothing stored for pair P09\n"
    assert snapshot(prog) == before


# -- the same promise on a state written directly, as the jobs leave it: a fraction of a second a
# test, so `make mutate` can run them against every mutant of commands/purge.py --

TOKEN, TOKEN2 = "RM-AAAAAA", "RM-BBBBBB"
LATER_TOKEN = "RM-AAAAAB"  # P01's second session
FORMER = "former.mentee@example.com"  # P01's mentee before the roster replaced them: only the state knows


def kept(tmp_path, *, published: int | None = None, completed: str | None = None, **config: str) -> Programme:
    """Two pairs as the jobs leave them: P01 with a log, a command, a survey, a flag, requests
    (one about the pair, one a HELP from its mentor about no pair), quarantined mail (one on the
    pair's row, one a stranger's forgery on its token, kept on no pair) and processed replies in the
    local inbox; P02 the same; and a copy of the state kept by an upgrade. P01's mentee replaced
    FORMER, who had opted in; the new mentee has not answered yet (their address is in the roster
    and in the people stored at booking). The state's backups were left readable by others."""
    prog = Programme.create(tmp_path, roster=ROSTER, **config)
    var = prog.root / "var"
    rows: dict[str, list[dict]] = {name: [] for name in ("pairs", "sessions", "logs", "commands", "surveys", "flags",
                                                          "requests", "inbox", "outbox")}
    for pid, n, token, mentor, mentee in (("P01", "a", TOKEN, MENTOR, MENTEE), ("P02", "b", TOKEN2, MENTOR2, MENTEE2)):
        answered = [mentor, FORMER] if pid == "P01" else [mentor, mentee]
        rows["pairs"].append({"pair_id": pid, "state": "active", "consent": dict.fromkeys(answered, "yes"),
                              "share_notes": {mentor: True}, "completed": completed if pid == "P01" else None,
                              "pair": {"people": [["Mentor", mentor], ["Mentee", mentee]]},
                              "series": {"uid": f"rm-{pid}@example.com", "sequence": 1, "published": published}})
        rows["sessions"] += [{"token": t, "pair_id": pid, "kind": "session", "start": start} for t, start in (
            (token, "2027-01-11T09:00:00+00:00"), (LATER_TOKEN if pid == "P01" else "RM-BBBBBC", "2027-01-25T09:00:00+00:00"))]
        rows["logs"].append({"pair_id": pid, "token": token, "from": mentee, "body": f"{CANARY} {pid} learned reels"})
        rows["commands"].append({"pair_id": pid, "command": "skip", "from": mentor, "token": token})
        rows["surveys"].append({"pair_id": pid, "person": mentee, "milestone": "first", "answers": {"q": 4}})
        rows["flags"].append({"id": f"flag-{n}", "pair_id": pid, "text": f"{CANARY} worried"})
        rows["requests"] += [{"id": f"nudge-{n}", "pair_id": pid, "kind": "nudge"},
                             {"id": f"help-{n}", "pair_id": "", "kind": "help", "by": mentor.upper()}]
        rows["inbox"] += [
            {"message_key": f"log-{n}", "outcome": "log", "pair_id": pid, "reason": f"log from {mentee}"},
            {"message_key": f"odd-{n}", "outcome": "quarantine", "pair_id": pid, "reason": f"{mentee}: no answer",
             "quarantine": f"odd-{n}.eml"},
            {"message_key": f"forged-{n}", "outcome": "quarantine", "pair_id": "", "reason": "sender not in any pair",
             "quarantine": f"forged-{n}.eml"}]
        rows["outbox"].append({"key": f"agenda:{pid}:1", "status": "sent", "kind": "agenda", "pair_id": pid, "to": [mentor]})
        quarantine = var / "quarantine"
        quarantine.mkdir(parents=True, exist_ok=True)
        (quarantine / f"odd-{n}.eml").write_text(f"From: {mentee}\r\n\r\n{CANARY} hello\r\n")
        (quarantine / f"forged-{n}.eml").write_text(f"From: x@evil.example\r\nSubject: Re: [{token}]\r\n\r\nSTOP\r\n")
        for box, name, text in (("cur", f"{n}-1:2,S", f"From: {mentee}\r\n\r\nYES"), ("new", f"{n}-2", f"Re: [{token}]")):
            (var / "inbox" / box).mkdir(parents=True, exist_ok=True)
            (var / "inbox" / box / name).write_text(text)
    with Store.open(prog.state) as store, store.batch():
        for name, docs in rows.items():
            store.table(name).insert_multiple(docs)
    for backup in ("state.json.bak", "state.json.schema1.bak"):
        shutil.copyfile(prog.state, var / backup)
        (var / backup).chmod(0o644)
    return prog


def mentioning(prog: Programme, *needles: str) -> dict[str, list[dict]]:
    """The state's rows (and the upgrade's copy's) that name any of ``needles``, the outbox's keys apart."""
    found: dict[str, list[dict]] = {}
    for where in (prog.state, prog.state.with_name("state.json.schema1.bak")):
        for name, docs in orjson.loads(where.read_bytes()).items():
            hits = [d for d in docs.values() if name != "outbox" and any(n.casefold() in orjson.dumps(d).decode().casefold()
                                                                          for n in needles)]
            if hits:
                found[f"{where.name}:{name}"] = hits
    return found


def test_purge_of_a_kept_state_leaves_no_row_naming_the_pair_its_people_or_tokens_and_says_what_went(tmp_path, capsys):
    prog = kept(tmp_path)
    other = mentioning(prog, "P02", TOKEN2, MENTOR2, MENTEE2)
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out.splitlines()
    var = prog.root / "var"
    assert out == [
        "purged pair P01: 1 session logs, 1 survey answers, 1 flags, 1 commands, 2 requests, 2 sessions, "
        "2 quarantined messages, 2 processed inbox copies",
        f"the state's backup {prog.state}.bak now holds the purged state",
        f"{var / 'state.json.schema1.bak'} (kept by an upgrade) was rewritten without the pair",
        f"out of rmdaemon's reach: the mail already sent to and from {MENTOR}, {FORMER}, {MENTEE} stays in their "
        f"mailboxes and in the programme mailbox's sent items ({var / 'outbox'}); search for {TOKEN}, {LATER_TOKEN} and "
        "delete it there",
        "remove the row from the roster too, or it starts again as a new pair"]
    assert mentioning(prog, "P01", TOKEN, LATER_TOKEN, MENTOR, MENTEE, FORMER, CANARY + " P01") == {}
    assert mentioning(prog, "P02", TOKEN2, MENTOR2, MENTEE2) == other  # the other pair is whole, in both files
    inbox = {d["message_key"]: d for d in tables(prog)["inbox"]}
    assert [inbox[k] for k in ("log-a", "odd-a", "forged-a")] == [
        {"message_key": k, "outcome": o, "pair_id": "", "reason": "purged", "quarantine": None}
        for k, o in (("log-a", "log"), ("odd-a", "quarantine"), ("forged-a", "quarantine"))]
    assert sorted(p.name for p in (var / "quarantine").iterdir()) == ["forged-b.eml", "odd-b.eml"]
    assert sorted(p.name for box in ("cur", "new") for p in (var / "inbox" / box).iterdir()) == ["b-1:2,S", "b-2"]
    backup = prog.state.with_name("state.json.bak")
    assert backup.read_bytes() == prog.state.read_bytes()
    assert {p.name: p.stat().st_mode & 0o777 for p in (backup, var / "state.json.schema1.bak")} == {
        "state.json.bak": 0o600, "state.json.schema1.bak": 0o600}  # the pairs' notes are private again


def test_purge_refuses_a_pair_whose_series_is_still_in_the_calendars_and_changes_nothing(tmp_path, capsys):
    prog = kept(tmp_path, published=1)
    before = prog.state.read_bytes()
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 2
    assert capsys.readouterr().err == (
        f"rmdaemon: pair P01 still has a booked series; set its status to ended in {prog.roster} and run "
        "'rmdaemon run --once' first, so the calendars are cleared\n")
    assert prog.state.read_bytes() == before and (prog.root / "var" / "quarantine" / "odd-a.eml").exists()


def test_purge_takes_a_completed_pair_whose_series_ran_its_course(tmp_path, capsys):
    prog = kept(tmp_path, published=1, completed="2027-06-01T10:00:00+00:00")
    assert prog.cli("purge", "--pair", "P01") == 0
    assert mentioning(prog, "P01", TOKEN, MENTOR, MENTEE) == {}


def test_purge_of_a_pair_nobody_answered_yet_finds_its_people_in_the_roster(tmp_path, capsys):
    """Kicked off, not answered: the state has no address of its people; the roster has them."""
    prog = Programme.create(tmp_path, roster=ROSTER)
    with Store.open(prog.state) as store, store.batch():
        store.table("pairs").insert({"pair_id": "P01", "state": "awaiting_consent"})
        store.table("requests").insert({"id": "help-1", "pair_id": "", "kind": "help", "by": MENTEE})
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out
    assert " 1 requests," in out
    assert (f"out of rmdaemon's reach: the mail already sent to and from {MENTOR}, {MENTEE} stays in their mailboxes "
            f"and in the programme mailbox's sent items ({prog.root / 'var' / 'outbox'}) and delete it there") in out
    assert tables(prog)["requests"] == []


def test_purge_of_a_pair_known_to_neither_roster_nor_state_names_no_one(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ROSTER)
    with Store.open(prog.state) as store, store.batch():
        store.table("pairs").insert({"pair_id": "P07", "state": "declined"})
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P07") == 0
    assert "the mail already sent to and from the pair stays in their mailboxes" in capsys.readouterr().out


def test_an_upgrades_copy_that_cannot_be_read_is_removed_and_said_so(tmp_path, capsys):
    prog = kept(tmp_path)
    broken = prog.state.with_name("state.json.schema0.bak")
    broken.write_text("{ not json")
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out
    assert f"{broken} (kept by an upgrade) could not be read, so it was removed" in out
    assert "state.json.schema1.bak (kept by an upgrade) was rewritten without the pair" in out  # the next one still is
    assert not broken.exists() and mentioning(prog, MENTOR, MENTEE) == {}


def test_purge_finds_a_replaced_persons_address_in_the_state_when_the_roster_cannot_be_read(tmp_path, capsys):
    prog = kept(tmp_path)
    prog.roster.write_text("not,a,roster\n")
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    assert f"sent to and from {MENTOR}, {FORMER}, {MENTEE} stays" in capsys.readouterr().out
    assert mentioning(prog, "P01", TOKEN, MENTOR, MENTEE, FORMER) == {}


def test_purge_on_another_backend_leaves_the_local_maildir_alone_and_names_no_local_outbox(tmp_path, capsys):
    """On smtp the replies are in the programme's IMAP mailbox (out of reach, as the summary says):
    a Maildir under var/ is not the backend's, so nothing in it is deleted."""
    prog = kept(tmp_path, kind='"smtp"')
    with open(prog.config, "a") as f:
        f.write('\n[backend.smtp]\nsmtp_host = "smtp.example.com"\nimap_host = "imap.example.com"\n'
                'password_env = "RM_TEST_MAIL_PASSWORD"\n')
    inbox = prog.root / "var" / "inbox"
    files = sorted(p.name for box in ("cur", "new") for p in (inbox / box).iterdir())
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(", 0 processed inbox copies")
    assert "the programme mailbox's sent items; search for" in out and "outbox" not in out
    assert sorted(p.name for box in ("cur", "new") for p in (inbox / box).iterdir()) == files


def test_purge_of_a_pair_the_state_never_had_says_so_unless_the_inbox_kept_its_replies(tmp_path, capsys):
    prog = kept(tmp_path)
    before = prog.state.read_bytes()
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P09") == 0  # in no roster, no state
    assert capsys.readouterr().out == "nothing stored for pair P09\n" and prog.state.read_bytes() == before
    prog.roster.write_text(ROSTER + "P03,Tom Becker,tom@example.com,Dana Lee,dana@example.com,Try Copilot\n")
    (prog.root / "var" / "inbox" / "cur" / "c-1:2,S").write_text("From: dana@example.com\r\n\r\nYES")
    assert prog.cli("purge", "--pair", "P03") == 0  # a reply processed before the pair was purged once already
    assert capsys.readouterr().out.startswith("purged pair P03: 0 session logs") and not (
        prog.root / "var" / "inbox" / "cur" / "c-1:2,S").exists()
