"""Frozen diffusion priors behind one interface (`base.Prior`, a Protocol per kind), one module per backend (SPEC 5).

sd (image-text: SD1.5, SD2.1-base), zero123 (image-pose), video (video-text), controlnet_tile (image-control),
mvdream (image-text-multiview); `tiny` / `tiny_mvdream` build random-weight stand-ins in the real on-disk layouts,
`full_size` random-weight full-size ones for benchmarks. Import the backend modules directly (they pull in
diffusers/transformers).
"""
