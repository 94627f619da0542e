"""Frozen diffusion priors behind one interface (`base.Prior`), one module per backend (SPEC 5).

sd (image-text), zero123 (image-pose), video (video-text), controlnet_tile (image-control); `tiny` builds
random-weight stand-ins in the real on-disk layouts, `full_size` random-weight full-size ones for benchmarks.
Import the backend modules directly (they pull in diffusers/transformers).
"""
