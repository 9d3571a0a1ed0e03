"""How many clean answers the quality score's injection check flags (worker/quality.py), with no reference.

    .venv/bin/python bench/injection_flags.py

Every answer here is a real, clean answer; none comes with a reference that could vouch for what it
contains, so each link, address or number in it is flagged: the count is the check's cost on answers
a model could plausibly write, not a false-positive rate on answers that have a reference.
"""

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from worker.quality import injection_penalty  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def flagged(answers: list[str]) -> int:
    return sum(injection_penalty(answer, []) < 1 for answer in answers)


def main() -> None:
    faq = json.loads((DATA / "stackfaq" / "stackExchange-FAQ.json").read_text(encoding="utf-8"))["root"]["qapair"]
    sets = {
        "StackFAQ answers (English, many with real links)": [a for entry in faq for a in entry["answer"]],
        "Korean chatbot answers": [row["A"] for row in csv.DictReader(
            (DATA / "korean" / "chatbot_data.csv").open(encoding="utf-8"))],
        "bench/data/foreign_answers.txt": [line.strip() for line in (ROOT / "bench" / "data" / "foreign_answers.txt")
                                           .read_text(encoding="utf-8").splitlines() if line.strip()],
    }
    for name, answers in sets.items():
        print(f"{name}: {flagged(answers)} of {len(answers)} flagged")


if __name__ == "__main__":
    main()
