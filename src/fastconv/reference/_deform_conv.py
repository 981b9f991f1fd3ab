"""Deformable convolution (torchvision.ops.deform_conv2d) in plain NumPy,
textbook style: for each kernel tap and offset group, compute every sample
point, read its four bilinear corners with fancy indexing, and build the
columns; then one np.dot per weight group. The backward pass differentiates
the same bilinear form by hand and scatters with np.add.at.

Written from torchvision's published rules (zero outside -1 < y < H,
-1 < x < W; corners outside the image read 0), independent of fastconv's
kernels, so that it can be their oracle.
"""
import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _geometry(x, weight, offset, stride, padding, dilation):
    n, c_in, h, w = x.shape
    c_out, c_group, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    groups = c_in // c_group
    offset_groups = offset.shape[1] // (2 * kh * kw)
    return dict(n=n, c_in=c_in, h=h, w=w, c_out=c_out, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph,
                pw=pw, dh=dh, dw=dw, oh=oh, ow=ow, groups=groups,
                offset_groups=offset_groups)


def _samples(x, offset, geo):
    """For every (offset group og, tap k): the channels it covers, the sample
    points' four corners [(y index, x index, bilinear weight, inside)], and
    the fractional parts (ly, lx) the derivative needs."""
    kk = geo["kh"] * geo["kw"]
    per_group = geo["c_in"] // geo["offset_groups"]
    oy = np.arange(geo["oh"])[:, None] * geo["sh"] - geo["ph"]
    ox = np.arange(geo["ow"])[None, :] * geo["sw"] - geo["pw"]
    for og in range(geo["offset_groups"]):
        for k in range(kk):
            i, j = divmod(k, geo["kw"])
            y = oy + i * geo["dh"] + offset[:, 2 * (og * kk + k)]
            xx = ox + j * geo["dw"] + offset[:, 2 * (og * kk + k) + 1]
            inside = (y > -1) & (y < geo["h"]) & (xx > -1) & (xx < geo["w"])
            y0 = np.floor(np.where(inside, y, 0)).astype(np.int64)
            x0 = np.floor(np.where(inside, xx, 0)).astype(np.int64)
            ly, lx = np.where(inside, y - y0, 0), np.where(inside, xx - x0, 0)
            corners = []
            for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                yi, xi = y0 + dy, x0 + dx
                ok = inside & (yi >= 0) & (yi < geo["h"]) & (xi >= 0) & (xi < geo["w"])
                weight = (ly if dy else 1 - ly) * (lx if dx else 1 - lx)
                corners.append((np.clip(yi, 0, geo["h"] - 1), np.clip(xi, 0, geo["w"] - 1),
                                np.where(ok, weight, 0), ok))
            yield og, k, slice(og * per_group, (og + 1) * per_group), corners, ly, lx


def _corner_values(x, channels, corners):
    """Values (N, Cg, OH, OW) of each corner, 0 outside the image."""
    n = np.arange(x.shape[0])[:, None, None]
    out = []
    for yi, xi, _, ok in corners:
        v = x[:, channels][n, :, yi, xi]            # (N, OH, OW, Cg)
        out.append(np.where(ok[..., None], v, 0).transpose(0, 3, 1, 2))
    return out


def _columns(x, offset, mask, geo):
    """(N, C_in, kH*kW, OH, OW) masked samples, plus the unmasked ones."""
    kk = geo["kh"] * geo["kw"]
    cols = np.zeros((geo["n"], geo["c_in"], kk, geo["oh"], geo["ow"]), dtype=x.dtype)
    for og, k, channels, corners, _, _ in _samples(x, offset, geo):
        values = _corner_values(x, channels, corners)
        cols[:, channels, k] = sum(c[2][:, None] * v for c, v in zip(corners, values))
    masked = cols.copy()
    if mask is not None:
        for og in range(geo["offset_groups"]):
            per_group = geo["c_in"] // geo["offset_groups"]
            cs = slice(og * per_group, (og + 1) * per_group)
            masked[:, cs] *= mask[:, None, og * kk:(og + 1) * kk]
    return masked, cols


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1,
                  mask=None):
    x, offset, weight = np.asarray(input), np.asarray(offset), np.asarray(weight)
    geo = _geometry(x, weight, offset, stride, padding, dilation)
    cols, _ = _columns(x, offset, None if mask is None else np.asarray(mask), geo)
    g, co = geo["groups"], geo["c_out"] // geo["groups"]
    cg = geo["c_in"] // g
    out = np.zeros((geo["n"], geo["c_out"], geo["oh"], geo["ow"]), dtype=x.dtype)
    for grp in range(g):
        w = weight[grp * co:(grp + 1) * co].reshape(co, -1)            # (co, cg*kk)
        c = cols[:, grp * cg:(grp + 1) * cg].reshape(geo["n"], -1, geo["oh"] * geo["ow"])
        out[:, grp * co:(grp + 1) * co] = np.matmul(w, c).reshape(
            geo["n"], co, geo["oh"], geo["ow"])
    if bias is not None:
        out += np.asarray(bias).reshape(-1, 1, 1)
    return out


def deform_conv2d_backward(grad_output, input, offset, weight, stride=1, padding=0,
                           dilation=1, mask=None):
    gout, x = np.asarray(grad_output), np.asarray(input)
    offset, weight = np.asarray(offset), np.asarray(weight)
    mask = None if mask is None else np.asarray(mask)
    geo = _geometry(x, weight, offset, stride, padding, dilation)
    kk, n = geo["kh"] * geo["kw"], geo["n"]
    g, co = geo["groups"], geo["c_out"] // geo["groups"]
    cg = geo["c_in"] // g
    cols, samples = _columns(x, offset, mask, geo)
    # column gradient and weight gradient, one weight group at a time
    gcols = np.zeros_like(cols)
    grad_weight = np.zeros_like(weight)
    go = gout.reshape(n, geo["c_out"], -1)
    for grp in range(g):
        w = weight[grp * co:(grp + 1) * co].reshape(co, -1)
        gcols[:, grp * cg:(grp + 1) * cg] = np.matmul(w.T, go[:, grp * co:(grp + 1) * co]) \
            .reshape(n, cg, kk, geo["oh"], geo["ow"])
        c = cols[:, grp * cg:(grp + 1) * cg].reshape(n, cg * kk, -1)
        grad_weight[grp * co:(grp + 1) * co] = np.einsum(
            "nol,nkl->ok", go[:, grp * co:(grp + 1) * co], c).reshape(co, cg, geo["kh"],
                                                                        geo["kw"])
    grad_input = np.zeros_like(x)
    grad_offset = np.zeros_like(offset)
    grad_mask = None if mask is None else np.zeros_like(mask)
    nn = np.arange(n)[:, None, None, None]
    for og, k, channels, corners, ly, lx in _samples(x, offset, geo):
        m = 1 if mask is None else mask[:, og * kk + k][:, None]
        gsample = gcols[:, channels, k]                    # (N, Cg, OH, OW)
        cc = np.arange(channels.start, channels.stop)[None, :, None, None]
        for yi, xi, wgt, _ in corners:
            np.add.at(grad_input, (nn, cc, yi[:, None], xi[:, None]),
                      gsample * m * wgt[:, None])
        v00, v01, v10, v11 = _corner_values(x, channels, corners)
        ly, lx = ly[:, None], lx[:, None]
        d_dy = (1 - lx) * (v10 - v00) + lx * (v11 - v01)
        d_dx = (1 - ly) * (v01 - v00) + ly * (v11 - v10)
        inside = corners[0][3] | corners[1][3] | corners[2][3] | corners[3][3]
        inside = inside[:, None]
        grad_offset[:, 2 * (og * kk + k)] = np.where(inside, gsample * d_dy, 0).sum(1) * \
            (1 if mask is None else mask[:, og * kk + k])
        grad_offset[:, 2 * (og * kk + k) + 1] = np.where(inside, gsample * d_dx, 0).sum(1) * \
            (1 if mask is None else mask[:, og * kk + k])
        if mask is not None:
            grad_mask[:, og * kk + k] = (gsample * samples[:, channels, k]).sum(1)
    return grad_input, grad_offset, grad_weight, gout.sum(axis=(0, 2, 3)), grad_mask
