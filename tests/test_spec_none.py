"""recalib._spec: the one place where "none" means no operator."""

from __future__ import annotations

import pytest

from recalib._spec import spec_or_none


@pytest.mark.parametrize("text", [None, "", "  ", "none", "None", " NONE "])
def test_no_operator(text):
    assert spec_or_none(text) is None


@pytest.mark.parametrize("text", ["se", "mssar(scales=(1, 2))", "nonesuch"])
def test_operator_specs_pass_through(text):
    assert spec_or_none(text) == text
