"""fastconv.nn.fuse: the fused copy computes what the original computes in
eval mode, the original is untouched, and the copy refuses training."""
import numpy as np
import pytest

from fastconv import nn
from fastconv.bench import nets

F64 = np.float64


def _randomise_batch_norms(model, seed=0):
    """Running statistics and affine parameters far from the identity, so a
    fold that ignores any of them changes the output."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            c = m.num_features
            if m.track_running_stats:
                m.running_mean[...] = rng.standard_normal(c)
                m.running_var[...] = rng.uniform(0.2, 3.0, c)
            if m.affine:
                m.params["weight"][...] = rng.uniform(-2, 2, c)
                m.params["bias"][...] = rng.standard_normal(c)
    return model


def _eval_output(model, x):
    with nn.no_grad():
        return model.eval()(x)


def _types(model):
    return [type(m).__name__ for m in model.modules()]


@pytest.mark.parametrize("case", nets.QUICK_NET_CASES, ids=lambda c: c.name)
def test_fused_network_equals_the_original_in_eval(case):
    model = _randomise_batch_norms(case.build(F64, np.random.default_rng(1)))
    x = np.random.default_rng(2).standard_normal(case.x)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    want = _eval_output(model, x)
    fused = nn.fuse(model)
    got = _eval_output(fused, x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # fewer layers: every BatchNorm folded, every ReLU after a conv gone
    assert "BatchNorm2d" not in _types(fused)
    assert _types(fused).count("FusedConv") == _types(model).count("Conv2d")
    assert _types(fused).count("ReLU") < _types(model).count("ReLU")
    # the original: same parameters, buffers and layers, same output
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    assert "FusedConv" not in _types(model)
    np.testing.assert_array_equal(_eval_output(model, x), want)


def test_float32_fused_output_is_close():
    case = nets.QUICK_NET_CASES[2]   # MobileNet-style: depthwise and pointwise folds
    model = _randomise_batch_norms(case.build(np.float32, np.random.default_rng(1)))
    x = np.random.default_rng(2).standard_normal(case.x, dtype=np.float32)
    got, want = _eval_output(nn.fuse(model), x), _eval_output(model, x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("bias,affine,relu", [(True, True, True), (False, False, False),
                                              (False, True, True)])
def test_conv_batch_norm_relu_fold_every_rank(dims, bias, affine, relu):
    conv = getattr(nn, f"Conv{dims}d")(4, 6, 3, padding=1, bias=bias, dtype=F64, rng=0)
    norm = getattr(nn, f"BatchNorm{dims}d")(6, eps=0.3, affine=affine, dtype=F64)
    layers = [conv, norm] + ([nn.ReLU()] if relu else [])
    model = _randomise_batch_norms(nn.Sequential(*layers), seed=dims)
    x = np.random.default_rng(3).standard_normal((2, 4) + (5,) * dims)
    fused = nn.fuse(model)
    assert [type(m).__name__ for m in fused] == ["FusedConv"]
    assert fused[0].relu == relu
    np.testing.assert_allclose(_eval_output(fused, x), _eval_output(model, x),
                               rtol=1e-12, atol=1e-12)
    assert ("bias" in model[0].params) == bias    # the original conv keeps its form


def test_conv_relu_without_batch_norm_is_fused_in_place():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, dtype=F64, rng=0), nn.ReLU(),
                          nn.Conv2d(3, 3, 1, dtype=F64, rng=1))
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    fused = nn.fuse(model)
    assert [type(m).__name__ for m in fused] == ["FusedConv", "Conv2d"]
    np.testing.assert_array_equal(_eval_output(fused, x), _eval_output(model, x))


def test_fused_model_refuses_training():
    fused = nn.fuse(nets.QUICK_NET_CASES[1].build(F64, np.random.default_rng(0)))
    x = np.zeros(nets.QUICK_NET_CASES[1].x)
    fused.train()
    with pytest.raises(RuntimeError, match="inference only"):
        fused(x)
    fused.eval()
    y = fused(x)
    with pytest.raises(RuntimeError, match="inference only"):
        fused.backward(np.ones_like(y))


def test_what_cannot_be_folded_is_left_alone():
    shared = nn.Conv2d(3, 3, 3, padding=1, dtype=F64, rng=0)
    untracked = nn.BatchNorm2d(3, track_running_stats=False, dtype=F64)
    model = nn.Sequential(
        nn.Sequential(shared, nn.BatchNorm2d(3, dtype=F64)),   # conv used twice: no fold
        shared,
        nn.Conv2d(3, 3, 1, dtype=F64, rng=1), untracked,       # batch stats in eval too
        nn.Conv2d(3, 3, 1, dtype=F64, rng=2), nn.BatchNorm1d(3, dtype=F64))   # wrong rank
    _randomise_batch_norms(model)
    fused = nn.fuse(model)
    assert "FusedConv" not in _types(fused)
    assert _types(fused).count("BatchNorm2d") == 2


def test_fuse_keeps_dict_names_and_refuses_non_modules():
    model = nn.Sequential({"conv": nn.Conv2d(1, 2, 3, dtype=F64, rng=0),
                           "norm": nn.BatchNorm2d(2, dtype=F64), "act": nn.ReLU(),
                           "pool": nn.MaxPool2d(2)})
    assert list(nn.fuse(model)._modules) == ["conv", "pool"]
    assert list(nn.fuse(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten()))
                ._modules) == ["0", "1"]
    with pytest.raises(TypeError, match="fuse: model must be a fastconv.nn Module"):
        nn.fuse([nn.ReLU()])
