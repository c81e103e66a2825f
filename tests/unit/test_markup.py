"""voxlet.text.markup: the pause markup voxlet reads, and everything it refuses."""

from __future__ import annotations

import pytest

from voxlet.errors import TextError
from voxlet.text.markup import MAX_BREAK_S, PARAGRAPH_PAUSE_S, Pause, parse

P = Pause(PARAGRAPH_PAUSE_S, paragraph=True)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ('Hello <break time="500ms"/> world', ["Hello ", Pause(0.5), " world"]),
        ("Hi<break time='1.5s'/>there", ["Hi", Pause(1.5), "there"]),
        ('Hi <break time=" 2 s " /> there', ["Hi ", Pause(2.0), " there"]),
        ('Hi <BREAK TIME="250ms"> there', ["Hi ", Pause(0.25), " there"]),
        ("Hi <break/> there", ["Hi ", Pause(0.5), " there"]),
        ('Hi <break strength="x-strong"></break> there', ["Hi ", Pause(1.0), " there"]),
        ('Hi <break strength="none"/> there', ["Hi ", Pause(0.0), " there"]),
        ('<break time="1s"/>Hi<break time="1s"/><break time="1s"/>', [Pause(1), "Hi", Pause(2)]),
        ("<speak><p>One.</p><p>Two.</p></speak>", ["One.", P, "Two."]),
        ("One.\n\nTwo.\n  \n\n Three.", ["One.", P, "Two.", P, "Three."]),
        ("\n\nOne.\n\n", ["One."]),  # no paragraph pause before or after all text
        ("x < 5 and <3 or a<-b", ["x < 5 and <3 or a<-b"]),
        ("One line\nand the next", ["One line\nand the next"]),
    ],
)
def test_accepted_markup(text, pieces):
    assert parse(text) == pieces


def test_pause_length_in_samples_is_exact():
    assert Pause(0.5).samples == 12_000
    assert Pause(1.5).samples == 36_000
    assert Pause(0.001).samples == 24


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a <break time="1s"', "unclosed markup at position 2"),
        ("a <break", "unclosed markup"),
        ("a <b>bold</b>", "unsupported markup <b> at position 2"),
        ('a <voice name="x">hi</voice>', "unsupported markup <voice>"),
        ('a <break time="1"/>', 'time must look like "500ms"'),
        ('a <break time="-1s"/>', "time must look like"),
        ('a <break time="fast"/>', "time must look like"),
        (f'a <break time="{MAX_BREAK_S + 1:g}s"/>', "is over 30s"),
        ('a <break foo="1"/>', "unknown attribute 'foo'"),
        ('a <break strength="huge"/>', "strength must be one of"),
        ("a <break time=1s/>", "cannot read the attributes"),
        ('a <p class="x">b</p>', "takes no attributes"),
    ],
)
def test_refused_markup_is_a_one_line_text_error(text, message):
    with pytest.raises(TextError, match=message) as info:
        parse(text)
    assert "\n" not in str(info.value)
