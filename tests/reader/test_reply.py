from qa.reader.reply import answer_pieces, parse_reply


def test_a_reply_with_evidence_is_parsed():
    reply = parse_reply('Answer: They met in Lima.\nEvidence [2]: "Officials met in Lima on Monday"')
    assert (reply.answer, reply.number) == ("They met in Lima.", 2)
    assert reply.quote == "Officials met in Lima on Monday"
    assert not reply.refused


def test_a_refusal_is_parsed_as_refused_with_or_without_label():
    assert parse_reply("Answer: The documents do not say.").refused
    assert parse_reply("The documents do not say").refused
    assert parse_reply("").refused


def test_only_the_answer_sentence_is_streamed_never_the_label_or_evidence():
    raw = 'Answer: They met in Lima.\nEvidence [2]: "Officials met in Lima"'
    pieces = [raw[i:i + 3] for i in range(0, len(raw), 3)]
    visible = "".join(v for v, _ in answer_pieces(pieces))
    assert visible == "They met in Lima."
    assert "".join(p for _, p in answer_pieces(pieces)) == raw


def test_a_reworded_refusal_is_a_refusal_and_an_inline_evidence_label_is_not_answer():
    assert parse_reply("The documents do not say who the chief executive is [1].").refused
    assert parse_reply("Evidence:").refused
    reply = parse_reply('They met in Lima [1]. Evidence [1]: "met in Lima"')
    assert reply.answer == "They met in Lima." and reply.number == 1
