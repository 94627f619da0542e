"""The ARAP guidance term: vertex positions are the forward warp of the backward field, the energy is zero for a
rigid motion and its gradient reaches the deformation network."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import trimesh

from a124_core.fields.deformation import DeformationField
from a124_core.outputs.animated_mesh import AnimatedMeshConfig, frame_positions
from a124_core.presets import preset
from a124_core.training.terms.arap import ARAP, ARAPTermConfig


def _term(field, config=ARAPTermConfig(inverse_iterations=30)):
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.4)
    term = ARAP(config, sphere.vertices, sphere.faces)
    return term


def _field(seed: int) -> DeformationField:
    torch.manual_seed(seed)
    smoke = preset("smoke")
    return DeformationField(smoke.static.field, smoke.representation("deformation").deformation)


def test_rigid_translation_has_zero_energy_and_moves_vertices_forward():
    field = _field(0)
    with torch.no_grad():
        field.mlp[-1].bias.copy_(torch.tensor([0.2, -0.1, 0.05]))  # d(x, t) = constant: x_d = x_c - d
    term = _term(field)
    times = torch.tensor([0.0, 0.5, 1.0])
    d = field.displacement(term.rest[:1], 0.5).detach()
    positions = term.positions(field, times)
    torch.testing.assert_close(positions, (term.rest - d).expand(3, -1, -1), atol=1e-5, rtol=0)
    ctx = SimpleNamespace(view=SimpleNamespace(times=times), field=field, generator=torch.Generator().manual_seed(0))
    assert float(term.losses(ctx)["arap"].detach()) < 1e-8


def test_positions_match_the_exported_inverse_warp_and_the_gradient_reaches_the_field():
    field = _field(1)
    with torch.no_grad():
        field.mlp[-1].weight.normal_(0, 0.3)  # a smooth non-rigid warp
    term = _term(field)
    times = [0.25, 0.75]
    positions = term.positions(field, torch.tensor(times)).detach().numpy()
    exported, stats = frame_positions(field, term.rest.numpy(), times, AnimatedMeshConfig(inverse_iterations=100))
    assert stats.unconverged == 0
    np.testing.assert_allclose(positions, exported, atol=1e-4)
    ctx = SimpleNamespace(
        view=SimpleNamespace(times=torch.tensor(times)), field=field, generator=torch.Generator().manual_seed(0)
    )
    loss = term.losses(ctx)["arap"]
    loss.backward()
    assert float(loss) > 0 and float(field.mlp[-1].weight.grad.abs().sum()) > 0
    assert field.canonical.encoder.embeddings.grad is None  # the canonical field is frozen
