"""The compiled utf8 column packer (``streams/_utf8_column.pyx``) against the Python one.

Both must give the same bytes for every list of strings, refuse the same inputs with the same
exception (a lone surrogate cannot be UTF-8; the sink would never read it), and the packer in
use must be the compiled one wherever ``make setup`` built it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import packed_batch

compiled = pytest.importorskip("streams._utf8_column")

texts = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(["", "é", "日本語", "\U0001f600", "\x00", "a" * 5000]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_same_bytes_as_the_python_packer(values: list[str]) -> None:
    assert compiled.utf8_column(values) == packed_batch._utf8(values)


@pytest.mark.parametrize("values", [["ok", "\ud800"], ["a\udc80b"]])
def test_a_lone_surrogate_is_refused_like_str_encode_refuses_it(values: list[str]) -> None:
    with pytest.raises(UnicodeEncodeError):
        packed_batch._utf8(values)
    with pytest.raises(UnicodeEncodeError):
        compiled.utf8_column(values)


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(TypeError):
        compiled.utf8_column(["a", 1])


def test_the_compiled_packer_is_the_one_in_use() -> None:
    assert packed_batch._UTF8_COLUMN is compiled.utf8_column


def test_a_str_subclass_packs_like_str() -> None:
    class Name(str):
        pass

    values = [Name("a"), "b", Name("é")]
    assert compiled.utf8_column(values) == packed_batch._utf8(values)
