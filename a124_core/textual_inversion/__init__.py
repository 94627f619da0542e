"""Textual inversion (SPEC 9): one learned SD1.5 token for the reference image."""

from .augment import AugmentConfig, augment
from .trainer import (
    OBJECT_TEMPLATES,
    TextualInversionConfig,
    TextualInversionResult,
    save_embedding,
    train_textual_inversion,
)

__all__ = [
    "OBJECT_TEMPLATES",
    "AugmentConfig",
    "TextualInversionConfig",
    "TextualInversionResult",
    "augment",
    "save_embedding",
    "train_textual_inversion",
]
