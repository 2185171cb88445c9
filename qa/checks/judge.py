"""The reader model as a judge of its own draft: does the evidence state this answer
to this exact question?

A general check, in any language: it asks the model a yes/no question under a
grammar over the evidence sentence alone, in a fresh, short prompt that never saw
the draft being written (~80 tokens). Near misses (the fact for another person or
another year) are what it is for; `qa eval` counts what it fires on. Asked instead
as one more turn of the answering conversation (documents in view, ~40 tokens),
the model confirmed its own drafts: on the seed set it refused none more.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.checks import Draft
from qa.types import ACCEPT, REFUSE, Verdict

YES_NO = 'root ::= "yes" | "no" | "Yes" | "No"'


@dataclass(frozen=True)
class ModelJudge:
    generator: Any
    prompts_dir: Path
    name: str = "judge"

    def run(self, draft: Draft) -> Verdict:
        reply = "".join(self.generator.stream_chat(self._messages(draft), max_tokens=2, grammar=YES_NO,
                                                   keep_state=False)).strip().lower()
        if reply.startswith("no"):
            return Verdict(self.name, REFUSE, "the model judges that its evidence does not state "
                           "this answer to the question")
        if reply.startswith("yes"):
            return Verdict(self.name, ACCEPT, "the model judges the answer stated by its evidence")
        return Verdict(self.name, ACCEPT, f"no verdict from the model ({reply[:40]!r}): not refused")

    def _messages(self, draft: Draft) -> list[dict[str, str]]:
        template = _template(self.prompts_dir / "judge_evidence.txt")
        text = template.format(evidence=" ".join(draft.evidence_sentence.split()), earlier=draft.earlier,
                               question=draft.question, answer=draft.reply.answer)
        return [{"role": "system", "content": "You check answers. Reply with yes or no only."},
                {"role": "user", "content": text}]


@lru_cache(maxsize=4)
def _template(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()
