import torch

from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DConfig, Grid4DField, knot_blend
from a124_core.fields.static import FieldConfig, StaticField

SMALL = FieldConfig(grid=GridConfig(num_levels=3, base_resolution=4, finest_resolution=16, log2_entries_per_level=8))


def test_knot_blend_is_linear_time_interpolation():
    lower, w = knot_blend(torch.tensor([0.0, 0.5, 1.0, 0.26]), 5)
    assert lower.tolist() == [0, 2, 3, 1]
    assert torch.allclose(w, torch.tensor([0.0, 0.0, 1.0, 0.04]), atol=1e-6)


def test_init_from_static_reproduces_static_field_at_all_times():
    static = StaticField(SMALL)
    with torch.no_grad():
        static.encoder.embeddings.uniform_(-1, 1)
    dynamic = Grid4DField.from_static(static, num_knots=8, tv_points=256)
    x = torch.rand(100, 3) * 2 - 1
    expected = static(x)[0]
    for t in (0.0, 0.37, 1.0):
        assert torch.allclose(dynamic(x, t)[0], expected, atol=1e-5)
    assert torch.allclose(dynamic(x, torch.rand(100))[0], expected, atol=1e-5)


def test_scalar_and_per_point_times_agree():
    field = Grid4DField(Grid4DConfig(SMALL, num_knots=5))
    with torch.no_grad():
        field.embeddings.uniform_(-1, 1)
    x = torch.rand(50, 3) * 2 - 1
    for t in (0.0, 0.3, 0.999, 1.0):
        assert torch.allclose(field.features(x, t), field.features(x, torch.full((50,), t)), atol=1e-6)


def test_temporal_tv_zero_for_identical_knots_and_matches_finite_differences():
    field = Grid4DField(Grid4DConfig(SMALL, num_knots=4)).double()
    points = torch.rand(64, 3, dtype=torch.float64) * 2 - 1
    assert float(field.temporal_tv(points).detach()) == 0.0  # all knots start identical
    with torch.no_grad():
        field.embeddings.uniform_(-1, 1)
    tv = field.temporal_tv(points)
    assert float(tv.detach()) > 0
    tv.backward()
    grad = field.embeddings.grad
    flat_params = field.embeddings.data.view(-1)
    gen = torch.Generator().manual_seed(0)
    for i in torch.randint(0, flat_params.numel(), (12,), generator=gen).tolist():
        old = float(flat_params[i])
        flat_params[i] = old + 1e-6
        plus = float(field.temporal_tv(points).detach())
        flat_params[i] = old - 1e-6
        minus = float(field.temporal_tv(points).detach())
        flat_params[i] = old
        assert abs((plus - minus) / 2e-6 - float(grad.view(-1)[i])) < 1e-6


def test_temporal_tv_matches_eq2_written_per_knot():
    field = Grid4DField(Grid4DConfig(SMALL, num_knots=3)).double()
    with torch.no_grad():
        field.embeddings.uniform_(-1, 1)
    x = torch.rand(32, 3, dtype=torch.float64) * 2 - 1
    feats = [field.grid(x, field.embeddings[i]) for i in range(3)]
    expected = sum(((feats[i] - feats[i + 1]) ** 2).sum(-1) for i in range(2)).mean() / (2 * field.grid.output_dim)
    assert torch.allclose(field.temporal_tv(x), expected)


def test_parameter_groups_have_two_learning_rates():
    field = Grid4DField(Grid4DConfig(SMALL, num_knots=2))
    groups = {g["name"]: g for g in field.parameter_groups()}
    assert groups["grid"]["lr"] == 1e-2 and groups["mlp"]["lr"] == 1e-3
    assert groups["grid"]["params"][0] is field.embeddings
