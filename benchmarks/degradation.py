"""The degradation experiment of He et al. 2016, figure 6 (left and middle), as one command.

    python benchmarks/degradation.py --data-dir ../shared/data/cifar10 [--out runs/degradation]
        [--max-steps N | --epochs N] [--time-limit SECONDS] [--device auto] [-- extra 'cnnlab train' flags]

Trains plain20, plain56, resnet20 and resnet56 with the `resnet-cifar-paper` recipe (64k
iterations, 45k/5k split), one after the other, each as `cnnlab train` into OUT/<model>; then draws
the training, validation and test error of all four on one figure (`cnnlab viz curves`:
OUT/degradation.png) and prints the table of final errors (also OUT/degradation.md) with the
verdict on the paper's two claims: the deeper plain net ends WORSE than the shallower one, the
deeper residual net BETTER. `--max-steps` / `--epochs` give a shorter schedule; the table states the
schedule each run actually had (a shorter one also moves the paper's lr drops only if you pass
`-- --milestones ...`: the recipe's drops are at 32k and 48k iterations).

Resumable: run the same command again and each unfinished run continues from its last checkpoint
(`cnnlab train --resume`), finished runs are skipped. `--time-limit` stops the current run when
the budget is spent (its last epoch's checkpoint stays), so on a GPU lent 10 minutes at a time the
experiment goes on slice by slice: bring OUT back and run the command again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resumable import state_of, train_slice  # noqa: E402

MODELS = ("plain20", "plain56", "resnet20", "resnet56")
RECIPE = "resnet-cifar-paper"
PAPER_TEST_ERROR = {"plain20": None, "plain56": None, "resnet20": 8.75, "resnet56": 6.97}  # %, table 6


def run_all(args, extra: list[str]) -> bool:
    """Train every model not yet done; False when --time-limit stopped one (run the command again)."""
    deadline = time.monotonic() + args.time_limit if args.time_limit else None
    budget = (["--max-steps", str(args.max_steps)] if args.max_steps else []) + \
             (["--epochs", str(args.epochs)] if args.epochs else [])
    data = ["--data-dir", str(args.data_dir)] if args.data_dir else []
    flags = ["--recipe", RECIPE, "--seed", str(args.seed), *budget, *data, *extra]
    for model in args.models:
        left = None if deadline is None else deadline - time.monotonic()
        if not train_slice(model, args.out / model, args.device, flags, left):
            return False
    return True


def last(records: list[dict], split: str) -> dict | None:
    found = [r for r in records if r.get("split") == split]
    return found[-1] if found else None


def final_errors(out: Path, models) -> dict:
    from cnnlab.run import read_config, read_metrics

    table = {}
    for model in models:
        run = out / model
        records = read_metrics(run) if (run / "metrics.jsonl").exists() else []
        if not records:
            continue
        train = read_config(run)["train"]
        table[model] = {
            "state": state_of(run),
            "epoch": last(records, "train")["epoch"],
            "step": last(records, "train")["step"],
            "schedule": f"max_steps {train['max_steps']}, epochs {train['epochs']}, batch {train['batch_size']}",
            **{f"{split}_error": 100 * (1 - r["top1"]) for split in ("train", "val", "test")
               if (r := last(records, split))},
            "hours": last(records, "train")["time"] / 3600,
        }
    return table


def verdict(table: dict) -> list[str]:
    """The paper's two claims, on training and on test error, where both runs of a pair exist."""
    lines = []
    for shallow, deep, claim, worse in (("plain20", "plain56", "deeper plain net worse", True),
                                        ("resnet20", "resnet56", "deeper residual net better", False)):
        if shallow not in table or deep not in table:
            lines.append(f"- {claim}: not known ({shallow} or {deep} has no epoch yet)")
            continue
        for split in ("train", "test"):
            a, b = table[shallow][f"{split}_error"], table[deep][f"{split}_error"]
            holds = b > a if worse else b < a
            lines.append(f"- {claim} on {split} error: {deep} {b:.2f}% vs {shallow} {a:.2f}%: "
                         f"**{'holds' if holds else 'does not hold'}**")
    if any(row["state"] != "done" for row in table.values()):
        lines.append("- (some runs are unfinished: these are the errors at their last epoch, not final ones)")
    return lines


def report(out: Path, models) -> str:
    table = final_errors(out, models)
    rows = ["| model | state | epoch | step | train error | val error | test error | paper test error | schedule |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model, r in table.items():
        paper = PAPER_TEST_ERROR[model]
        rows.append(f"| {model} | {r['state']} | {r['epoch']} | {r['step']} | {r['train_error']:.2f}% | "
                    + (f"{r['val_error']:.2f}%" if "val_error" in r else "-") + f" | {r['test_error']:.2f}% | "
                    + (f"{paper}%" if paper else "-") + f" | {r['schedule']} |")
    text = "\n".join(rows + ["", *verdict(table)]) + "\n"
    (out / "degradation.md").write_text(text)
    (out / "degradation.json").write_text(json.dumps(table, indent=1) + "\n")
    if table:
        from cnnlab.viz.curves import plot_curves

        png, _ = plot_curves([out / m for m in table], out / "degradation.png")
        text += f"\ncurves: {png}\n"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="flags after -- go to every 'cnnlab train' of a new run")
    parser.add_argument("--data-dir", type=Path, help="CIFAR-10 (as for cnnlab train --data-dir)")
    parser.add_argument("--out", type=Path, default=Path("runs/degradation"))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--max-steps", type=int, help="a shorter schedule than the paper's 64k iterations")
    parser.add_argument("--epochs", type=int, help="a shorter schedule, in epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--time-limit", type=float, help="seconds; stop (resumably) when spent")
    parser.add_argument("--report-only", action="store_true", help="draw and tabulate what exists, train nothing")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    finished = args.report_only or run_all(args, extra)
    print(report(args.out, args.models))
    return 0 if finished else 3  # 3: unfinished, run again


if __name__ == "__main__":
    sys.exit(main())
