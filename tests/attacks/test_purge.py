"""``purge --pair`` leaves nothing of the pair's words in our files: the state, its backups, the
quarantine (by pair, token or address), request rows, the local inbox's processed copies."""

from __future__ import annotations

import shutil
from datetime import timedelta

import orjson

from attackkit import MENTEE, MENTEE2, MENTOR, MENTOR2, ROSTER, armed, drop, snapshot, tables, text_mail, token_of

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
