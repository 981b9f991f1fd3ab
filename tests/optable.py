"""Every public op once: how to call it correctly on small inputs, and which of
its arguments are arrays or sizes.

The bad-input fuzzing (test_bad_input.py), the leak check (test_leaks.py) and
the thread checks (test_threads.py) iterate over OPS, so adding an op to the
library is one entry here.  test_optable_covers_every_public_op fails when an
op is exported without one.
"""
from dataclasses import dataclass, field

import numpy as np

import fastconv


@dataclass(frozen=True)
class Op:
    name: str
    # make(rng, dtype) -> kwargs of a valid call on small inputs (all arguments
    # passed by keyword, so a mutant can replace any one of them).
    make: callable
    arrays: tuple = ()          # names of array arguments
    optional_arrays: tuple = ()  # array arguments that may be None (bias)
    # size arguments: name -> (number of spatial dims, minimum value)
    sizes: dict = field(default_factory=dict)
    none_ok: tuple = ()          # size arguments for which None is valid
    none_entries_ok: tuple = ()  # size arguments whose tuple may hold None entries
    # PyTorch's forms: size arguments whose one-element tuple broadcasts over
    # the spatial dims, and those that take an empty tuple (pooling's stride).
    broadcast: tuple = ()
    empty_ok: tuple = ()
    # Arguments that carry the batch axis (arrays, or input_shape): an
    # unbatched call drops it from all of them, and from the results at
    # batched_results (None: every result).  () means no unbatched form.
    batched: tuple = ()
    batched_results: tuple = None
    # array arguments of any rank (PyTorch's (*, C, H, W) shuffles): the
    # "one axis fewer/more" mutants are valid calls for them
    any_rank: tuple = ()
    # array arguments for which a 0-d array is a valid call (elementwise ops,
    # as PyTorch's take a 0-d tensor)
    scalar_ok: tuple = ()
    # extra hand-written bad calls: (label, make_kwargs(rng, dtype) -> kwargs,
    # allowed exception types, substring the message must contain)
    extra: tuple = ()

    @property
    def fn(self):
        return getattr(fastconv, self.name)

    def call(self, kwargs):
        return self.fn(**kwargs)


# Spatial size of the small valid inputs: tiny in 3-D so that thousands of
# calls stay fast.
_SIZE = {1: 6, 2: 6, 3: 4}


def _r(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------- convolution
def _conv_kwargs(nd):
    def make(rng, dtype):
        return dict(input=_r(rng, (2, 4) + (_SIZE[nd],) * nd, dtype),
                    weight=_r(rng, (6, 2) + (3,) * nd, dtype),
                    bias=_r(rng, (6,), dtype), stride=1, padding=1, dilation=1, groups=2)
    return make


def _conv_backward_kwargs(nd):
    def make(rng, dtype):
        kw = _conv_kwargs(nd)(rng, dtype)
        del kw["bias"]
        kw["grad_output"] = _r(rng, (2, 6) + (_SIZE[nd],) * nd, dtype)
        return kw
    return make


def _shifted(key, axis, delta, make):
    """make() with kwargs[key]'s shape changed by `delta` along `axis`."""
    def bad(rng, dtype):
        kw = make(rng, dtype)
        shape = list(kw[key].shape)
        shape[axis] += delta
        kw[key] = _r(rng, tuple(shape), dtype)
        return kw
    return bad


def _with(make, **changes):
    def bad(rng, dtype):
        kw = make(rng, dtype)
        for k, v in changes.items():
            kw[k] = v(rng, dtype) if callable(v) else v
        return kw
    return bad


V, T, M = ValueError, TypeError, MemoryError


def _conv_ops(nd):
    fwd, bwd = _conv_kwargs(nd), _conv_backward_kwargs(nd)
    sizes = {"stride": (nd, 1), "padding": (nd, 0), "dilation": (nd, 1), "groups": (0, 1)}
    common = (
        ("weight C_in mismatch", _shifted("weight", 1, 1, fwd), (V,), "C_in"),
        ("C_out not divisible by groups", _shifted("weight", 0, 1, fwd), (V,), "groups"),
        ("groups does not divide C_in", _with(fwd, groups=3), (V,), "groups"),
        ("kernel larger than input", _shifted("weight", 2, 6, fwd), (V,), "empty"),
        ("zero-size kernel", _shifted("weight", -1, -3, fwd), (V,), "kernel"),
        ("padding unknown string", _with(fwd, padding="full"), (V,), "padding"),
        ("padding same with stride 2", _with(fwd, padding="same", stride=2), (V,), "padding"),
        ("huge padding", _with(fwd, padding=2**39), (M,), "padding"),
        ("dilation makes output empty", _with(fwd, dilation=4), (V,), "empty"),
    )
    fwd_extra = common + (
        ("bias of wrong length", _shifted("bias", 0, 1, fwd), (V,), "bias"),
        ("bias 2-D", _with(fwd, bias=lambda rng, dt: _r(rng, (6, 1), dt)), (V,), "bias"),
    )
    bwd_extra = tuple(
        (f"grad_output axis {a} {d:+d}", _shifted("grad_output", a, d, bwd), (V,), "grad_output")
        for a in range(nd + 2) for d in (-1, 1)) + (
        ("weight C_in mismatch", _shifted("weight", 1, 1, bwd), (V,), "C_in"),
        ("huge padding", _with(bwd, padding=2**39), (M,), "padding"),
    )
    arrays = ("input", "weight")
    forms = dict(broadcast=("stride", "padding", "dilation"))
    return [
        Op(f"conv{nd}d", fwd, arrays + ("bias",), ("bias",), sizes, extra=fwd_extra,
           batched=("input",), **forms),
        Op(f"conv{nd}d_backward", bwd, ("grad_output",) + arrays, (), sizes, extra=bwd_extra,
           batched=("grad_output", "input"), batched_results=(0,), **forms),
    ]


# ------------------------------------------------------- transposed convolution
def _convt_kwargs(nd):
    def make(rng, dtype):
        return dict(input=_r(rng, (2, 4) + (_SIZE[nd] - 1,) * nd, dtype),
                    weight=_r(rng, (4, 3) + (3,) * nd, dtype),
                    bias=_r(rng, (6,), dtype), stride=2, padding=1, output_padding=1,
                    groups=2, dilation=1)
    return make


def _convt_backward_kwargs(nd):
    def make(rng, dtype):
        kw = _convt_kwargs(nd)(rng, dtype)
        del kw["bias"]
        # (in - 1)*2 - 2*1 + (3 - 1) + 1 + 1 = 2*in
        kw["grad_output"] = _r(rng, (2, 6) + (2 * (_SIZE[nd] - 1),) * nd, dtype)
        return kw
    return make


def _convt_ops(nd):
    fwd, bwd = _convt_kwargs(nd), _convt_backward_kwargs(nd)
    sizes = {"stride": (nd, 1), "padding": (nd, 0), "output_padding": (nd, 0),
             "dilation": (nd, 1), "groups": (0, 1)}
    common = (
        ("weight C_in mismatch", _shifted("weight", 0, 1, fwd), (V,), "C_in"),
        ("groups does not divide C_in", _with(fwd, groups=3), (V,), "groups"),
        ("output_padding >= stride", _with(fwd, output_padding=2), (V,), "output_padding"),
        ("string padding", _with(fwd, padding="same"), (V,), "padding"),
        ("padding empties output", _with(fwd, padding=20, output_padding=0), (V,), "empty"),
        ("huge stride", _with(fwd, stride=2**39, output_padding=0), (M,), "stride"),
        ("zero-size kernel", _shifted("weight", -1, -3, fwd), (V,), "kernel"),
    )
    fwd_extra = common + (
        ("bias of wrong length", _shifted("bias", 0, -1, fwd), (V,), "bias"),
    )
    bwd_extra = tuple(
        (f"grad_output axis {a} {d:+d}", _shifted("grad_output", a, d, bwd), (V,), "grad_output")
        for a in range(nd + 2) for d in (-1, 1)) + (
        ("weight C_in mismatch", _shifted("weight", 0, 1, bwd), (V,), "C_in"),
    )
    forms = dict(broadcast=("stride", "padding", "output_padding", "dilation"))
    return [
        Op(f"conv_transpose{nd}d", fwd, ("input", "weight", "bias"), ("bias",), sizes,
           extra=fwd_extra, batched=("input",), **forms),
        Op(f"conv_transpose{nd}d_backward", bwd, ("grad_output", "input", "weight"), (), sizes,
           extra=bwd_extra, batched=("grad_output", "input"), batched_results=(0,), **forms),
    ]


# --------------------------------------------------------------- unfold / fold
def _im2col_kwargs(rng, dtype):
    return dict(input=_r(rng, (2, 3, 7, 7), dtype), kernel_size=3, stride=2, padding=1,
                dilation=1)


def _col2im_kwargs(rng, dtype):
    return dict(cols=_r(rng, (2, 27, 16), dtype), output_size=(7, 7), kernel_size=3,
                stride=2, padding=1, dilation=1)


_UNFOLD_SIZES = {"kernel_size": (2, 1), "stride": (2, 1), "padding": (2, 0),
                 "dilation": (2, 1)}

_UNFOLD_OPS = [
    Op("im2col", _im2col_kwargs, ("input",), (), _UNFOLD_SIZES, batched=("input",), extra=(
        ("kernel larger than input", _with(_im2col_kwargs, kernel_size=10), (V,), "empty"),
        ("huge padding", _with(_im2col_kwargs, padding=10**6), (M,), "padding"),
        ("huge kernel", _with(_im2col_kwargs, kernel_size=2**41), (V,), "kernel_size"),
    )),
    Op("col2im", _col2im_kwargs, ("cols",), (), dict(_UNFOLD_SIZES, output_size=(2, 1)),
       batched=("cols",), extra=(
        ("cols rows not multiple of taps", _shifted("cols", 1, 1, _col2im_kwargs), (V,), "cols"),
        ("cols L mismatch", _shifted("cols", 2, 1, _col2im_kwargs), (V,), "cols"),
        ("output_size too small", _with(_col2im_kwargs, output_size=(2, 2)), (V,), "cols"),
        ("huge output_size", _with(_col2im_kwargs, output_size=(2**20, 2**20),
                                   kernel_size=1, stride=2**20, padding=0,
                                   cols=lambda rng, dt: _r(rng, (1, 1, 1), dt)),
         (M,), "output_size"),
    )),
]

# -------------------------------------------------------------------- pooling
def _pool_input(rng, nd, dtype):
    return _r(rng, (2, 3) + (_SIZE[nd],) * nd, dtype)


def _max_pool_kwargs(nd):
    def make(rng, dtype):
        return dict(input=_pool_input(rng, nd, dtype), kernel_size=3, stride=2, padding=1,
                    dilation=1, ceil_mode=True, return_indices=True)
    return make


def _max_pool_backward_kwargs(nd):
    def make(rng, dtype):
        x = _pool_input(rng, nd, dtype)
        y, idx = getattr(fastconv, f"max_pool{nd}d")(x, 3, 2, 1, 1, True, True)
        return dict(grad_output=_r(rng, y.shape, dtype), indices=idx, input_shape=x.shape)
    return make


def _avg_pool_kwargs(nd):
    def make(rng, dtype):
        return dict(input=_pool_input(rng, nd, dtype), kernel_size=3, stride=2, padding=1,
                    ceil_mode=True, count_include_pad=False, divisor_override=None)
    return make


def _avg_pool_backward_kwargs(nd):
    def make(rng, dtype):
        kw = _avg_pool_kwargs(nd)(rng, dtype)
        x = kw.pop("input")
        y = getattr(fastconv, f"avg_pool{nd}d")(x, **kw)
        return dict(grad_output=_r(rng, y.shape, dtype), input_shape=x.shape, **kw)
    return make


def _indices_with(value):
    def fn(rng, dtype, value=value):
        return value(rng, dtype) if callable(value) else value
    return fn


def _pool_ops(nd):
    mp, mpb = _max_pool_kwargs(nd), _max_pool_backward_kwargs(nd)
    ap, apb = _avg_pool_kwargs(nd), _avg_pool_backward_kwargs(nd)
    win = {"kernel_size": (nd, 1), "stride": (nd, 1), "padding": (nd, 0)}
    window_extra = lambda make: (  # noqa: E731
        ("padding > kernel_size // 2", _with(make, padding=2), (V,), "padding"),
        ("kernel larger than input", _with(make, kernel_size=9, padding=0), (V,), "empty"),
        ("ceil_mode a string", _with(make, ceil_mode="yes"), (T,), "ceil_mode"),
    )
    shape_extra = lambda make, huge="input_shape": (  # noqa: E731
        ("input_shape too short", _with(make, input_shape=(2, 3)), (V,), "input_shape"),
        ("input_shape negative", _with(make, input_shape=(2, 3) + (-1,) * nd), (V,), "input_shape"),
        ("input_shape floats", _with(make, input_shape=(2.0, 3.0) + (6.0,) * nd), (T,), "input_shape"),
        ("input_shape None", _with(make, input_shape=None), (V, T), "input_shape"),
        ("input_shape huge", _with(make, input_shape=(2, 3) + (2**40,) * nd), (M, V), huge),
        ("input_shape 2**70", _with(make, input_shape=(2, 3) + (2**70,) * nd), (M, V), huge),
    )

    def idx(rng, dtype, how):
        kw = mpb(rng, dtype)
        i = kw["indices"]
        kw["indices"] = how(i)
        return kw

    max_backward_extra = tuple(
        (f"indices {label}", lambda rng, dtype, how=how: idx(rng, dtype, how), exc, "indices")
        for label, how, exc in (
            ("int32", lambda i: i.astype(np.int32), (T,)),
            ("float64", lambda i: i.astype(np.float64), (T,)),
            ("None", lambda i: None, (T, V)),
            ("-1", lambda i: np.full_like(i, -1), (V,)),
            ("== plane size", lambda i: np.full_like(i, _SIZE[nd] ** nd), (V,)),
            ("2**62", lambda i: np.full_like(i, 2**62), (V,)),
            ("-2**63", lambda i: np.full_like(i, -2**63), (V,)),
            ("wrong shape", lambda i: i[..., :1], (V,)),
            ("Fortran order", lambda i: np.asfortranarray(i) * 0 - 5, (V,)),
        )) + shape_extra(mpb) + (
        ("grad_output batch mismatch", _shifted("grad_output", 0, 1, mpb), (V,), "grad_output"),
    )
    forms = dict(broadcast=("kernel_size", "stride", "padding", "dilation"),
                 empty_ok=("stride",))
    return [
        Op(f"max_pool{nd}d", mp, ("input",), (), dict(win, dilation=(nd, 1)), none_ok=("stride",),
           batched=("input",), **forms,
           extra=window_extra(mp) + (
               ("return_indices 2", _with(mp, return_indices=2), (T,), "return_indices"),)),
        Op(f"max_pool{nd}d_backward", mpb, ("grad_output",), (), {}, extra=max_backward_extra,
           batched=("grad_output", "indices", "input_shape")),
        Op(f"avg_pool{nd}d", ap, ("input",), (), win, none_ok=("stride",), batched=("input",),
           **forms, extra=window_extra(ap) + (
               ("divisor_override 0", _with(ap, divisor_override=0), (V,), "divisor_override"),
               ("divisor_override 1.5", _with(ap, divisor_override=1.5), (T,), "divisor_override"),
               ("count_include_pad None", _with(ap, count_include_pad=None), (T,), "count_include_pad"),
           )),
        Op(f"avg_pool{nd}d_backward", apb, ("grad_output",), (), win, none_ok=("stride",),
           batched=("grad_output", "input_shape"), **forms,
           # A huge input_shape first shows as a grad_output of the wrong shape.
           extra=window_extra(apb) + shape_extra(apb, huge="shape") + tuple(
               (f"grad_output axis {a} {d:+d}", _shifted("grad_output", a, d, apb), (V,),
                "grad_output") for a in range(nd + 2) for d in (-1, 1))),
    ]


_ADAPTIVE_OUT = {1: (4,), 2: (4, 3), 3: (3, 2, 3)}


def _adaptive_kwargs(nd):
    def make(rng, dtype):
        return dict(input=_pool_input(rng, nd, dtype), output_size=_ADAPTIVE_OUT[nd])
    return make


def _adaptive_backward_kwargs(nd):
    def make(rng, dtype):
        return dict(grad_output=_r(rng, (2, 3) + _ADAPTIVE_OUT[nd], dtype),
                    input_shape=(2, 3) + (_SIZE[nd],) * nd)
    return make


def _adaptive_max_kwargs(nd):
    def make(rng, dtype):
        return dict(_adaptive_kwargs(nd)(rng, dtype), return_indices=True)
    return make


def _adaptive_max_backward_kwargs(nd):
    def make(rng, dtype):
        x = _pool_input(rng, nd, dtype)
        y, idx = getattr(fastconv, f"adaptive_max_pool{nd}d")(x, _ADAPTIVE_OUT[nd], True)
        return dict(grad_output=_r(rng, y.shape, dtype), indices=idx, input_shape=x.shape)
    return make


def _adaptive_ops(nd):
    avg, avg_b = _adaptive_kwargs(nd), _adaptive_backward_kwargs(nd)
    mx, mx_b = _adaptive_max_kwargs(nd), _adaptive_max_backward_kwargs(nd)
    out = {"output_size": (nd, 1)}
    forward_extra = lambda make: (  # noqa: E731
        ("huge output_size", _with(make, output_size=2**39), (M, V), "output_size"),
        ("empty input plane", _with(make, input=lambda rng, dt: _r(rng, (2, 3) + (0,) * nd, dt)),
         (V,), "input"),
    )
    shape_extra = lambda make: (  # noqa: E731
        ("input_shape too short", _with(make, input_shape=(2, 3)), (V,), "input_shape"),
        ("batch mismatch", _shifted("grad_output", 0, 1, make), (V,), "grad_output"),
        ("input_shape huge", _with(make, input_shape=(2, 3) + (2**40,) * nd), (M, V),
         "input_shape"),
        ("input_shape 2**70", _with(make, input_shape=(2, 3) + (2**70,) * nd), (M, V),
         "input_shape"),
    )

    def idx(how):
        def make(rng, dtype):
            kw = mx_b(rng, dtype)
            kw["indices"] = how(kw["indices"])
            return kw
        return make
    index_extra = (
        ("indices int32", idx(lambda i: i.astype(np.int32)), (T,), "indices"),
        ("indices -1", idx(lambda i: np.full_like(i, -1)), (V,), "indices"),
        ("indices == plane size", idx(lambda i: np.full_like(i, _SIZE[nd] ** nd)), (V,),
         "indices"),
        ("indices wrong shape", idx(lambda i: i[..., :1]), (V,), "indices"),
    )
    return [
        Op(f"adaptive_avg_pool{nd}d", avg, ("input",), (), out,
           none_entries_ok=("output_size",), batched=("input",), extra=forward_extra(avg)),
        Op(f"adaptive_avg_pool{nd}d_backward", avg_b, ("grad_output",), (), {},
           batched=("grad_output", "input_shape"), extra=shape_extra(avg_b)),
        Op(f"adaptive_max_pool{nd}d", mx, ("input",), (), out,
           none_entries_ok=("output_size",), batched=("input",), extra=forward_extra(mx) + (
               ("return_indices 2", _with(mx, return_indices=2), (T,), "return_indices"),)),
        Op(f"adaptive_max_pool{nd}d_backward", mx_b, ("grad_output",), (), {},
           batched=("grad_output", "indices", "input_shape"),
           extra=shape_extra(mx_b) + index_extra),
    ]


# Pooling lands separately: its entries switch on with it.
_HAS_POOLING = hasattr(fastconv, "max_pool2d")
_POOL_OPS = (_pool_ops(1) + _pool_ops(2) + _pool_ops(3) + _adaptive_ops(1) + _adaptive_ops(2)
             + _adaptive_ops(3)) if _HAS_POOLING else []

# -------------------------------------------------------------- interpolation
def _interpolate_kwargs(rng, dtype):
    return dict(input=_r(rng, (2, 3, 5, 4), dtype), size=(7, 6), scale_factor=None,
                mode="bilinear", align_corners=False)


def _interpolate_backward_kwargs(rng, dtype):
    return dict(grad_output=_r(rng, (2, 3, 7, 6), dtype), input_shape=(2, 3, 5, 4),
                size=(7, 6), scale_factor=None, mode="bilinear", align_corners=True)


def _interpolate_extra(make):
    return (
        ("size and scale_factor", _with(make, scale_factor=2.0), (V,), "scale_factor"),
        ("neither size nor scale_factor", _with(make, size=None), (V,), "scale_factor"),
        ("scale_factor negative", _with(make, size=None, scale_factor=-2.0), (V,),
         "scale_factor"),
        ("scale_factor nan", _with(make, size=None, scale_factor=float("nan")), (V,),
         "scale_factor"),
        ("scale_factor too short", _with(make, size=None, scale_factor=(2.0,)), (V,),
         "scale_factor"),
        ("scale_factor string", _with(make, size=None, scale_factor="2"), (T,), "scale_factor"),
        ("scale_factor empties output", _with(make, size=None, scale_factor=0.1), (V,),
         "scale_factor"),
        ("scale_factor huge", _with(make, size=None, scale_factor=1e30), (V, M), "scale_factor"),
        ("mode unknown", _with(make, mode="bicubic"), (V,), "mode"),
        ("mode None", _with(make, mode=None), (V,), "mode"),
        ("mode for another rank", _with(make, mode="trilinear"), (V,), "mode"),
        ("align_corners with nearest", _with(make, mode="nearest"), (V,), "align_corners"),
        ("align_corners a string", _with(make, align_corners="yes"), (T,), "align_corners"),
    )


_INTERPOLATE_OPS = [
    Op("interpolate", _interpolate_kwargs, ("input",), (), {"size": (2, 1)}, none_ok=("size",),
       extra=_interpolate_extra(_interpolate_kwargs) + (
           ("size huge", _with(_interpolate_kwargs, size=(2**39, 2**39)), (M,), "size"),)),
    Op("interpolate_backward", _interpolate_backward_kwargs, ("grad_output",), (),
       {"size": (2, 1)}, none_ok=("size",),
       extra=_interpolate_extra(_interpolate_backward_kwargs) + tuple(
           (f"grad_output axis {a} {d:+d}", _shifted("grad_output", a, d,
                                                     _interpolate_backward_kwargs),
            (V,), "grad_output") for a in range(4) for d in (-1, 1)) + (
           ("input_shape too short", _with(_interpolate_backward_kwargs, input_shape=(2, 3)),
            (V,), "input_shape"),
           ("input_shape negative", _with(_interpolate_backward_kwargs,
                                          input_shape=(2, 3, -5, 4)), (V,), "input_shape"),
           ("input_shape floats", _with(_interpolate_backward_kwargs,
                                        input_shape=(2.0, 3.0, 5.0, 4.0)), (T,), "input_shape"),
       )),
]

# ----------------------------------------------------- deformable convolution
def _deform_kwargs(rng, dtype):
    # C_in 4 in 2 weight groups, 2 offset groups, 3x3 taps, 6x6 -> 6x6
    return dict(input=_r(rng, (2, 4, 6, 6), dtype), offset=_r(rng, (2, 36, 6, 6), dtype),
                weight=_r(rng, (6, 2, 3, 3), dtype), bias=_r(rng, (6,), dtype), stride=1,
                padding=1, dilation=1, mask=_r(rng, (2, 18, 6, 6), dtype))


def _deform_backward_kwargs(rng, dtype):
    kw = _deform_kwargs(rng, dtype)
    del kw["bias"]
    return dict(grad_output=_r(rng, (2, 6, 6, 6), dtype), **kw)


def _deform_extra(make):
    return (
        ("offset channels not 2*taps*k", _shifted("offset", 1, 1, make), (V,), "offset"),
        ("offset groups not dividing C_in",
         _with(make, offset=lambda rng, dt: _r(rng, (2, 54, 6, 6), dt)), (V,), "offset"),
        ("offset spatial mismatch", _shifted("offset", 3, 1, make), (V,), "offset"),
        ("mask channels", _shifted("mask", 1, 1, make), (V,), "mask"),
        ("mask spatial", _shifted("mask", 2, -1, make), (V,), "mask"),
        ("weight C_in mismatch", _shifted("weight", 1, 1, make), (V,), "weight"),
        ("kernel larger than input", _with(make, padding=0, dilation=4), (V,), "empty"),
        ("padding a string", _with(make, padding="same"), (V,), "padding"),
    )


_DEFORM_SIZES = {"stride": (2, 1), "padding": (2, 0), "dilation": (2, 1)}
_DEFORM_OPS = [
    Op("deform_conv2d", _deform_kwargs, ("input", "offset", "weight", "bias", "mask"),
       ("bias", "mask"), _DEFORM_SIZES, extra=_deform_extra(_deform_kwargs) + (
           ("bias of wrong length", _shifted("bias", 0, 1, _deform_kwargs), (V,), "bias"),)),
    Op("deform_conv2d_backward", _deform_backward_kwargs,
       ("grad_output", "input", "offset", "weight", "mask"), ("mask",), _DEFORM_SIZES,
       extra=_deform_extra(_deform_backward_kwargs) + tuple(
           (f"grad_output axis {a} {d:+d}", _shifted("grad_output", a, d,
                                                     _deform_backward_kwargs),
            (V,), "grad_output") for a in range(4) for d in (-1, 1))),
]

# -------------------------------------------------------------------- shuffles
def _shuffle_op(name, shape, factor_name, factor, bad_shape):
    def make(rng, dtype):
        return {"grad_output" if name.endswith("_backward") else "input": _r(rng, shape, dtype),
                factor_name: factor}
    array = "grad_output" if name.endswith("_backward") else "input"
    return Op(name, make, (array,), (), {factor_name: (0, 1)}, any_rank=(array,), extra=(
        ("indivisible shape", _with(make, **{array: lambda rng, dt: _r(rng, bad_shape, dt)}),
         (V,), factor_name),
        ("2-D array", _with(make, **{array: lambda rng, dt: _r(rng, shape[-2:], dt)}),
         (V,), array),
    ))


_SHUFFLE_OPS = [
    _shuffle_op("pixel_shuffle", (2, 8, 3, 4), "upscale_factor", 2, (2, 6, 3, 4)),
    _shuffle_op("pixel_shuffle_backward", (2, 2, 6, 8), "upscale_factor", 2, (2, 2, 5, 8)),
    _shuffle_op("pixel_unshuffle", (2, 3, 4, 6), "downscale_factor", 2, (2, 3, 4, 5)),
    _shuffle_op("pixel_unshuffle_backward", (2, 8, 2, 3), "downscale_factor", 2, (2, 6, 2, 3)),
    _shuffle_op("channel_shuffle", (2, 6, 3, 3), "groups", 3, (2, 5, 3, 3)),
    _shuffle_op("channel_shuffle_backward", (2, 6, 3, 3), "groups", 3, (2, 5, 3, 3)),
]

# --------------------------------------------------------- batch normalisation
def _bn_kwargs(rng, dtype):
    # eval mode: the valid call modifies nothing (training updates the running
    # statistics in place, which the harness would report as a modified input)
    return dict(input=_r(rng, (2, 4, 3, 3), dtype), running_mean=_r(rng, (4,), dtype),
                running_var=rng.random(4).astype(dtype) + 0.5, weight=_r(rng, (4,), dtype),
                bias=_r(rng, (4,), dtype), training=False, momentum=0.1, eps=1e-5)


def _bn_backward_kwargs(rng, dtype):
    kw = _bn_kwargs(rng, dtype)
    del kw["bias"], kw["momentum"]
    return dict(grad_output=_r(rng, (2, 4, 3, 3), dtype), **kw)


def _bn_relu_backward_kwargs(rng, dtype):
    kw = _bn_backward_kwargs(rng, dtype)
    return dict(grad_output=kw.pop("grad_output"), output=np.abs(_r(rng, (2, 4, 3, 3), dtype)),
                **kw)


def _read_only(rng, dtype):
    v = np.zeros(4, dtype)
    v.flags.writeable = False
    return v


def _bn_one_value(make):
    """make() in training on (1, C, 1, 1) arrays: one value per channel."""
    def bad(rng, dtype):
        kw = make(rng, dtype)
        kw["training"] = True
        for key in ("input", "grad_output", "output"):
            if key in kw:
                kw[key] = _r(rng, (1, 4, 1, 1), dtype)
        return kw
    return bad


def _bn_extra(make):
    return (
        ("weight of wrong length", _shifted("weight", 0, 1, make), (V,), "weight"),
        ("running_var of wrong length", _shifted("running_var", 0, -1, make), (V,),
         "running_var"),
        ("only running_var", _with(make, running_mean=None), (V,), "running_mean"),
        ("no running stats in eval", _with(make, running_mean=None, running_var=None), (V,),
         "running_mean"),
        ("input 1-D", _with(make, input=lambda rng, dt: _r(rng, (4,), dt)), (V,), "input"),
        ("input 6-D", _with(make, input=lambda rng, dt: _r(rng, (2, 4, 1, 1, 1, 1), dt)),
         (V,), "input"),
        ("one value per channel in training", _bn_one_value(make), (V,), "per channel"),
        ("training an int", _with(make, training=1), (T,), "training"),
        ("training a string", _with(make, training="True"), (T,), "training"),
        ("eps negative", _with(make, eps=-1e-5), (V,), "eps"),
        ("eps NaN", _with(make, eps=float("nan")), (V,), "eps"),
        ("eps a string", _with(make, eps="1e-5"), (T,), "eps"),
    )


_BN_OPS = [
    Op("batch_norm", _bn_kwargs, ("input", "running_mean", "running_var", "weight", "bias"),
       ("running_mean", "running_var", "weight", "bias"), any_rank=("input",),
       extra=_bn_extra(_bn_kwargs) + (
           ("bias of wrong length", _shifted("bias", 0, 1, _bn_kwargs), (V,), "bias"),
           ("momentum inf", _with(_bn_kwargs, momentum=float("inf")), (V,), "momentum"),
           ("momentum None", _with(_bn_kwargs, momentum=None), (T,), "momentum"),
           ("running_mean a list in training",
            _with(_bn_kwargs, training=True, running_mean=[0.0] * 4), (T,), "running_mean"),
           ("running_var read-only in training",
            _with(_bn_kwargs, training=True, running_var=_read_only), (V,), "running_var"),
       )),
    Op("batch_norm_backward", _bn_backward_kwargs,
       ("grad_output", "input", "running_mean", "running_var", "weight"),
       ("running_mean", "running_var", "weight"), any_rank=("input", "grad_output"),
       extra=_bn_extra(_bn_backward_kwargs) + tuple(
           (f"grad_output axis {a} {d:+d}", _shifted("grad_output", a, d, _bn_backward_kwargs),
            (V,), "grad_output") for a in range(4) for d in (-1, 1))),
    # the fused BatchNorm+ReLU: batch_norm's arguments and checks
    Op("batch_norm_relu", _bn_kwargs, ("input", "running_mean", "running_var", "weight", "bias"),
       ("running_mean", "running_var", "weight", "bias"), any_rank=("input",),
       extra=_bn_extra(_bn_kwargs) + (
           ("momentum inf", _with(_bn_kwargs, momentum=float("inf")), (V,), "momentum"),
           ("running_var read-only in training",
            _with(_bn_kwargs, training=True, running_var=_read_only), (V,), "running_var"),
       )),
    Op("batch_norm_relu_backward", _bn_relu_backward_kwargs,
       ("grad_output", "output", "input", "running_mean", "running_var", "weight"),
       ("running_mean", "running_var", "weight"), any_rank=("input", "grad_output", "output"),
       extra=_bn_extra(_bn_relu_backward_kwargs) + tuple(
           (f"{name} axis {a} {d:+d}", _shifted(name, a, d, _bn_relu_backward_kwargs), (V,),
            name) for name in ("grad_output", "output") for a in range(4) for d in (-1, 1))),
]


# ---------------------------------------------------- activations and losses
def _act_op(name, extra_kwargs=None, saved=None, inplace=False, bad=()):
    """An elementwise op (any rank, 0-d included) or its backward (two arrays
    of one shape: grad_output and `saved`)."""
    extra_kwargs = extra_kwargs or {}

    def make(rng, dtype):
        if saved is None:
            kw = dict(input=_r(rng, (2, 3, 5), dtype), **extra_kwargs)
            if inplace:
                kw["inplace"] = False
            return kw
        return dict(grad_output=_r(rng, (2, 3, 5), dtype), **{saved: _r(rng, (2, 3, 5), dtype)},
                    **extra_kwargs)
    arrays = ("input",) if saved is None else ("grad_output", saved)
    extra = tuple((label, _with(make, **{k: v}), exc, k) for label, k, v, exc in bad)
    if inplace:
        extra += (("inplace 1", _with(make, inplace=1), (T,), "inplace"),
                  ("inplace on a list", _with(make, inplace=True,
                                              input=lambda rng, dt: [1.0, -2.0]),
                   (T,), "inplace"),
                  ("inplace read-only", _with(make, inplace=True,
                                              input=lambda rng, dt: np.broadcast_to(
                                                  np.ones(1, dt), (3, 2))), (V,), "read-only"))
    if saved is not None:
        extra += (("shapes differ", _shifted(saved, 2, 1, make), (V,), "shape"),)
    return Op(name, make, arrays, (), {}, any_rank=arrays if saved is None else (),
              scalar_ok=arrays, extra=extra)


_SLOPE_BAD = lambda key: (("nan", key, float("nan"), (V,)), ("string", key, "x", (T,)),
                          ("bool", key, True, (T,)))
_APPROX_BAD = (("unknown", "approximate", "erf", (V,)), ("None", "approximate", None, (V,)))


def _prelu_kwargs(rng, dtype):
    return dict(input=_r(rng, (2, 3, 4), dtype), weight=_r(rng, (3,), dtype))


def _prelu_backward_kwargs(rng, dtype):
    return dict(grad_output=_r(rng, (2, 3, 4), dtype), **_prelu_kwargs(rng, dtype))


def _softmax_op(name, backward):
    def make(rng, dtype):
        if backward:
            return dict(grad_output=_r(rng, (2, 3, 4), dtype), output=_r(rng, (2, 3, 4), dtype),
                        dim=1)
        return dict(input=_r(rng, (2, 3, 4), dtype), dim=1)
    arrays = ("grad_output", "output") if backward else ("input",)
    extra = (("dim out of range", _with(make, dim=3), (V,), "dim"),
             ("dim -4", _with(make, dim=-4), (V,), "dim"),
             ("dim float", _with(make, dim=1.0), (T,), "dim"),
             ("dim None", _with(make, dim=None), (T,), "dim"))
    if backward:
        extra += (("shapes differ", _shifted("output", 2, 1, make), (V,), "shape"),)
    return Op(name, make, arrays, (), {}, any_rank=() if backward else arrays,
              scalar_ok=arrays, extra=extra)


def _ce_kwargs(rng, dtype):
    target = rng.integers(0, 3, (2, 4))
    target[0, 1] = -100
    return dict(input=_r(rng, (2, 3, 4), dtype), target=target,
                weight=rng.uniform(0.5, 2, 3).astype(dtype), reduction="mean",
                label_smoothing=0.1)


def _ce_backward_kwargs(rng, dtype):
    return dict(grad_output=1.5, **_ce_kwargs(rng, dtype))


def _ce_extra(make):
    return (
        ("target float", _with(make, target=lambda rng, dt: np.zeros((2, 4), dt)), (T,),
         "target"),
        ("target bool", _with(make, target=lambda rng, dt: np.zeros((2, 4), bool)), (T,),
         "target"),
        ("target None", _with(make, target=None), (T,), "target"),
        ("target shape", _with(make, target=lambda rng, dt: np.zeros((2, 3), np.int64)),
         (V,), "target"),
        ("label too large", _with(make, target=lambda rng, dt: np.full((2, 4), 3)), (V,),
         "labels"),
        ("label negative", _with(make, target=lambda rng, dt: np.full((2, 4), -1)), (V,),
         "labels"),
        ("weight length", _with(make, weight=lambda rng, dt: np.ones(4, dt)), (V,), "weight"),
        ("reduction unknown", _with(make, reduction="avg"), (V,), "reduction"),
        ("label_smoothing 1.5", _with(make, label_smoothing=1.5), (V,), "label_smoothing"),
        ("label_smoothing str", _with(make, label_smoothing="0"), (T,), "label_smoothing"),
        ("ignore_index float", _with(make, ignore_index=1.5), (T,), "ignore_index"),
    )


_ACTIVATION_OPS = [
    _act_op("relu", inplace=True),
    _act_op("relu_backward", saved="output"),
    _act_op("leaky_relu", {"negative_slope": 0.1}, inplace=True,
            bad=_SLOPE_BAD("negative_slope")),
    _act_op("leaky_relu_backward", {"negative_slope": 0.1}, saved="input",
            bad=_SLOPE_BAD("negative_slope")),
    _act_op("elu", {"alpha": 0.5}, inplace=True, bad=_SLOPE_BAD("alpha")),
    _act_op("elu_backward", {"alpha": 0.5}, saved="input", bad=_SLOPE_BAD("alpha")),
    _act_op("gelu", {"approximate": "tanh"}, bad=_APPROX_BAD),
    _act_op("gelu_backward", {"approximate": "tanh"}, saved="input", bad=_APPROX_BAD),
    _act_op("silu", inplace=True),
    _act_op("silu_backward", saved="input"),
    _act_op("sigmoid"),
    _act_op("sigmoid_backward", saved="output"),
    _act_op("tanh"),
    _act_op("tanh_backward", saved="output"),
    # weight: one slope (0-d or (1,)) or one per channel; never 2-D
    Op("prelu", _prelu_kwargs, ("input", "weight"), (), {}, any_rank=("input", "weight"),
       scalar_ok=("input", "weight"), extra=(
           ("weight length", _shifted("weight", 0, 1, _prelu_kwargs), (V,), "weight"),
           ("weight 2-D", _with(_prelu_kwargs, weight=lambda rng, dt: np.ones((3, 1), dt)),
            (V,), "weight"))),
    Op("prelu_backward", _prelu_backward_kwargs, ("grad_output", "input", "weight"), (), {},
       any_rank=("weight",), scalar_ok=("weight",), extra=(
           ("weight length", _shifted("weight", 0, 1, _prelu_backward_kwargs), (V,), "weight"),
           ("grad_output shape", _shifted("grad_output", 2, 1, _prelu_backward_kwargs), (V,),
            "grad_output"))),
    _softmax_op("softmax", False),
    _softmax_op("softmax_backward", True),
    _softmax_op("log_softmax", False),
    _softmax_op("log_softmax_backward", True),
    Op("cross_entropy", _ce_kwargs, ("input", "weight"), ("weight",), {},
       extra=_ce_extra(_ce_kwargs)),
    Op("cross_entropy_backward", _ce_backward_kwargs, ("input", "weight"), ("weight",), {},
       extra=_ce_extra(_ce_backward_kwargs) + (
           ("grad_output array for mean",
            _with(_ce_backward_kwargs, grad_output=lambda rng, dt: np.ones(3, dt)), (T,),
            "grad_output"),
           ("grad_output string", _with(_ce_backward_kwargs, grad_output="1"), (T,),
            "grad_output"),
           ("grad_output shape for none",
            _with(_ce_backward_kwargs, reduction="none",
                  grad_output=lambda rng, dt: np.ones((2, 3), dt)), (V,), "grad_output"))),
]

# ------------------------------------------------------------------- linear
def _linear_kwargs(rng, dtype):
    return dict(input=_r(rng, (2, 3, 5), dtype), weight=_r(rng, (4, 5), dtype),
                bias=_r(rng, (4,), dtype))


def _linear_backward_kwargs(rng, dtype):
    kw = _linear_kwargs(rng, dtype)
    del kw["bias"]
    return dict(grad_output=_r(rng, (2, 3, 4), dtype), **kw)


_LINEAR_OPS = [
    # input (*, in_features): "one axis fewer/more" changes its last axis
    Op("linear", _linear_kwargs, ("input", "weight", "bias"), ("bias",), {}, extra=(
        ("in_features differ", _shifted("weight", 1, 1, _linear_kwargs), (V,), "in_features"),
        ("bias length", _shifted("bias", 0, 1, _linear_kwargs), (V,), "bias"))),
    Op("linear_backward", _linear_backward_kwargs, ("grad_output", "input", "weight"), (), {},
       extra=(
           ("in_features differ", _shifted("weight", 1, 1, _linear_backward_kwargs), (V,),
            "in_features"),
           ("grad_output features", _shifted("grad_output", 2, 1, _linear_backward_kwargs),
            (V,), "grad_output"),
           ("grad_output rows", _shifted("grad_output", 0, 1, _linear_backward_kwargs),
            (V,), "grad_output"))),
]

# ------------------------------------------------------------------- threads
_THREAD_OPS = [
    Op("set_num_threads", lambda rng, dtype: dict(n=fastconv.get_num_threads()),
       (), (), {"n": (0, 1)}, extra=(
           ("n too large", lambda rng, dtype: dict(n=10**6), (V,), "n"),
       )),
]

OPS = _conv_ops(1) + _conv_ops(2) + _conv_ops(3) + _convt_ops(1) + _convt_ops(2) \
    + _convt_ops(3) + _UNFOLD_OPS + _POOL_OPS + _INTERPOLATE_OPS + _SHUFFLE_OPS \
    + _DEFORM_OPS + _BN_OPS + _ACTIVATION_OPS + _LINEAR_OPS
# Ops that compute (everything but the thread-count setters).
COMPUTE_OPS = list(OPS)
ALL_OPS = OPS + _THREAD_OPS
BY_NAME = {op.name: op for op in ALL_OPS}
# Public names that are not ops with array inputs.
# (gradcheck is a pure-Python test helper: it runs the user's own function.)
# PyTorch's names for ops of the table: the same function objects.
ALIASES = {"unfold": "im2col", "fold": "col2im"}
NOT_OPS = {"get_num_threads", "show_config", "release_workspace", "gradcheck", "explain",
           "summary", "__version__"}
