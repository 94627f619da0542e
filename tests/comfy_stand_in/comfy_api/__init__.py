"""Stand-in of ComfyUI's `comfy_api` (see ../README.md): only `v0_0_2`, the version the pack pins."""
