"""Before/after of ``bench/run.py``'s three ticks for two (or more) checkouts, interleaved.

    python bench/compare.py --trees /path/to/before,. [--pairs 1000] [--rounds 2] [--keep DIR]

Each round runs the whole scenario (set-up, first tick, agenda tick, replies dropped, ingest
tick) once per tree, trees in turn (A B A B ...), so the machine's load falls on both alike. The
scenario runs in a child process with the tree first on the path, using that tree's own
``bench/run.py`` and ``bench/tick.py``, so each tree ticks with its own code and example config.
Per tick it reports CPU seconds (the tick process's user + system time, from
``RUSAGE_CHILDREN``: on a shared machine wall time mostly measures the others' load), wall
seconds and peak RSS. ``--keep DIR`` keeps each run's programme folder (outbox, state) under DIR
for comparing outputs; a fixed installation secret then makes them comparable across trees.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

TICKS = ("first", "agenda", "ingest")
FIXED_SECRET = b"42" * 32 + b"\n"  # secret.key is 32 bytes as hex; a fixed one keeps outputs comparable


def child(tree: Path, pairs: int, keep: str | None) -> None:
    """The scenario for one tree, run in this (child) process: prints one JSON line."""
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    sys.path[:0] = [str(tree), str(tree / "bench")]
    import run  # noqa: PLC0415 - the tree's own bench/run.py

    assert Path(run.__file__).resolve().parent == (tree / "bench").resolve(), run.__file__
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=f"rm-compare-{pairs}-"))
    first, agenda = run.setup(root, pairs)
    (root / "var").mkdir(exist_ok=True)
    (root / "var" / "secret.key").write_bytes(FIXED_SECRET)
    (root / "var" / "secret.key").chmod(0o600)
    out: dict = {"tree": str(tree), "pairs": pairs}

    def measured(name: str, config: Path, now) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run.tick(config, now)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result["sys"] = after.ru_stime - before.ru_stime  # the kernel's part: creating outbox files swings with the disk
        out[name] = result

    measured("first", first, run.T0)
    measured("agenda", agenda, run.T_AGENDA)
    out["replies"] = _this_checkouts_run().drop_replies(root)  # the same replies for every tree, read quickly
    measured("ingest", agenda, run.T_INBOX)
    if not keep:
        shutil.rmtree(root)
    print(json.dumps(out))


def _this_checkouts_run():  # noqa: ANN202 - a module
    """This checkout's bench/run.py (an older tree's reads every outbox message whole: minutes at 10,000 pairs)."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("run_here", Path(__file__).with_name("run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scenario(tree: Path, pairs: int, keep: Path | None) -> dict:
    args = [sys.executable, __file__, "--child", str(tree), "--pairs", str(pairs)]
    if keep:
        args += ["--keep", str(keep)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{tree}: scenario failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", default="")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", default=None)
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", default=None, help="append each run's JSON line to this file")
    args = parser.parse_args()
    if args.child:
        child(Path(args.child).resolve(), args.pairs, args.keep)
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    runs: dict[Path, list[dict]] = {t: [] for t in trees}
    for n in range(args.rounds):
        for i, tree in enumerate(trees):
            keep = Path(args.keep) / f"{i}-{n}" if args.keep else None
            result = scenario(tree, args.pairs, keep)
            runs[tree].append(result)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(result) + "\n")
            print(f"round {n} {tree}: " + "  ".join(
                f"{t} {result[t]['cpu']:.2f} s cpu ({result[t].get('sys', 0):.2f} sys) {result[t]['wall']:.2f} s wall "
                f"{result[t]['rss_mb']:.0f} MB"
                for t in TICKS), flush=True)
    print(f"\nmedian over {args.rounds} round(s) at {args.pairs} pairs: CPU s / peak RSS MB")
    for tree in trees:
        print(f"{str(tree):<30} " + "  ".join(
            f"{t} {statistics.median(r[t]['cpu'] for r in runs[tree]):7.2f} s "
            f"{statistics.median(r[t]['rss_mb'] for r in runs[tree]):5.0f} MB" for t in TICKS))


if __name__ == "__main__":
    main()
