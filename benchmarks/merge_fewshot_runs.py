"""Merge a rerun of a few methods with an earlier ``imprint bench --shots`` run on the same draws.

The few-shot draws are seeded by (shots, draw), so a rerun with ``--methods`` (e.g. the default
and one candidate, without the slow baselines) fits every method on the supports of the earlier
run. This checks it (the methods in both runs must score the same per draw), keeps the earlier
run's draws only, takes the rerun's rows for its methods and the earlier rows for the others, and
writes ``OUT.md`` (accuracy table, then ``REFERENCE minus each method`` paired by draw for every
``--reference``) and ``OUT-runs.csv``. The whole pool's interval is per test image in a bench run;
runs files do not keep the test images, so pool cells here show a zero interval.

    python benchmarks/merge_fewshot_runs.py EARLIER.json RERUN-runs.csv OUT \
        --after adaptive --reference "adaptive whiten_shrinkage=cv" --reference adaptive
"""

from __future__ import annotations

import argparse
import csv
import json

from imprint_core.bench import fewshot as fs


def load(path: str) -> list[dict]:
    """The runs of a bench run: its ``-runs.csv`` or its ``.json``."""
    if path.endswith(".json"):
        with open(path) as fh:
            return json.load(fh)["runs"]
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["shots"], r["draw"], r["n_train"] = int(r["shots"]), int(r["draw"]), int(r["n_train"])
        r["accuracy"], r["fit_seconds"] = float(r["accuracy"]), float(r["fit_seconds"])
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("earlier")
    p.add_argument("rerun")
    p.add_argument("out")
    p.add_argument("--after", help="list the rerun's new methods after this one")
    p.add_argument("--reference", action="append", default=[])
    args = p.parse_args()
    old, new = load(args.earlier), load(args.rerun)
    draws = {(r["shots"], r["draw"]) for r in old}
    new = [r for r in new if (r["shots"], r["draw"]) in draws]

    def key(r: dict) -> tuple:
        return r["method"], r["task"], r["shots"], r["draw"]

    before = {key(r): r["accuracy"] for r in old}
    shared = [abs(before[key(r)] - r["accuracy"]) for r in new if key(r) in before]
    if shared and max(shared) > 1e-9:
        raise SystemExit(f"not the same draws: a shared method differs by {max(shared):.3g} points")
    print(f"{len(shared)} runs of shared methods agree with the earlier run")
    order = list(dict.fromkeys(r["method"] for r in old))
    added = [m for m in dict.fromkeys(r["method"] for r in new) if m not in order]
    at = order.index(args.after) + 1 if args.after in order else len(order)
    order[at:at] = added
    rerun = {r["method"] for r in new}
    runs = [r for r in old if r["method"] not in rerun] + new
    runs.sort(key=lambda r: order.index(r["method"]))
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    summary = fs.summarise(runs)
    md = [f"### {t}\n\n{fs.format_table(summary, t, markdown=True)}\n" for t in tasks]
    for ref in args.reference:
        rows = fs.versus(runs, ref)
        md += [
            f"### {t}: {ref} minus each method (paired by draw, points)\n\n"
            f"{fs.format_versus(rows, t, markdown=True)}\n"
            for t in tasks
        ]
    with open(f"{args.out}-runs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(runs[0]))
        w.writeheader()
        w.writerows(runs)
    with open(f"{args.out}.md", "w") as fh:
        fh.write("\n".join(md))


if __name__ == "__main__":
    main()
