import pytest

from a124_core.prompts import CLI_OPTIONS, derive_prompts


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


def test_usual_prompts_derive_without_warnings():
    for motion in ("a panda is dancing", "a fox maneuvering a game controller with its paws", "panda"):
        assert derive_prompts(motion).warnings == ()


def test_non_english_prompt_warns_and_names_the_options():
    p = derive_prompts("一只熊猫在跳舞")
    assert (p.token, p.initializer) == ("_object_", "object")
    (warning,) = p.warnings
    assert "No English subject word" in warning and "--token" in warning and "--initializer" in warning
    assert "\n" not in warning
    given = derive_prompts("一只熊猫在跳舞", token="_panda_", initializer="panda", static="a panda")
    assert given.warnings == ()


def test_long_prompt_warns_about_truncation_and_the_guessed_subject():
    motion = " ".join(["a panda and a cat and a dog"] * 100)  # 800 words, no verb-like word
    p = derive_prompts(motion)
    assert len(p.warnings) == 2
    truncation, subject = p.warnings
    assert "800 words" in truncation and "--prompt" in truncation
    assert "guessed" in subject and p.token in subject and "--token / --initializer / --static-prompt" in subject


def test_function_word_as_token_warns():
    p = derive_prompts("a panda and", option_names={**CLI_OPTIONS, "token": "token input"})
    assert p.initializer == "and"
    (warning,) = p.warnings
    assert "'_and_'" in warning and "token input" in warning
