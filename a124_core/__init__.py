"""Animate124 library: one image + a motion prompt -> a 4D NeRF.

Never imports ComfyUI; the `nodes/` package adapts it to ComfyUI.
"""

__version__ = "0.1.0"
