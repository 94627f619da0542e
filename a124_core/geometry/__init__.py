"""Geometry of triangle meshes that both training (the ARAP term) and mesh input (checks, fit) use.

It sits below `training/` and `meshes/`, so neither has to import the other for it: `topology` (welding split
vertices, edges and their use counts) -> `arap` (as-rigid-as-possible energy over welded one-rings).
"""
