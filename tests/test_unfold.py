"""im2col / col2im: torch's unfold/fold conventions and adjointness."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastconv
from fastconv import reference


@st.composite
def unfold_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 5))
                 for k, p, d in zip(kernel, padding, dilation))
    shape = (draw(st.integers(0, 3)), draw(st.integers(1, 3))) + size
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return shape, dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation), dtype


@settings(max_examples=100, deadline=None)
@given(unfold_configs())
def test_im2col_col2im_match_reference_and_are_adjoint(cfg):
    shape, kw, dtype = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    cols = fastconv.im2col(x, **kw)
    np.testing.assert_array_equal(cols, reference.im2col(x, **kw))  # a pure copy: exact
    c = rng.standard_normal(cols.shape).astype(dtype)
    folded = fastconv.col2im(c, shape[2:], **kw)
    np.testing.assert_allclose(folded, reference.col2im(c, shape[2:], **kw), rtol=1e-5, atol=1e-5)
    # <im2col(x), c> == <x, col2im(c)>
    lhs = np.sum(cols.astype(np.float64) * c)
    rhs = np.sum(x.astype(np.float64) * folded)
    assert lhs == pytest.approx(rhs, rel=1e-4, abs=1e-4)


def test_row_and_column_order_follow_torch_unfold():
    x = np.arange(2 * 4 * 5, dtype=np.float64).reshape(1, 2, 4, 5)
    cols = fastconv.im2col(x, (2, 3))
    assert cols.shape == (1, 2 * 2 * 3, 3 * 3)
    # row c*kH*kW + i*kW + j, column oh*OW + ow holds x[c, oh + i, ow + j]
    assert cols[0, 1 * 6 + 1 * 3 + 2, 1 * 3 + 2] == x[0, 1, 1 + 1, 2 + 2]


def test_matches_torch_unfold_fold_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 7))
    kw = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1))
    t = torch.nn.functional.unfold(torch.tensor(x), **kw).numpy()
    np.testing.assert_array_equal(fastconv.im2col(x, **kw), t)
    np.testing.assert_allclose(fastconv.col2im(t, (9, 7), **kw),
                               torch.nn.functional.fold(torch.tensor(t), (9, 7), **kw).numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: fastconv.col2im(np.zeros((1, 5, 9)), (5, 5), 3), r"cols.shape\[1\]=5"),
    (lambda: fastconv.col2im(np.zeros((1, 9, 8)), (5, 5), 3), r"cols.shape\[2\]=8"),
    (lambda: fastconv.col2im(np.zeros(9), (5, 5), 3), r"cols must be 3-D"),
    (lambda: fastconv.col2im(np.zeros((1, 9, 9)), (0, 5), 3), r"output_size"),
    (lambda: fastconv.im2col(np.zeros((1, 1, 2, 2)), 3), r"output would be empty"),
    (lambda: fastconv.im2col(np.zeros((1, 1, 5, 5)), 3, stride=0), r"stride"),
    (lambda: fastconv.im2col(np.zeros((5, 5)), 3), r"input must be 4-D"),
])
def test_unfold_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
