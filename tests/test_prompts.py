import pytest

from a124_core.prompts import derive_prompts


@pytest.mark.parametrize(
    ("motion", "static", "token", "refine"),
    [
        ("a panda is dancing", "a high-resolution DSLR image of a panda", "_panda_", "a _panda_ is dancing"),
        (
            "a fox maneuvering a game controller with its paws",
            "a high-resolution DSLR image of a fox",
            "_fox_",
            "a _fox_ maneuvering a game controller with its paws",
        ),
        (
            "a space shuttle launching",
            "a high-resolution DSLR image of a space shuttle",
            "_shuttle_",
            "a _shuttle_ launching",
        ),
    ],
)
def test_prompts_of_the_examples_match_the_reference_pipeline(motion, static, token, refine):
    prompts = derive_prompts(motion)
    assert (prompts.static, prompts.token, prompts.refine) == (static, token, refine)
    assert prompts.initializer == token.strip("_")


def test_overrides_win_and_are_validated():
    p = derive_prompts(
        "a panda is dancing",
        static="a photo of a red panda",
        token="<rp>",
        initializer="panda",
        refine="a <rp> dances",
    )
    assert (p.static, p.token, p.refine) == ("a photo of a red panda", "<rp>", "a <rp> dances")
    with pytest.raises(ValueError, match="empty"):
        derive_prompts("  ")
    with pytest.raises(ValueError, match="must contain the token"):
        derive_prompts("a panda is dancing", refine="a panda dances")
    with pytest.raises(ValueError, match="one word"):
        derive_prompts("a panda is dancing", token="two words")
