"""glTF 2.0 files: the GLB container (the one writer), binary accessors, and morph-target animation.

Read top-down: `container` (GLB bytes in and out, .gltf packing) -> `accessors` (arrays in a GLTF2's binary
chunk) -> `morph` (one morph target per frame and the clip that plays them). Meshes the pack builds
(`outputs/`) and the user's own meshes it animates (`meshes/writeback.py`) are written through here.
"""
