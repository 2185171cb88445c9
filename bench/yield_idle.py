"""What yielding to answers (``QA_YIELD_TO_ANSWERS=1``) costs an answer when nothing is indexed.

    python bench/yield_idle.py
    python bench/yield_idle.py --calls 1000000

With no upload in progress the yield is bookkeeping only (qa/priority.py): the
answer marks itself as foreground work once, and each embedder call of the answer
(the question, its passages' sentences) asks whether its thread is background
work. This times both, many times over, against the same loop without them, and
prints the cost per answer as a share of a first token: the end-to-end idle
comparison (bench/answering_busy.py) moves with the other processes on this
shared machine by far more than this.
"""

from __future__ import annotations

import sys
import threading
import time

from common import arg_parser, load_average, write_json

EMBEDDER_CALLS_PER_ANSWER = 4  # the question, the sentences shown, the checks' (more than an answer makes)
FIRST_TOKEN_S = 0.20  # the fastest first token measured (README, bench/answering.py)


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args(argv)
    from qa.priority import Foreground

    foreground = Foreground()
    me = threading.get_ident()

    def with_yield() -> None:
        with foreground.answering():
            for _ in range(EMBEDDER_CALLS_PER_ANSWER):
                if foreground.is_background(me):
                    raise AssertionError("no upload runs here")

    def without() -> None:
        for _ in range(EMBEDDER_CALLS_PER_ANSWER):
            pass

    runs = {"yield": [], "none": []}
    for _ in range(3):  # alternating, best of three: the machine is shared
        for name, answer in (("yield", with_yield), ("none", without)):
            started = time.perf_counter()
            for _ in range(args.calls):
                answer()
            runs[name].append((time.perf_counter() - started) / args.calls)
    cost_us = 1e6 * (min(runs["yield"]) - min(runs["none"]))
    share = cost_us / 1e6 / FIRST_TOKEN_S
    print(f"yield bookkeeping per answer at idle: {cost_us:.2f} us "
          f"({share:.2e} of a {FIRST_TOKEN_S} s first token); load average {load_average():.1f}")
    write_json("yield_idle", {"cost_per_answer_us": cost_us, "share_of_first_token": share,
                              "runs_s": runs, "calls": args.calls})
    return 0


if __name__ == "__main__":
    sys.exit(main())
