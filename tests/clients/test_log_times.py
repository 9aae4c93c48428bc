"""`gantry log --timestamps`: the line prefixes, across pieces read one after the other."""

from __future__ import annotations

from clients.log_times import LineStamper

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def test_each_line_gets_the_time_of_its_first_byte_across_pieces() -> None:
    s = LineStamper()
    # "wor|ld" is split between two reads; "next" starts after the mark at 11.
    first = s.feed(b"hello\nwor", 0, ((0, T0), (6, T0 + 1500)))
    second = s.feed(b"ld\r50%\r100%\nnext\n", 9, ((11, T0 + 2000),))
    assert first + second == (
        b"2023-11-14T22:13:20.000Z hello\n2023-11-14T22:13:21.500Z world\r50%\r100%\n"
        b"2023-11-14T22:13:22.000Z next\n"
    )


def test_a_log_without_times_passes_through_unchanged() -> None:
    assert LineStamper().feed(b"a\nb\n", 0, ()) == b"a\nb\n"


def test_a_line_before_the_first_mark_is_padded_to_keep_the_column() -> None:
    out = LineStamper().feed(b"a\nb\n", 0, ((2, T0),))
    assert out == b" " * 25 + b"a\n2023-11-14T22:13:20.000Z b\n"
