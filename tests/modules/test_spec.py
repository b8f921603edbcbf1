"""RecalibSpec: one value for an operator (parse, text, complete form, budgets, "no operator")."""

from __future__ import annotations

import pytest

from recalib.modules import NO_OPERATOR, RecalibSpec, build_recalib, is_no_operator


# ---------------------------------------------------------------------------------- no operator ---
@pytest.mark.parametrize("text", [None, "", "  ", "none", "None", " NONE ", "identity", "Identity"])
def test_no_operator(text: str | None) -> None:
    assert is_no_operator(text)
    assert RecalibSpec.parse(text) == NO_OPERATOR and RecalibSpec.parse(text).is_none
    assert str(RecalibSpec.parse(text)) == "none"
    assert type(build_recalib(text, 8)).__name__ == "Identity"


@pytest.mark.parametrize("text", ["se", "mssar(scales=(1, 2))", "nonesuch"])
def test_operator_specs_are_not_no_operator(text: str) -> None:
    assert not is_no_operator(text)


def test_no_operator_takes_no_arguments() -> None:
    with pytest.raises(ValueError, match="takes no arguments"):
        RecalibSpec.parse("none", {"x": 1})
    with pytest.raises(ValueError, match="takes no arguments"):
        RecalibSpec.parse("identity(x=1)")


# --------------------------------------------------------------------------------- text forms ---
@pytest.mark.parametrize("text, expected", [
    ("mssar", "mssar"),
    ("mssar(strategy='sliding', scales=[1, 2])", "mssar(scales=(1, 2), strategy='sliding')"),
    (" se( reduction = 8 ) ", "se(reduction=8)"),
    ("ge(variant='theta', extent=0)", "ge(extent=0, variant='theta')"),
])
def test_text_round_trips(text: str, expected: str) -> None:
    spec = RecalibSpec.parse(text)
    assert str(spec) == expected
    assert RecalibSpec.parse(str(spec)) == spec  # what is stored reads back as the same value
    assert RecalibSpec.parse(spec) is spec and hash(spec) == hash(RecalibSpec.parse(expected))


def test_args_override_and_bad_values() -> None:
    assert RecalibSpec.parse("se(reduction=4)", {"reduction": 8}).kwargs == {"reduction": 8}
    with pytest.raises(ValueError, match="valid names"):
        RecalibSpec.parse("msar")
    with pytest.raises(ValueError, match="unknown argument.*scale.*valid arguments"):
        RecalibSpec.parse("mssar(scale=(1,))")
    with pytest.raises(TypeError, match="string"):
        RecalibSpec.parse(3)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- complete form, budgets ---
# Written by hand from the constructors' signatures (MSSAR, SqueezeExcite, GatherExcite, SpatialGroupEnhance).
MSSAR_PAPER = "mssar(context_channels=None, reduction=1, scales=(1, 2, 4), strategy='regional')"


def test_complete_fills_every_argument() -> None:
    assert str(RecalibSpec.parse("mssar").complete()) == MSSAR_PAPER
    assert str(RecalibSpec.parse("mssar").complete("se")) == MSSAR_PAPER.replace("reduction=1,", "reduction=16,")
    assert str(RecalibSpec.parse("se").complete("se")) == "se(reduction=16)"
    assert str(RecalibSpec.parse("ge").complete()) == "ge(extent=0, feat_size=None, reduction=16, variant='theta-')"
    assert str(RecalibSpec.parse("sge").complete("se")) == "sge(groups=None)"  # no reduction: no budget
    assert RecalibSpec.parse(None).complete("se") == NO_OPERATOR
    spec = RecalibSpec.parse("mssar").complete("se")
    assert spec.complete("se") == spec and spec.complete("paper") == spec  # complete specs are fixed points


def test_budget_rules() -> None:
    """``"se"``: reduction = 1 / rd_ratio (timm's EfficientNet passes 0.25 / 6); an explicit value always wins."""
    assert RecalibSpec.parse("mssar").complete("se", rd_ratio=0.25 / 6).kwargs["reduction"] == 24
    assert RecalibSpec.parse("se").complete("se", rd_ratio=0.25).kwargs["reduction"] == 4
    assert RecalibSpec.parse("mssar(reduction=2)").complete("se", rd_ratio=0.25).kwargs["reduction"] == 2
    assert RecalibSpec.parse("mssar(reduction=2)").complete("paper").kwargs["reduction"] == 2
    with pytest.raises(ValueError, match="valid rules: paper, se"):
        RecalibSpec.parse("mssar").complete("imagenet")
    with pytest.raises(ValueError, match="rd_ratio"):
        RecalibSpec.parse("mssar").complete("se", rd_ratio=0.0)


@pytest.mark.parametrize("text", ["mssar", "se", "ge", "sge", "mssar(strategy='sliding')", "sge(groups=2)"])
def test_build_is_the_constructor_with_the_spec(text: str) -> None:
    spec = RecalibSpec.parse(text).complete("se")
    op = spec.build(32)
    direct = spec.operator_class(32, **spec.kwargs)
    assert repr(op) == repr(direct) == repr(build_recalib(spec, 32)) == repr(build_recalib(str(spec), 32))


@pytest.mark.parametrize("stored, family_budget, meaning", [
    # texts committed in config.json / study.json / the pretrained manifest before specs were recorded complete
    ("mssar", "paper", MSSAR_PAPER),
    ("mssar(scales=(1, 2, 4), strategy='regional')", "paper", MSSAR_PAPER),
    ("mssar(scales=(1, 2, 4), strategy='sliding')", "paper", MSSAR_PAPER.replace("regional", "sliding")),
    ("mssar", "se", MSSAR_PAPER.replace("reduction=1,", "reduction=16,")),  # the ImageNet zoo's old silent switch
    ("ge(extent=0, variant='theta-')", "paper", "ge(extent=0, feat_size=None, reduction=16, variant='theta-')"),
    ("se", "paper", "se(reduction=16)"),
    ("none", "se", "none"),
])
def test_old_stored_texts_keep_their_meaning(stored: str, family_budget: str, meaning: str) -> None:
    assert str(RecalibSpec.parse(stored).complete(family_budget)) == meaning
