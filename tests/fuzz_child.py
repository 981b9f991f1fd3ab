"""Child process of test_bad_input.py: throws bad arguments at one op.

    python fuzz_child.py < job.json

job: {"mode": "hand" | "hypo", "ops": [names], "skip": [case ids] (hand),
"examples": N, "seed": S (hypo)}: every hand-written case of each op, or N
Hypothesis-generated argument sets per op.

Protocol on stdout, one line each, flushed: "S <id>" before a call (ids are
"op|case"), then "R <json>" with {"id", "ok", "detail"}; "F <op>" when an op
is finished, "D done" at the end.  A crash or hang leaves an "S" without its
"R": the parent reads which call killed the process from that.
"""
import json
import sys

import numpy as np

import fastconv
import fastconv.reference
from optable import BY_NAME, M, T, V

KEEP = object()  # "leave this argument as the valid call has it"
# Set only by test_bad_input's self-test: the case id at which to segfault.
_CRASH_AT = __import__("os").environ.get("FASTCONV_FUZZ_SELFTEST_CRASH_AT")


def emit(kind, payload):
    sys.stdout.write(f"{kind} {payload}\n")
    sys.stdout.flush()


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"ndarray(shape={value.shape}, dtype={value.dtype})"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def describe_kwargs(kwargs):
    return ", ".join(f"{k}={_describe(v)}" for k, v in kwargs.items())


def check_error(op, exc, allowed, must_contain):
    """None when `exc` is an allowed, well-worded error, else what is wrong."""
    msg = str(exc)
    if not isinstance(exc, allowed):
        return f"raised {type(exc).__name__} (wanted {'/'.join(e.__name__ for e in allowed)}): {msg}"
    if not msg.startswith(f"{op.name}:"):
        return f"message does not start with '{op.name}:': {msg}"
    if must_contain not in msg:
        return f"message does not name {must_contain!r}: {msg}"
    return None


# ------------------------------------------------------------ hand-written
_BAD_DTYPES = ("int32", "int64", "uint8", "bool", "complex64", "complex128", "object",
               "float16", "<U3", "S3", "datetime64[s]")


def _array_cases(op, name):
    """(label, value_or_fn(arr, other_dtype), allowed, must_contain)."""
    # Without its batch axis the only batched argument makes an unbatched
    # call, which is valid: two axes fewer never is.
    fewer = ("two axes fewer", lambda a, od: a[..., 0, 0]) if op.batched == (name,) \
        else ("one axis fewer", lambda a, od: a[..., 0])
    cases = [] if name in op.any_rank else [
        fewer + ((V,), name),
        ("one axis more", lambda a, od: a[..., None], (V,), name),
    ]
    if name not in op.scalar_ok:
        cases.append(("0-d array", lambda a, od: a.reshape(-1)[:1].reshape(()), (V,), name))
    cases += [
        ("string", lambda a, od: "abc", (T,), name),
        ("dict", lambda a, od: {}, (T,), name),
        ("ragged list", lambda a, od: [[1.0], [1.0, 2.0]], (T,), name),
        ("list of ints", lambda a, od: a.astype(np.int64).tolist(), (T,), name),
    ]
    cases += [(f"dtype {dt}", lambda a, od, dt=dt: a.astype(dt), (T,), name)
              for dt in _BAD_DTYPES]
    if len(op.arrays) > 1:
        cases.append(("mixed float dtypes", lambda a, od: a.astype(od), (T,), name))
    if name not in op.optional_arrays:
        cases.append(("None", lambda a, od: None, (T,), name))
    return cases


def _size_cases(name, nd, minimum, none_ok, none_entries_ok=False, broadcast=False,
                empty_ok=False):
    cases = [
        (f"{minimum - 1}", minimum - 1, (V,), name),
        ("-7", -7, (V,), name),
        ("2**41", 2**41, (V,), name),
        ("2**70", 2**70, (V,), name),
        ("float 1.5", 1.5, (T,), name),
        ("float 2.0", 2.0, (T,), name),
        ("np.float64 2.0", np.float64(2.0), (T,), name),
        ("string '1'", "1", (T, V), name),
        ("bytes", b"1", (T,), name),
        ("True", True, (T,), name),
        ("object()", object(), (T,), name),
        ("complex", 1 + 0j, (T,), name),
    ]
    if not none_ok:
        cases.append(("None", None, (T,), name))
    if nd:
        cases += [
            ("tuple too long", (minimum + 1,) * (nd + 1), (V,), name),
            ("tuple with a float", (1.5,) + (minimum + 1,) * (nd - 1), (T,), name),
            ("tuple with a negative", (-1,) * nd, (V,), name),
        ]
        if not empty_ok:  # pooling's stride=() means kernel_size, as PyTorch's
            cases.append(("empty tuple", (), (V,), name))
        if nd > 1 and not broadcast:  # where PyTorch does not broadcast (1,)
            cases.append(("one-element tuple", (minimum + 1,), (V,), name))
        if not none_entries_ok:  # adaptive pooling: None keeps the input size
            cases.append(("tuple with None", (None,) * nd, (T,), name))
    else:
        cases.append(("tuple", (1,), (T,), name))
    return cases


def hand_cases(op):
    """Every hand-written bad call of `op`: a list of (id, make_kwargs, allowed,
    must_contain); make_kwargs(rng, dtype) builds the call."""
    out = []
    for dtype, other in ((np.float32, np.float64), (np.float64, np.float32)):
        dname = np.dtype(dtype).name
        for name in op.arrays:
            for label, fn, allowed, text in _array_cases(op, name):
                def make(rng, dtype=dtype, other=other, name=name, fn=fn):
                    kw = op.make(rng, dtype)
                    kw[name] = fn(kw[name], other)
                    return kw
                out.append((f"{dname} {name}: {label}", make, allowed, text))
        for name, (nd, minimum) in op.sizes.items():
            for label, value, allowed, text in _size_cases(name, nd, minimum,
                                                           name in op.none_ok,
                                                           name in op.none_entries_ok,
                                                           name in op.broadcast,
                                                           name in op.empty_ok):
                def make(rng, dtype=dtype, name=name, value=value):
                    kw = op.make(rng, dtype)
                    kw[name] = value
                    return kw
                out.append((f"{dname} {name}={label}", make, allowed, text))
        for label, fn, allowed, text in op.extra:
            out.append((f"{dname} {label}", lambda rng, dtype=dtype, fn=fn: fn(rng, dtype),
                        allowed, text))
    return out


def run_hand(op, skip):
    rng = np.random.default_rng(0)
    for case_id, make, allowed, text in hand_cases(op):
        case_id = f"{op.name}|{case_id}"
        if case_id in skip:
            continue
        kwargs = make(rng)
        emit("S", case_id)
        if case_id == _CRASH_AT:  # the harness's own test: a real segfault
            import ctypes
            ctypes.string_at(0)
        try:
            op.call(kwargs)
        except Exception as exc:  # noqa: BLE001 - judging every exception is the point
            problem = check_error(op, exc, allowed, text)
        else:
            problem = "no error raised for " + describe_kwargs(kwargs)
        emit("R", json.dumps({"id": case_id, "ok": problem is None, "detail": problem}))


# ---------------------------------------------------------------- Hypothesis
def _strategies(op):
    from hypothesis import strategies as st

    def shape_arrays(dtype):
        dims = st.lists(st.integers(0, 5), min_size=0, max_size=6)

        def build(shape_and_big):
            shape, big_axis = shape_and_big
            shape = list(shape)
            if big_axis is not None and shape:
                # A huge axis is only allocatable next to a zero-size one.
                shape[big_axis % len(shape)] = 2**31 + 1
                shape[(big_axis + 1) % len(shape)] = 0 if len(shape) > 1 else shape[0]
                if len(shape) == 1:
                    shape[0] = 0
            return np.random.default_rng(1).standard_normal(shape).astype(dtype) \
                if np.prod(shape, dtype=np.float64) < 1e5 else np.empty(shape, dtype)
        return st.tuples(dims, st.none() | st.integers(0, 5)).map(build)

    def array_mutant(dtype):
        return st.one_of(
            shape_arrays(dtype),
            shape_arrays(dtype).map(lambda a: a.astype(np.float64 if a.dtype == np.float32
                                                        else np.float32)),
            st.sampled_from(_BAD_DTYPES).map(lambda dt: np.zeros((2, 2, 3, 3), dt)),
            st.sampled_from([None, "abc", 3.0, [[1.0]], {}, ()]),
        )

    small = st.integers(-2, 9)
    size_mutant = st.one_of(
        small, st.sampled_from([0, 2**40, 2**40 + 1, 2**63, -2**63, 10**7]),
        st.lists(small, min_size=0, max_size=4).map(tuple),
        st.lists(small, min_size=1, max_size=4),
        st.floats(allow_nan=True), st.none(), st.text(max_size=3), st.booleans(),
        small.map(np.int64), st.sampled_from(["same", "valid"]),
    )

    @st.composite
    def call(draw):
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        kwargs = op.make(np.random.default_rng(draw(st.integers(0, 3))), dtype)
        for name in op.arrays:
            if draw(st.integers(0, 3)) == 0:
                kwargs[name] = draw(array_mutant(dtype))
        for name in op.sizes:
            if draw(st.integers(0, 2)) == 0:
                kwargs[name] = draw(size_mutant)
        return kwargs
    return call()


def _snapshot(kwargs):
    return {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray)}


def _check_success(op, kwargs, before, result):
    """What is wrong with a call that returned, or None."""
    for k, v in before.items():
        if v.dtype.kind in "fc" and not np.array_equal(v, kwargs[k], equal_nan=True):
            return f"input {k} was modified"
    float_args = [v for k, v in kwargs.items() if k in op.arrays and isinstance(v, np.ndarray)]
    outs = result if isinstance(result, tuple) else (result,)
    if op.name == "set_num_threads":
        return None
    for i, out in enumerate(outs):
        if not isinstance(out, np.ndarray):
            return f"output {i} is {type(out).__name__}, not an ndarray"
        if float_args and out.dtype != float_args[0].dtype and out.dtype != np.int64:
            return f"output {i} has dtype {out.dtype}, input {float_args[0].dtype}"
        if not out.flags.c_contiguous:
            return f"output {i} is not C-contiguous"
    ref = getattr(fastconv.reference, op.name, None)
    # The NumPy oracle allocates per spatial position even for an empty batch
    # (a (0, 3, 2**31 + 1) input cost it 16 GiB and got the child OOM-killed).
    big = any(d > 4096 for v in kwargs.values() if isinstance(v, np.ndarray) for d in v.shape)
    if ref is None or big or sum(o.size for o in outs) > 10**5:
        return None
    try:
        expected = ref(**kwargs)
    except Exception:  # noqa: BLE001 - the oracle need not validate
        return None
    exp = expected if isinstance(expected, tuple) else (expected,)
    for i, (a, b) in enumerate(zip(outs, exp)):
        b = np.asarray(b)
        if a.shape != b.shape:
            return f"output {i} has shape {a.shape}, reference {b.shape}"
        tol = 1e-3 if a.dtype == np.float32 else 1e-9
        scale = max(1.0, float(np.abs(b).max(initial=0.0)))
        if not np.allclose(a / scale, b / scale, rtol=tol, atol=tol, equal_nan=True):
            return f"output {i} differs from fastconv.reference"
    return None


def run_hypo(op, n, seed):
    from hypothesis import HealthCheck, Phase, given, settings

    seen = set()
    counter = [0]

    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(_strategies(op))
    def fuzz(kwargs):
        counter[0] += 1
        case_id = f"{op.name}|hypothesis #{counter[0]}: {describe_kwargs(kwargs)}"
        before = _snapshot(kwargs)
        emit("S", case_id)
        try:
            result = op.call(kwargs)
        except (ValueError, TypeError, MemoryError) as exc:
            msg = str(exc)
            names = [k for k in kwargs] + ["C_in", "C_out", "output", "kernel"]
            problem = None
            if not msg.startswith(f"{op.name}:"):
                problem = f"{type(exc).__name__} not from fastconv's validation: {msg}"
            elif not any(k in msg for k in names):
                problem = f"{type(exc).__name__} names no argument: {msg}"
        except Exception as exc:  # noqa: BLE001
            problem = f"unexpected {type(exc).__name__}: {exc}"
        else:
            problem = _check_success(op, kwargs, before, result)
        # Report each distinct problem once (the first example that shows it).
        key = problem and problem.split(":")[0][:60]
        if problem and key in seen:
            problem = None
        seen.add(key)
        emit("R", json.dumps({"id": case_id, "ok": problem is None, "detail": problem}))

    import random
    random.seed(seed)
    fuzz._hypothesis_internal_use_seed = seed
    fuzz()


def main():
    job = json.load(sys.stdin)
    threads = fastconv.get_num_threads()
    skip = set(job.get("skip", ()))
    for name in job["ops"]:
        op = BY_NAME[name]
        try:
            if job["mode"] == "hand":
                run_hand(op, skip)
            else:
                run_hypo(op, job["examples"], job["seed"] + sum(map(ord, name)))
        finally:
            fastconv.set_num_threads(threads)
        emit("F", name)
    emit("D", "done")


if __name__ == "__main__":
    main()
