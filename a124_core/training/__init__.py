"""Training: stage configs and presets, temporal sampling, losses, the shared loop and the three stages.

static_stage -> coarse_stage -> refine_stage, each run by `loop.train`, each handing a `scene.Scene` to the next.
Import the modules directly (the stages pull in diffusers through the prior interfaces only when priors are used).
"""
