"""Per-call overhead of a few small calls, for instruction counts (docs/performance.md,
"Per-call overhead"): `python benchmarks/calls.py LIB OP N` makes 20 + N calls of OP with
LIB (fastconv or torch) on a (1, 8, 8, 8) float32 input, on 1 thread.  Run it under
`valgrind --tool=callgrind` with N = 1000 and N = 0; the difference of the two totals
divided by 1000 is the count per call.  (Wall-clock times of such calls mean little on a
shared machine; instruction counts do not depend on load.)
"""
import sys

import numpy as np

lib, op, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
b = rng.standard_normal(8).astype(np.float32)
x1 = rng.standard_normal((1, 64)).astype(np.float32)
w1 = rng.standard_normal((10, 64)).astype(np.float32)
b1 = rng.standard_normal(10).astype(np.float32)
g = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)   # conv2d's grad_output (padding 1)
if lib == "torch":
    import torch
    torch.set_num_threads(1)
    F = torch.nn.functional
    x, w, b, x1, w1, b1, g = map(torch.from_numpy, (x, w, b, x1, w1, b1, g))
    if op == "Conv2d":
        # A layer's training step: forward, then both gradients (autograd).
        layer = torch.nn.Conv2d(8, 8, 3, padding=1)
        xg = x.clone().requires_grad_(True)
        call = lambda: layer(xg).backward(g)
    else:
        torch.set_grad_enabled(False)
        # conv2d_backward's counterpart: ATen's backward op, all three gradients.
        call = lambda: torch.ops.aten.convolution_backward(
            g, x, w, [8], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, True])
else:
    import fastconv as F
    import fastconv.nn
    F.set_num_threads(1)
    layer = fastconv.nn.Conv2d(8, 8, 3, padding=1, rng=np.random.default_rng(0))

    def layer_step():
        layer.forward(x)
        layer.backward(g)
    call = {"conv2d_backward": lambda: F.conv2d_backward(g, x, w, padding=1),
            "Conv2d": layer_step}.get(op)
if op not in ("conv2d_backward", "Conv2d"):
    call = {"conv2d": lambda: F.conv2d(x, w, b, padding=1),
            "max_pool2d": lambda: F.max_pool2d(x, 2),
            "avg_pool2d": lambda: F.avg_pool2d(x, 2),
            "conv_transpose2d": lambda: F.conv_transpose2d(x, w, b, stride=2),
            "linear": lambda: F.linear(x1, w1, b1)}.get(op) or call
for _ in range(20 + n):
    call()
