import pytest
import torch

from a124_core.cameras import make_cameras
from a124_core.checkpoint import load_checkpoint, save_checkpoint
from a124_core.fields.deformation import DeformationConfig, DeformationField, active_levels
from a124_core.fields.deformation_losses import displacement_tv
from a124_core.fields.encoding import GridConfig
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rendering.renderer import RenderConfig, render_cameras
from a124_core.training.representations import REPRESENTATIONS

SMALL = FieldConfig(grid=GridConfig(num_levels=4, base_resolution=4, finest_resolution=32, log2_entries_per_level=12))
DEFORM = DeformationConfig(grid=HashGridConfig(num_levels=6, finest_resolution=32, log2_hashmap_size=12))


def _static(seed: int = 0) -> StaticField:
    torch.manual_seed(seed)
    field = StaticField(SMALL)
    with torch.no_grad():
        field.encoder.embeddings.uniform_(-1, 1)
    return field


def _constant_displacement(field: DeformationField, d: list[float]) -> torch.Tensor:
    """Set the MLP so that d(x, t) = d everywhere (last layer: zero weights, bias inverting 2 b tanh(o / 2))."""
    target = torch.tensor(d)
    with torch.no_grad():
        field.mlp[-1].bias.copy_(2 * torch.atanh(target / (2 * SMALL.grid.bound)))
    return target


def test_level_unmasking_schedule():
    c = DeformationConfig()
    assert [active_levels(s, c) for s in (-5, 0, 499, 500, 999, 1000, 3999, 4000, 10**6)] == [
        4,
        4,
        4,
        5,
        5,
        6,
        11,
        12,
        12,
    ]
    c2 = DeformationConfig(start_levels=2, levels_every=10)
    assert active_levels(25, c2) == 4


def test_masked_levels_give_zero_features_and_no_gradient():
    field = DeformationField(SMALL, DEFORM)
    with torch.no_grad():
        field.mlp[-1].weight.normal_()
        field.encoder.embeddings.uniform_(-1, 1)
    x, t = torch.rand(64, 3) * 2 - 1, torch.rand(64)
    field.set_progress(0)  # 4 of 6 levels
    assert int(field.levels) == 4
    before = field.displacement(x, t)
    rows = field.encoder.layout.offsets[4]  # rows of levels 4 and 5 start here
    with torch.no_grad():
        field.encoder.embeddings[rows:].uniform_(-5, 5)
    assert torch.equal(field.displacement(x, t), before)
    field.displacement(x, t).square().sum().backward()
    grad = field.encoder.embeddings.grad
    assert grad[rows:].abs().max() == 0 and grad[:rows].abs().max() > 0
    field.set_progress(1000)  # 4 + 2 levels: all of them
    assert not torch.equal(field.displacement(x, t), before)


def test_zero_init_is_the_canonical_scene_exactly():
    static = _static()
    field = DeformationField.from_static(static, DEFORM)
    x = torch.rand(256, 3) * 2.4 - 1.2  # also outside the box
    # Without autograd both sides take the same grid kernel; with it, positions that need a gradient take the
    # fused op's backward-ready path, which rounds the trilinear sum differently (1 ulp).
    with torch.no_grad():
        for t in (0.0, 0.7, torch.rand(256)):
            density, albedo = field(x, t)
            ref_density, ref_albedo = static(x)
            assert torch.equal(density, ref_density) and torch.equal(albedo, ref_albedo)
    for t in (0.0, torch.rand(256)):
        assert torch.allclose(field(x, t)[0], static(x)[0], rtol=1e-6, atol=0)
    cams = make_cameras(torch.tensor([80.0, 100.0]), torch.tensor([0.0, 120.0]))
    render = RenderConfig(num_samples=24, num_importance=8)
    with torch.no_grad():
        ours = render_cameras(field, cams, 12, 12, [0.0, 0.9], render, need_displacement=True)
        ref = render_cameras(static, cams, 12, 12, None, render)
    assert torch.equal(ours["rgb"], ref["rgb"]) and torch.equal(ours["depth"], ref["depth"])
    assert ours["displacement"].abs().max() == 0


def test_canonical_is_frozen_and_out_of_the_optimizer_unless_asked():
    field = DeformationField.from_static(_static(), DEFORM)
    names = [g["name"] for g in field.parameter_groups()]
    assert names == ["deformation_grid", "deformation_mlp"]
    assert all(not p.requires_grad for p in field.canonical.parameters())
    grouped = {id(p) for g in field.parameter_groups() for p in g["params"]}
    trainable = {id(p) for p in field.parameters() if p.requires_grad}
    assert grouped == trainable
    assert [g["lr"] for g in field.parameter_groups()] == [1e-3, 1e-3]
    field.set_train_canonical(True)
    assert field.deformation_config.train_canonical == "all"
    assert [g["name"] for g in field.parameter_groups()][2:] == ["canonical_grid", "canonical_mlp"]
    assert all(p.requires_grad for p in field.canonical.parameters())
    assert DeformationConfig.from_dict({"train_canonical": False}).train_canonical == "none"  # older scene files


def test_levels_are_never_masked_again():
    """A refine stage counts its steps from 0: the coarse run's levels must stay (issue 24)."""
    field = DeformationField(SMALL, DEFORM)
    field.set_progress(1000)
    assert int(field.levels) == 6
    field.set_progress(0)
    assert int(field.levels) == 6


def test_colour_mode_trains_the_albedo_and_keeps_the_shape():
    static = _static(4)
    field = DeformationField.from_static(static, DEFORM)
    with torch.no_grad():
        field.mlp[-1].weight.normal_(std=0.1)
    x, t = torch.rand(128, 3) * 2 - 1, torch.rand(128)
    density, albedo = field(x, t)
    field.set_train_canonical("colour")
    assert [g["name"] for g in field.parameter_groups()][2:] == ["canonical_grid", "canonical_mlp"]
    torch.testing.assert_close(field(x, t)[0], density, rtol=0, atol=0)
    torch.testing.assert_close(field(x, t)[1], albedo, rtol=0, atol=0)
    optimizer = torch.optim.Adam([p for g in field.parameter_groups() for p in g["params"]], lr=0.05)
    for _ in range(20):  # pull every colour to white: only the albedo may move
        optimizer.zero_grad()
        (field(x, t)[1] - 1).square().mean().backward()
        optimizer.step()
    new_density, new_albedo = field(x, t)
    assert torch.equal(field.canonical.density(x), static.density(x)), "the canonical shape is the static one"
    assert (new_albedo - 1).abs().mean() < 0.5 * (albedo - 1).abs().mean()
    shape = field.canonical.shape
    assert all(not p.requires_grad for p in shape.parameters())
    assert all(torch.equal(v, static.state_dict()[k]) for k, v in shape.state_dict().items())
    # a scene file of a colour-refined field loads back with both parts
    meta = REPRESENTATIONS["deformation"].metadata(field)
    loaded = REPRESENTATIONS["deformation"].from_metadata(SMALL, meta)
    loaded.load_state_dict(field.state_dict())
    assert torch.equal(loaded(x, t)[1], field(x, t)[1]) and torch.equal(loaded(x, t)[0], new_density)


def test_constant_displacement_shifts_the_scene_and_renders_as_opacity_times_d():
    static = _static(1)
    field = DeformationField.from_static(static, DEFORM)
    d = _constant_displacement(field, [0.1, -0.05, 0.2])
    x = torch.rand(128, 3) * 2 - 1
    assert torch.allclose(field.displacement(x, 0.3), d.expand(128, 3), atol=1e-6)
    density, _ = field(x, 0.3)
    assert torch.allclose(density, static.density(x + field.displacement(x, 0.3)))
    cams = make_cameras(torch.tensor([90.0]), torch.tensor([30.0]))
    out = render_cameras(
        field, cams, 10, 10, [0.3], RenderConfig(num_samples=16, num_importance=0), need_displacement=True
    )
    assert torch.allclose(out["displacement"], out["opacity"] * d, atol=1e-5)
    with pytest.raises(ValueError, match="forward_with_displacement"):
        render_cameras(static, cams, 4, 4, None, need_displacement=True)


def test_displacement_tv_zero_for_constant_and_exact_for_a_ramp():
    frames, height, width = 3, 4, 5
    assert displacement_tv(torch.full((frames, height, width, 3), 0.3)) == 0
    a, b, c, bound = 0.2, -0.1, 0.05, 0.5
    f, y, x = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    video = torch.stack([a * x.double(), b * y.double(), c * f.double()], -1)
    expected = (
        frames * height * (width - 1) * a**2
        + frames * (height - 1) * width * b**2
        + (frames - 1) * height * width * c**2
    ) / (2 * bound) ** 2
    assert displacement_tv(video, bound).item() == pytest.approx(expected, rel=1e-12)
    assert displacement_tv(video[None].expand(2, -1, -1, -1, -1), bound).item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"\[F, H, W, 3\]"):
        displacement_tv(torch.zeros(4, 4, 3))


def test_scene_tensors_and_metadata_round_trip(tmp_path):
    field = DeformationField.from_static(_static(2), DEFORM)
    with torch.no_grad():
        field.mlp[-1].weight.normal_(std=0.1)
    field.set_progress(700)
    representation = REPRESENTATIONS["deformation"]
    path = save_checkpoint(
        tmp_path / "scene.safetensors",
        {f"field/{k}": v for k, v in field.state_dict().items()},
        {"deformation": representation.metadata(field)},
    )
    tensors, stored = load_checkpoint(path)
    loaded = representation.from_metadata(SMALL, stored["deformation"])
    loaded.load_state_dict({k[len("field/") :]: v for k, v in tensors.items()})
    assert loaded.deformation_config == field.deformation_config and int(loaded.levels) == 5
    x, t = torch.rand(64, 3) * 2 - 1, torch.rand(64)
    assert torch.equal(loaded(x, t)[0], field(x, t)[0])
    with pytest.raises(ValueError, match="no fields"):
        DeformationConfig.from_dict({"grid": {"levels": 3}})


def test_bad_times_are_rejected():
    field = DeformationField(SMALL, DEFORM)
    x = torch.rand(8, 3)
    with pytest.raises(ValueError, match="needs a time"):
        field(x, None)
    with pytest.raises(ValueError, match="one entry per point"):
        field(x, torch.rand(3))
    with pytest.raises(ValueError, match="input_dims must be 4"):
        DeformationConfig(grid=HashGridConfig(input_dims=3))


def test_displacement_tv_of_a_rendered_clip_trains_only_the_deformation():
    field = DeformationField.from_static(_static(3), DEFORM)
    with torch.no_grad():
        field.mlp[-1].weight.normal_(std=0.1)
        field.encoder.embeddings.uniform_(-1, 1)
    field.set_progress(10**6)
    cams = make_cameras(torch.tensor([90.0, 90.0]), torch.tensor([10.0, 10.0]))
    out = render_cameras(
        field, cams, 8, 8, [0.2, 0.6], RenderConfig(num_samples=16, num_importance=0), need_displacement=True
    )
    assert out["displacement"].shape == (2, 8, 8, 3)
    loss = displacement_tv(out["displacement"], SMALL.grid.bound)
    loss.backward()
    assert loss > 0 and field.encoder.embeddings.grad.abs().max() > 0 and field.mlp[0].weight.grad.abs().max() > 0
    assert all(p.grad is None for p in field.canonical.parameters())
