"""Near misses: answers whose words the passages support, to questions they do not answer.

A small model fills a question the documents are silent on with whatever is
nearby: the deed of another doer ("Brussels has pledged..." to "How much has
Russia pledged?"), an act the question presupposes ("The mediator proposed..."
where nobody proposed anything), the nearest name for a role nobody holds.
Each check is narrow on purpose: it decides only when the wording lets it, and
otherwise stays undecided (False), so right answers are not refused.
"""

from __future__ import annotations

import re

from qa.citations import strip_markers
from qa.verification import WH_WORD, stem, terms, words

# "Russia pledged", "Moscow also stated": a named subject, optional auxiliaries, a
# past-tense verb. Only regular "-ed" verbs: the check stays narrow on purpose.
_CAPITALISED = r"[A-Z][\w’'-]*"
_NAMED_SUBJECT = rf"((?:{_CAPITALISED}\s+){{0,4}}{_CAPITALISED})\s+(?:(?:also|has|have|had|will)\s+)*"
_ANSWER_CLAIM = re.compile(rf"^{_NAMED_SUBJECT}([a-z]+ed)\b")
_DOER_BEFORE = re.compile(rf"{_NAMED_SUBJECT}$")  # who is named just before a verb
_NOT_A_DOER = frozenset({"the", "it", "they", "he", "she", "we", "this", "that", "these", "those", "its"})


def swapped_subject(answer: str, cited_text: str) -> bool:
    """True when the answer says "X pledged..." and every time the cited passages use
    that verb, someone else is named doing it ("Brussels has pledged..."): a small
    model's favourite near miss, answering "How much has Russia pledged?" with what
    Brussels pledged. Undecided (False) when the verb is absent or its subject unnamed."""
    claim = _ANSWER_CLAIM.match(strip_markers(answer).strip())
    if not claim:
        return False
    subject, verb = claim.group(1), stem(claim.group(2))
    if not set(subject.lower().split()) - _NOT_A_DOER:
        return False
    doers = []
    for word in re.finditer(r"\b[a-z]+\b", cited_text):
        if stem(word.group()) != verb:
            continue
        named = _DOER_BEFORE.search(cited_text[:word.start()])
        if named is None:
            return False  # "the authority has offered": whoever it is, not decidable here
        doers.append(named.group(1))
    return bool(doers) and not any(_same_name(subject, doer) for doer in doers)


# Verbs of saying: "The statement said" restates "What did the statement say?", and the
# passage may report it with another verb ("Moscow stated"). Only past and present forms
# count in answers and passages, and "state" not in questions: "the Islamic State" says nothing.
_SAYING_BASE_TEXT = "say tell announce add note warn claim describe reply explain"
_SAYING_DONE_TEXT = ("said says stated told tells announced added noted warned claimed described replied "
                     "explained according")
_SAYING_BASE = frozenset(_SAYING_BASE_TEXT.split())
_SAYING_DONE = frozenset(_SAYING_DONE_TEXT.split())
_SAYING = "<saying>"
_PAST = re.compile(r"^[a-z]+ed$")
_IRREGULAR_TEXT = """
met:meet sent:send paid:pay sold:sell bought:buy won:win lost:lose spoke:speak wrote:write sought:seek
fought:fight built:build spent:spend chose:choose struck:strike began:begin rose:rise fell:fall led:lead
"""  # not light verbs ("held talks" is "talks in Vellin"; "took", "made", "gave" say too little)
_IRREGULAR = dict(pair.split(":") for pair in _IRREGULAR_TEXT.split())  # "met" is "meet" done
_IRREGULAR_BASES = frozenset(_IRREGULAR.values())
_WISH_TEXT = "want wish hope plan intend need expect like prefer"
# A wish is rarely stated in the question's word: "What did he want lenders to give?" where he "asked".
_WISHES = frozenset(_WISH_TEXT.split())  # each its own stem
_ACCORDING_TO = re.compile(rf"according to (?:the )?((?:{_CAPITALISED}\s+)*{_CAPITALISED})")
_HEAD_END_TEXT = "after before of in at on from with by for to who which that whose"
_HEAD_ENDS = frozenset(_HEAD_END_TEXT.split())
_APPOSITION_WORDS = 6  # "a mediator, retired judge Anselm Roth": the mediator is Roth


def unstated_premise(answer: str, question: str, cited_text: str, documents_text: str = "") -> bool:
    """True when the answer restates the act the question presupposes ("What did the
    mediator propose?" -> "The mediator proposed...") and the cited passages never
    state that act, or give it to someone else ("Moscow stated..." for "the joint
    statement said"): the model filled a near-miss question with whatever was nearby.
    Undecided (False) when the answer does not restate the question's act."""
    tokens = strip_markers(answer).strip().split()
    asked = {_act(w) for w in words(question)} - {None} - _WISHES
    for index, word in enumerate(tokens[1:], start=1):
        done = word.lower().strip(".,;:")
        act = _act(done)
        said = done in _SAYING_DONE and done != "according"  # "X, according to Y," names no speaker first
        if act in asked and (said or (_is_past(done) and done not in question.lower())):
            return _act_missing_or_swapped(act, _head(tokens[:index]), cited_text,
                                           documents_text or cited_text)
    return False


def _act(word: str) -> str | None:
    """What a verb does, so that "say" matches "stated" and "propose" matches "proposed"."""
    if word in _SAYING_BASE or word in _SAYING_DONE:
        return _SAYING
    if word in _IRREGULAR:
        return stem(_IRREGULAR[word])
    if word in _IRREGULAR_BASES:  # "pay", "buy", "win": short, but acts all the same
        return stem(word)
    return stem(word) if word.isalpha() and len(word) > 3 else None


def _is_past(word: str) -> bool:
    return bool(_PAST.match(word)) or word in _IRREGULAR


def _act_missing_or_swapped(act: str, subject: str, cited_text: str, documents_text: str) -> bool:
    doers = []
    for word in re.finditer(r"\b[a-z]+\b", cited_text):
        done = word.group()
        if done not in _SAYING_DONE if act == _SAYING else _act(done) != act:
            continue
        if act != _SAYING and not _is_past(done):
            return False  # "led discussions" for "discussed": who did it is not decidable here
        if done == "according":
            named = _ACCORDING_TO.match(cited_text, word.start())
        else:
            named = _DOER_BEFORE.search(cited_text[:word.start()])
        if named is None:
            return False  # "the authority has offered": whoever it is, not decidable here
        doers.append(named.group(1))
    return not doers or not any(_refers_to(subject, doer, documents_text) for doer in doers)


_ASKS_WHO_HOLDS = re.compile(r"^\s*who\s+(?:is|was|are|were)\s+(?:the\s+)?(?P<role>[^?]+?)\s*\??\s*$",
                             re.IGNORECASE)
_ROLE_OWNER = re.compile(rf"\b(?:of|at|for)\s+(?:the\s+)?((?:{_CAPITALISED}\s*)+)")


def role_unattested(answer: str, question: str, documents_text: str) -> bool:
    """True for "Who is the transport minister?" answered with a name the documents
    never describe with any of those words ("retired judge Anselm Roth", whom the
    transport ministry appointed): the model took the nearest name for the role. A
    role with an owner ("chief executive of Hanul Energy") needs the owner there too.
    Undecided (False) for other questions or when the answer adds no name."""
    asked = _ASKS_WHO_HOLDS.match(question)
    if asked is None or _PAST.match(asked.group("role").split()[0].lower()):
        return False  # "Who was appointed to mediate?" asks about a deed, not a role
    role = asked.group("role")
    owner = _ROLE_OWNER.search(role)  # "chief executive of Hanul Energy": Harrowgate's will not do
    wanted = [role] if owner is None else [role, owner.group(1)]
    names = names_added(answer, question)
    return bool(names) and not any(all(_refers_to(w, name, documents_text) for w in wanted) for name in names)


def answers_someone_else(answer: str, question: str, documents_text: str) -> bool:
    """True for "How much has Russia pledged?" answered "Brussels has pledged...": the
    answer gives the question's deed to another doer the question does not name. Only
    when the documents mention the asked doer (so they could have said it), which
    leaves "the EU pledged" answered with "Brussels" to the other checks."""
    text = strip_markers(answer)
    for verb in re.finditer(r"\b[a-z]+ed\b", text):
        asked_doer = _question_doer(question, verb.group())
        named = _DOER_BEFORE.search(text[:verb.start()])
        if asked_doer is None or named is None:
            continue
        mentioned = re.search(rf"\b{re.escape(asked_doer)}\b", documents_text)
        return bool(mentioned) and not _same_name(asked_doer, named.group(1))
    return False


def _question_doer(question: str, verb: str) -> str | None:
    """The name just before ``verb`` in the question ("Russia" in "has Russia pledged")."""
    at = re.search(rf"\b{verb}\b", question)
    named = _DOER_BEFORE.search(question[:at.start()]) if at else None
    if named is None:
        return None
    name = [w for w in named.group(1).split() if not WH_WORD.fullmatch(w)]
    return " ".join(name) or None


def _head(tokens: list[str]) -> str:
    """The subject up to its first preposition or participle: "The joint statement"
    of "The joint statement issued after the Moscow meeting"."""
    kept: list[str] = []
    for word in tokens:
        if word.lower() in _HEAD_ENDS or (kept and _PAST.match(word.lower())):
            break
        kept.append(word)
    return " ".join(kept)


def _refers_to(subject: str, doer: str, text: str) -> bool:
    """The same name, or a description set right beside the name in the documents
    ("the chief executive, Tomas Brandt," for "the chief executive")."""
    if _same_name(subject, doer):
        return True
    wanted = terms(subject)
    tokens = re.findall(r"[\w’'-]+", text)
    surname = doer.split()[-1]
    for at in (i for i, w in enumerate(tokens) if w == surname):
        near = tokens[max(0, at - _APPOSITION_WORDS): at + _APPOSITION_WORDS + 1]
        if wanted & terms(" ".join(near)):
            return True
    return False


def _same_name(one: str, other: str) -> bool:
    """Names agree on a word's first four letters: "Russia" and "Russian President Putin"."""
    prefixes = {w.lower()[:4] for w in one.split() if w.lower() != "the"}
    return any(w.lower()[:4] in prefixes for w in other.split())


_NAME_RUN = re.compile(r"[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)*")


def name_added(answer: str, question: str) -> str | None:
    """The first run of capitalised words the answer adds to the question ("Sergei
    Lavrov" in "The official who warned... is Sergei Lavrov."): whom the model found
    when it stopped at the first hop of a two-hop question."""
    return next(iter(names_added(answer, question)), None)


def names_added(answer: str, question: str) -> list[str]:
    """Every run of capitalised words the answer adds to the question."""
    asked = set(words(question))
    names = []
    for run in _NAME_RUN.finditer(strip_markers(answer)):
        name = [w for w in run.group().split() if w.lower() not in _NOT_A_DOER]
        if name and any(w.lower() not in asked for w in name):
            names.append(" ".join(name))
    return names


_ASKED_OF = re.compile(  # "With whom did [the finance minister] meet on the eve...?"
    rf"^\s*(?:(?:{_HEAD_END_TEXT.replace(' ', '|')})\s+)?(?:who|whom|which|what)(?:\s+\w+)?\s+"
    r"(?:did|does|do)\s+(?P<subject>(?:the\s+)?[\w’'-]+(?:\s+[\w’'-]+){0,3})",
    re.IGNORECASE)
_TITLE_WORDS = 4  # "Finance minister Jonas Petrov", "Norvale's trade minister, Helena Varga"
_TITLE_ENDS = frozenset({*_HEAD_ENDS, "and", "but", "or", "said", "says"})
_TITLE_TOKEN = re.compile(r"[\w-]+|[’']s\b|[.,;:!?]")  # "Norvale's" is "Norvale", "'s"


def names_the_subject(answer: str, question: str, documents_text: str) -> str | None:
    """The name, when the answer names only the person an object question ("...did X
    meet?", not "Who has pledged?") describes as its subject: "With whom did the
    finance minister meet?" -> "Jonas Petrov", whom the documents call "Finance
    minister Jonas Petrov". The small model answers with the question's own person
    instead of the one it asks for. Only titles set right beside the name count, so
    "Petrov, who met Marsh" does not make Marsh the minister."""
    asked = _ASKED_OF.match(question)
    names = names_added(answer, question)
    if asked is None or not names:
        return None
    subject = terms(asked.group("subject"))
    said_more = terms(strip_markers(answer)) - terms(question) - terms(" ".join(names))
    if len(subject) < 2 or said_more:  # "Petrov said the government would act" answers "what"
        return None
    titled = all(len(subject & _title_words(name, documents_text)) >= 2 for name in names)
    return names[0] if titled else None


def _until_clause(tokens: list[str]) -> list[str]:
    kept = []
    for token in tokens[:_TITLE_WORDS]:
        if token.lower() in _TITLE_ENDS or token in ".;:!?":
            break
        kept.append(token)
    return kept


def _title_words(name: str, text: str) -> set[str]:
    """Terms of the words before each mention of the surname ("Finance minister Jonas
    Petrov"), or after it behind a comma ("Helena Varga, the trade minister"), within
    the sentence and up to a clause or a preposition ("Marsh met the minister" gives
    Marsh no title; nor does "authorities in Ankara")."""
    tokens = _TITLE_TOKEN.findall(text)
    surname = name.split()[-1]
    found: set[str] = set()
    for at in (i for i, token in enumerate(tokens) if token == surname):
        around = _until_clause(tokens[at - 1::-1] if at else [])
        if tokens[at + 1: at + 2] == [","]:
            around += _until_clause(tokens[at + 2:])
        found |= terms(" ".join(t for t in around if t != ","))
    return found
