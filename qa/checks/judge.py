"""The reader model as a judge of its own draft: does the evidence state this answer
to this exact question?

A general check, in any language: the model is asked yes/no questions over the
evidence sentence alone, in fresh, short prompts that never saw the draft being
written (~100 tokens). Near misses (the fact for another person or another year)
are what it is for. Two questions, each read as the probability of a yes: does the
text state the proposed answer to this question, and does the text answer this
question at all (asked without the answer, which the model otherwise tends to
confirm). Their mean log-odds decides: on six tuning sets (news/memos/mixed 26
and 27; `evals/judge_prompts.py`) the pair refused 26 of 62 answers to unanswerable
questions for 7 of 210 right ones, the stated-answer question alone 14 for 4. The
second prompt shares the first's opening, so llama.cpp evaluates only the rest.
Asked instead as one more turn of the answering conversation, the model confirmed
its own drafts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.checks import Draft
from qa.types import ACCEPT, REFUSE, Verdict

YES_NO = 'root ::= "yes" | "no" | "Yes" | "No"'
YES, NO = ("yes", "Yes"), ("no", "No")
SYSTEM = "You check answers. Reply with yes or no only."
PROMPTS = ("judge_question.txt", "judge_evidence.txt")  # the second shares the first's opening


@dataclass(frozen=True)
class ModelJudge:
    """Refuses a draft whose evidence the model does not judge to state it: by the
    probability of a yes where the generator gives one (``min_yes``), else by its reply."""

    generator: Any
    prompts_dir: Path
    min_yes: float = 0.5
    name: str = "judge"

    def run(self, draft: Draft) -> Verdict:
        if not hasattr(self.generator, "choice_odds"):  # a server: its greedy reply
            return self._by_reply(self._messages(draft, PROMPTS[-1]))
        answered, stated = (self._p_yes(self._messages(draft, name)) for name in PROMPTS)
        if answered is None or stated is None:  # the model gave no odds: its reply decides
            return self._by_reply(self._messages(draft, PROMPTS[-1]))
        yes = _mean_odds(answered, stated)
        detail = (f"P(yes) {yes:.2f}: the text answers the question {answered:.2f}, "
                  f"states the answer {stated:.2f}")
        if yes < self.min_yes:
            return Verdict(self.name, REFUSE, "the model judges that its evidence does not state "
                           f"this answer to the question ({detail})")
        return Verdict(self.name, ACCEPT, f"the model judges the answer stated by its evidence ({detail})")

    def _p_yes(self, messages: list[dict[str, str]]) -> float | None:
        odds = self.generator.choice_odds(messages, YES + NO)
        return None if odds is None else sum(odds[c] for c in YES)

    def _by_reply(self, messages: list[dict[str, str]]) -> Verdict:
        reply = "".join(self.generator.stream_chat(messages, max_tokens=2, grammar=YES_NO,
                                                   keep_state=False)).strip().lower()
        if reply.startswith("no"):
            return Verdict(self.name, REFUSE, "the model judges that its evidence does not state "
                           "this answer to the question")
        if reply.startswith("yes"):
            return Verdict(self.name, ACCEPT, "the model judges the answer stated by its evidence")
        return Verdict(self.name, ACCEPT, f"no verdict from the model ({reply[:40]!r}): not refused")

    def _messages(self, draft: Draft, prompt: str) -> list[dict[str, str]]:
        template = _template(self.prompts_dir / prompt)
        text = template.format(evidence=" ".join(draft.evidence_sentence.split()), earlier=draft.earlier,
                               question=draft.question, answer=draft.reply.answer)
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def _mean_odds(*probabilities: float) -> float:
    """The probability whose log-odds is the mean of theirs."""
    logits = [math.log(p / (1 - p)) for p in (min(max(p, 1e-6), 1 - 1e-6) for p in probabilities)]
    return 1 / (1 + math.exp(-sum(logits) / len(logits)))


@lru_cache(maxsize=4)
def _template(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()
