"""``purge --pair`` leaves nothing of the pair's words in our files: the state, its backups, the
quarantine (by pair, token or address), request rows, the local inbox's processed copies."""

from __future__ import annotations

import shutil
from datetime import timedelta

import orjson

from attackkit import MENTEE, MENTOR, ROSTER, armed, drop, tables, text_mail, token_of

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
