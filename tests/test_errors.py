"""Every bad-argument rule of the ops' docstrings raises the documented error,
naming the argument and the value."""
import subprocess
import sys

import numpy as np
import pytest

import fastconv

X = np.zeros((2, 4, 8, 8), np.float32)
W = np.zeros((6, 4, 3, 3), np.float32)
GY = np.zeros((2, 6, 6, 6), np.float32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input=np.zeros((8, 8), np.float32)),
     r"input must be 4-D \(N, C, H, W\) or 3-D unbatched \(C, H, W\), got shape \(8, 8\)"),
    (dict(weight=np.zeros((6, 4, 3), np.float32)), r"weight must be 4-D"),
    (dict(weight=np.zeros((6, 3, 3, 3), np.float32)), r"C_in=4"),
    (dict(weight=np.zeros((6, 2, 3, 3), np.float32), groups=3), r"C_in=4 not divisible by groups=3"),
    (dict(weight=np.zeros((5, 2, 3, 3), np.float32), groups=2), r"C_out=5 not divisible by groups=2"),
    (dict(groups=0), r"groups must be a positive int, got groups=0"),
    (dict(stride=0), r"stride must be positive, got stride=0"),
    (dict(stride=(1, -1)), r"stride must be positive, got stride=\(1, -1\)"),
    (dict(dilation=0), r"dilation must be positive"),
    (dict(padding=-1), r"padding must be non-negative, got padding=-1"),
    (dict(padding=(1, 2, 3)), r"padding must be an int or a tuple of 1 or 2 ints, got padding=\(1, 2, 3\)"),
    (dict(stride=()), r"stride must be an int or a tuple of 1 or 2 ints, got stride=\(\)"),
    (dict(padding="full"), r"padding must be 'same', 'valid', an int or a tuple, got padding='full'"),
    (dict(padding="same", stride=2), r"padding='same' needs stride 1"),
    (dict(weight=np.zeros((6, 4, 9, 9), np.float32)), r"output would be empty"),
    (dict(weight=np.zeros((6, 4, 3, 3), np.float32), dilation=4), r"output would be empty"),
    (dict(weight=np.zeros((6, 4, 0, 3), np.float32)), r"kernel size must be positive"),
    (dict(bias=np.zeros(5, np.float32)), r"bias must have shape \(6,\), got \(5,\)"),
])
def test_conv2d_value_errors(kwargs, match):
    args = dict(input=X, weight=W)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fastconv.conv2d(**args)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(input=X.astype(np.int32)), TypeError, r"input must have dtype float32 or float64, got dtype int32"),
    (dict(input=X.astype(bool)), TypeError, r"got dtype bool"),
    (dict(input=X.astype(np.complex64)), TypeError, r"got dtype complex64"),
    (dict(input=X.astype(object)), TypeError, r"got dtype object"),
    (dict(input=X.astype(np.float16)), TypeError, r"got dtype float16"),
    (dict(input="abc"), TypeError, r"got dtype <U3"),
    (dict(input=None), TypeError, r"input must be a float32 or float64 array, got None"),
    (dict(input=[[[[1, 2]]]]), TypeError, r"got dtype int64"),
    (dict(weight=W.astype(np.float64)), TypeError, r"weight has dtype float64 but input has dtype float32"),
    (dict(bias=np.zeros(6)), TypeError, r"bias has dtype float64 but input has dtype float32"),
    (dict(stride=1.5), TypeError, r"stride must be an int or a tuple of ints, got 1.5"),
    (dict(stride=True), TypeError, r"stride must be an int, got True"),
    (dict(groups=None), TypeError, r"groups must be an int"),
])
def test_conv2d_type_errors(kwargs, exc, match):
    args = dict(input=X, weight=W)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fastconv.conv2d(**args)


def test_numpy_integer_arguments_are_accepted():
    y = fastconv.conv2d(X, W, stride=np.int64(2), padding=(np.int32(1), 1))
    assert y.shape == (2, 6, 4, 4)


@pytest.mark.parametrize("gy, exc, match", [
    (np.zeros((2, 6, 6, 5), np.float32), ValueError, r"grad_output must have shape \(2, 6, 6, 6\), got \(2, 6, 6, 5\)"),
    (np.zeros((2, 6, 6), np.float32), ValueError, r"grad_output must have shape"),
    (GY.astype(np.float64), TypeError, r"grad_output has dtype float64 but input has dtype float32"),
    (GY.astype(np.int64), TypeError, r"grad_output must have dtype float32 or float64"),
])
def test_conv2d_backward_errors(gy, exc, match):
    with pytest.raises(exc, match=match):
        fastconv.conv2d_backward(gy, X, W)


@pytest.mark.parametrize("op, shape", [(fastconv.conv1d, (2, 4, 8)), (fastconv.conv3d, (2, 4, 3, 8, 8))])
def test_1d_3d_check_ndim(op, shape):
    with pytest.raises(ValueError, match=r"must be"):
        op(np.zeros(shape[:-2], np.float32), np.zeros((6, 4) + (1,) * (len(shape) - 2), np.float32))


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match="n must be a positive int, got n=0"):
        fastconv.set_num_threads(0)
    with pytest.raises(TypeError):
        fastconv.set_num_threads(1.5)


def test_show_config_reports_build(capsys):
    fastconv.show_config()
    out = capsys.readouterr().out
    for key in ("fastconv", "compiler", "flags", "openmp", "threads"):
        assert key in out
    assert fastconv.__version__ in out


def test_missing_extension_fails_loudly_with_a_fix():
    """No silent fallback when the compiled module is missing (CS231n's
    "print a hint and carry on" was its most reported confusion)."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'fastconv._kernels': raise ImportError('simulated missing build')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import fastconv\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "pip install ." in proc.stderr and "simulated missing build" in proc.stderr


@pytest.mark.parametrize("n", [100_000, 2**40])
def test_set_num_threads_rejects_absurd_counts(n):
    """Found by fuzzing: 100000 threads segfaulted libgomp, and 2**40 was
    accepted but made every later op raise OverflowError."""
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=f"n must be at most .*got n={n}"):
        fastconv.set_num_threads(n)
    assert fastconv.get_num_threads() == before
    assert fastconv.conv2d(X, W).shape == (2, 6, 6, 6)


def test_omp_num_threads_env_is_capped():
    code = "import fastconv; print(fastconv.get_num_threads())"
    env = dict(__import__("os").environ, OMP_NUM_THREADS="100000")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == fastconv._threads.machine_max_threads()


@pytest.mark.parametrize("call, exc, match", [
    # Found by fuzzing: NumPy's "Maximum allowed dimension exceeded" /
    # "array is too big" ValueErrors named no argument, and stride=2**70 hit an
    # OverflowError in the Cython bridge.
    (lambda: fastconv.conv2d(X, W, padding=2**40), MemoryError, r"conv2d: the output .* check padding=1099511627776"),
    (lambda: fastconv.conv2d(X, W, padding=10**6), MemoryError, r"more than this machine's memory.*padding=1000000"),
    (lambda: fastconv.conv2d(X, W, stride=2**70), ValueError, r"stride must be at most 2\*\*40"),
    (lambda: fastconv.conv2d(X, W, groups=2**70), ValueError, r"groups must be at most"),
    (lambda: fastconv.conv_transpose2d(X, W.transpose(1, 0, 2, 3), stride=2**40, output_padding=2**39),
     MemoryError, r"conv_transpose2d: the output .*output_padding="),
    (lambda: fastconv.im2col(X, 3, padding=10**6), MemoryError, r"im2col: the output .*padding=1000000"),
    (lambda: fastconv.col2im(np.zeros((1, 9, 1), np.float32), (2**39, 2**39), 3, stride=2**40),
     MemoryError, r"col2im: .*output_size="),
    # A ragged list raised NumPy's ValueError naming no argument.
    (lambda: fastconv.conv2d([[[[1.0]], [[1.0, 2.0]]]], W), TypeError, r"conv2d: input must be .* not convertible"),
])
def test_impossible_sizes_and_unconvertible_inputs_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("op, args", [
    (fastconv.conv2d_backward, (None, X, W)),
    (fastconv.conv_transpose2d_backward, (None, X, W.transpose(1, 0, 2, 3))),
])
def test_backward_with_grad_output_none_is_a_type_error(op, args):
    """Found by fuzzing: grad_output=None skipped validation and died with
    AttributeError: 'NoneType' object has no attribute 'shape'."""
    with pytest.raises(TypeError, match=r"grad_output must be a float32 or float64 array, got None"):
        op(*args)


@pytest.mark.parametrize("call, exc, match", [
    # Found by fuzzing the pooling ops: NumPy's "array is too big" /
    # "Maximum allowed dimension exceeded" named no argument.
    (lambda: fastconv.max_pool2d_backward(np.zeros((1, 1, 1, 1), np.float32),
                                          np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**40, 2**40)),
     MemoryError, r"max_pool2d_backward: the grad_input .* check input_shape="),
    (lambda: fastconv.max_pool2d_backward(np.zeros((1, 1, 1, 1), np.float32),
                                          np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**70, 2)),
     ValueError, r"input_shape entries must be at most 2\*\*40"),
    (lambda: fastconv.adaptive_avg_pool2d(X, 2**41), ValueError, r"output_size must be at most"),
    (lambda: fastconv.adaptive_avg_pool2d(X, 2**39), MemoryError, r"check output_size="),
    (lambda: fastconv.adaptive_avg_pool2d_backward(np.zeros((1, 1, 1, 1), np.float32),
                                                   (1, 1, 2**40, 2**40)),
     MemoryError, r"adaptive_avg_pool2d_backward: .*input_shape="),
])
def test_pooling_impossible_sizes_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
