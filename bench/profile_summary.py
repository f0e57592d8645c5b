"""Where a process spent its time, from py-spy's collapsed stacks (--format raw).

Run: .venv/bin/python bench/profile_summary.py FILE [--top 25]

Prints the functions with the most samples on top of the stack (self) and anywhere in it
(total), as shares of all samples.
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(args.file, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            count = int(count_text)
            frames = stack.split(";")
            samples += count
            own[frames[-1]] += count
            for frame in set(frames):
                total[frame] += count
    print(f"{samples} samples")
    print("\n| self | function |\n|---|---|")
    for frame, count in own.most_common(args.top):
        print(f"| {100 * count / samples:.1f} % | `{frame}` |")
    print("\n| total | function |\n|---|---|")
    for frame, count in total.most_common(args.top):
        print(f"| {100 * count / samples:.1f} % | `{frame}` |")


if __name__ == "__main__":
    main()
