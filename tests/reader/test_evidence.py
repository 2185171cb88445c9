from qa.reader.evidence import locate


def test_a_quote_is_found_across_quote_marks_dashes_case_and_spacing():
    text = "Officials said  the port \u2013 closed since May \u2013 would reopen on \u201cMonday\u201d."
    span = locate('the port - closed since may - would reopen on "Monday"', text, offset=100)
    assert span is not None
    found = text[span.start - 100: span.end - 100]
    assert found == "the port \u2013 closed since May \u2013 would reopen on \u201cMonday"


def test_a_paraphrased_quote_is_not_found():
    text = "The minister suggested a ceasefire in March."
    assert locate("The minister proposed a ceasefire", text) is None
    assert locate("", text) is None


def test_trailing_punctuation_and_surrounding_quote_marks_do_not_matter():
    text = "Exports fell 4% in March."
    span = locate('"exports fell 4% in March."', text)
    assert span is not None and text[span.start:span.end] == "Exports fell 4% in March"


def test_the_answers_own_words_are_counted_in_any_script():
    from qa.verification import answer_share

    answer, question = "Переговоры прошли в Москве.", "Где прошли переговоры?"
    assert answer_share(answer, question, "Они прошли в Москве.") == 1.0
    assert answer_share(answer, question, "Они прошли в Лиме.") == 0.5  # "Москве" is missing
