"""Small C kernels compiled on first use with the machine's C compiler, cached per CPU.

Only where PyTorch's CPU backend has no fast kernel. Each kernel is optional: ``load()``
returns None (and logs why, once) when there is no compiler, the compile fails, or
``ARCHSEARCH_NATIVE=0``; callers then use PyTorch's own operator, with the same values.

The shared library is built with ``-O3 -march=native`` into
``$ARCHSEARCH_CACHE`` (default ``$XDG_CACHE_HOME/archsearch`` or ``~/.cache/archsearch``),
named by a hash of the source, the flags and the CPU's feature flags, so a cache shared between
machines never hands one CPU another's instructions. Compiling writes a temporary file and
renames it into place, so processes racing to build it are safe.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c99")
OPENMP = "-fopenmp"

# Weight gradient of a depthwise 5x5 convolution over channels_last tensors (oneDNN's fast
# depthwise kernel computes it only for filters at most 3 wide; PyTorch then falls back to its
# general grouped kernel, ~10x slower). For each block of 16 channels the 25 filter taps are
# accumulated in registers (one 16-float vector each) while the output pixels stream by once.
DW5_WGRAD = r"""
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

/* x: input (N, H, W, C); g: output gradient (N, OH, OW, C); out: (C, 25). Output pixel
   (oh, ow) reads x[oh*s - p + i*d][ow*s - p + j*d] (zero outside) for filter tap (i, j).
   C must be a multiple of 16. */
void dw5_wgrad(const float *restrict x, const float *restrict g, float *restrict out,
               long n_img, long h, long w, long c, long oh_n, long ow_n, long s, long p,
               long d) {
    for (long c0 = 0; c0 < c; c0 += 16) {
        v16 acc[25];
        for (int t = 0; t < 25; t++) acc[t] = (v16){0};
        for (long n = 0; n < n_img; n++) {
            for (long oh = 0; oh < oh_n; oh++) {
                const long ih0 = oh * s - p;
                const int rows_inside = ih0 >= 0 && ih0 + 4 * d < h;
                const float *grow = g + (n * oh_n + oh) * ow_n * c + c0;
                for (long ow = 0; ow < ow_n; ow++) {
                    const long iw0 = ow * s - p;
                    const v16 gv = *(const v16u *)(grow + ow * c);
                    if (rows_inside && iw0 >= 0 && iw0 + 4 * d < w) {  /* no tap outside */
                        const float *base = x + ((n * h + ih0) * w + iw0) * c + c0;
#pragma GCC unroll 5
                        for (int i = 0; i < 5; i++) {
#pragma GCC unroll 5
                            for (int j = 0; j < 5; j++) {
                                acc[i * 5 + j] +=
                                    gv * *(const v16u *)(base + (i * d * w + j * d) * c);
                            }
                        }
                        continue;
                    }
#pragma GCC unroll 5
                    for (int i = 0; i < 5; i++) {  /* a border pixel: skip the padding */
                        const long ih = ih0 + i * d;
                        if (ih < 0 || ih >= h) continue;
#pragma GCC unroll 5
                        for (int j = 0; j < 5; j++) {
                            const long iw = iw0 + j * d;
                            if (iw < 0 || iw >= w) continue;
                            acc[i * 5 + j] +=
                                gv * *(const v16u *)(x + ((n * h + ih) * w + iw) * c + c0);
                        }
                    }
                }
            }
        }
        for (int t = 0; t < 25; t++)
            for (int k = 0; k < 16; k++) out[(c0 + k) * 25 + t] = acc[t][k];
    }
}
"""


# 3x3 max and average pooling (padding 1, stride 1 or 2) over channels_last tensors, forward
# and backward, 16 channels to a vector. PyTorch's CPU max pooling writes an int64 index per
# output value (~3.5x the time of its average pooling); here each window's winner is stored as
# its tap (0-8, an int32: GCC 12 turns a byte-to-int vector conversion into scalar code). Each
# backward gathers, for each input pixel, what the windows that read it send back (no zero
# fill, no scatter). Max: ties go to the first tap in row-major order and NaN wins, as in
# PyTorch; average: over each window's real pixels (count_include_pad=False).
POOL3 = r"""
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));
typedef int v16iu __attribute__((vector_size(64), aligned(4)));

/* x: (N, H, W, C) -> out (N, OH, OW, C), tap (N, OH, OW, C). C a multiple of 16. */
void maxpool3_fwd(const float *restrict x, float *restrict out, int *restrict tap,
                  long n_img, long h, long w, long c, long oh_n, long ow_n, long s) {
    #pragma omp parallel for collapse(2) schedule(static)
    for (long n = 0; n < n_img; n++) {
        for (long oh = 0; oh < oh_n; oh++) {
            for (long ow = 0; ow < ow_n; ow++) {
                const long o = ((n * oh_n + oh) * ow_n + ow) * c;
                for (long c0 = 0; c0 < c; c0 += 16) {
                    v16 best = (v16){0} - __builtin_inff();
                    v16i arg = (v16i){0};
                    for (int i = 0; i < 3; i++) {
                        const long ih = oh * s - 1 + i;
                        if (ih < 0 || ih >= h) continue;
                        for (int j = 0; j < 3; j++) {
                            const long iw = ow * s - 1 + j;
                            if (iw < 0 || iw >= w) continue;
                            const v16 v = *(const v16u *)(x + ((n * h + ih) * w + iw) * c + c0);
                            const v16i win = (v > best) | (v != v);
                            best = (v16)(((v16i)v & win) | ((v16i)best & ~win));
                            const v16i here = (v16i){0} + (i * 3 + j);
                            arg = (here & win) | (arg & ~win);
                        }
                    }
                    *(v16u *)(out + o + c0) = best;
                    *(v16iu *)(tap + o + c0) = arg;
                }
            }
        }
    }
}

/* Average pooling over the real pixels of each window (count_include_pad=False): x (N, H, W,
   C) -> out (N, OH, OW, C), each window's sum divided by its number of real pixels. */
void avgpool3_fwd(const float *restrict x, float *restrict out, long n_img, long h, long w,
                  long c, long oh_n, long ow_n, long s) {
    #pragma omp parallel for collapse(2) schedule(static)
    for (long n = 0; n < n_img; n++) {
        for (long oh = 0; oh < oh_n; oh++) {
            const long i0 = oh * s - 1 < 0 ? 1 : 0, i1 = oh * s + 1 >= h ? 2 : 3;
            for (long ow = 0; ow < ow_n; ow++) {
                const long j0 = ow * s - 1 < 0 ? 1 : 0, j1 = ow * s + 1 >= w ? 2 : 3;
                const float count = (float)((i1 - i0) * (j1 - j0));
                const long o = ((n * oh_n + oh) * ow_n + ow) * c;
                for (long c0 = 0; c0 < c; c0 += 16) {
                    v16 acc = (v16){0};
                    for (long i = i0; i < i1; i++)
                        for (long j = j0; j < j1; j++)
                            acc += *(const v16u *)(
                                x + ((n * h + oh * s - 1 + i) * w + ow * s - 1 + j) * c + c0);
                    *(v16u *)(out + o + c0) = acc / count;
                }
            }
        }
    }
}

/* g: (N, OH, OW, C) -> gx (N, H, W, C): each input pixel gathers what the windows that read it
   send back: max: g where it is the window's winning tap (tap as above); average: g / the
   window's real pixels. Input pixel ih is in the window of output row oh = (ih + 1 - i) / s for
   each tap row i with ih + 1 - i a non-negative multiple of s below s * OH. */
static inline __attribute__((always_inline)) void pool3_bwd_at(
        const float *restrict g, const int *restrict tap, float *restrict gx, long n_img,
        long h, long w, long c, long oh_n, long ow_n, const long s, const int is_max) {
    /* per input column: the output column of the window reading it with tap column j (-1:
       none), and that window's real columns */
    long cols[w][3], cn[w][3];
    for (long iw = 0; iw < w; iw++) {
        for (int j = 0; j < 3; j++) {
            const long u = iw + 1 - j;
            cols[iw][j] = (u >= 0 && u % s == 0 && u / s < ow_n) ? u / s : -1;
            cn[iw][j] = cols[iw][j] < 0 ? 0 : 3 - (u - 1 < 0) - (u + 1 >= w);
        }
    }
    #pragma omp parallel for collapse(2) schedule(static)
    for (long n = 0; n < n_img; n++) {
        for (long ih = 0; ih < h; ih++) {
            long rows[3], rn[3];  /* the same for the rows */
            for (int i = 0; i < 3; i++) {
                const long t = ih + 1 - i;
                rows[i] = (t >= 0 && t % s == 0 && t / s < oh_n) ? t / s : -1;
                rn[i] = rows[i] < 0 ? 0 : 3 - (t - 1 < 0) - (t + 1 >= h);
            }
            for (long iw = 0; iw < w; iw++) {
                const long o = ((n * h + ih) * w + iw) * c;
                if (s == 1 && ih >= 2 && ih < h - 2 && iw >= 2 && iw < w - 2) {
                    /* inside: read by 9 windows, each of 9 real pixels */
                    for (long c0 = 0; c0 < c; c0 += 16) {
                        v16 acc = (v16){0};
#pragma GCC unroll 3
                        for (int i = 0; i < 3; i++) {
#pragma GCC unroll 3
                            for (int j = 0; j < 3; j++) {
                                const long q = ((n * oh_n + ih + 1 - i) * ow_n + iw + 1 - j)
                                               * c + c0;
                                const v16 gv = *(const v16u *)(g + q);
                                if (is_max) {
                                    const v16i won = *(const v16iu *)(tap + q) == i * 3 + j;
                                    acc += (v16)((v16i)gv & won);
                                } else {
                                    acc += gv;
                                }
                            }
                        }
                        *(v16u *)(gx + o + c0) = is_max ? acc : acc / 9.0f;
                    }
                    continue;
                }
                for (long c0 = 0; c0 < c; c0 += 16) {
                    v16 acc = (v16){0};
                    for (int i = 0; i < 3; i++) {
                        if (rows[i] < 0) continue;
                        for (int j = 0; j < 3; j++) {
                            if (cols[iw][j] < 0) continue;
                            const long q = ((n * oh_n + rows[i]) * ow_n + cols[iw][j]) * c + c0;
                            const v16 gv = *(const v16u *)(g + q);
                            if (is_max) {
                                const v16i won = *(const v16iu *)(tap + q) == i * 3 + j;
                                acc += (v16)((v16i)gv & won);
                            } else {
                                acc += gv / (float)(rn[i] * cn[iw][j]);
                            }
                        }
                    }
                    *(v16u *)(gx + o + c0) = acc;
                }
            }
        }
    }
}

void maxpool3_bwd(const float *restrict g, const int *restrict tap, float *restrict gx,
                  long n_img, long h, long w, long c, long oh_n, long ow_n, long s) {
    if (s == 1)
        pool3_bwd_at(g, tap, gx, n_img, h, w, c, oh_n, ow_n, 1, 1);
    else
        pool3_bwd_at(g, tap, gx, n_img, h, w, c, oh_n, ow_n, 2, 1);
}

void avgpool3_bwd(const float *restrict g, float *restrict gx, long n_img, long h, long w,
                  long c, long oh_n, long ow_n, long s) {
    if (s == 1)
        pool3_bwd_at(g, 0, gx, n_img, h, w, c, oh_n, ow_n, 1, 0);
    else
        pool3_bwd_at(g, 0, gx, n_img, h, w, c, oh_n, ow_n, 2, 0);
}
"""


# A weighted sum of same-layout float maps, out = sum_t c[t] * x_t, in one pass: a relaxed
# node's sum over its edges' ops (PyTorch adds two maps per operator: K - 1 passes over memory
# for K maps, and a multiply before each weighted one). The backward writes c[t] * g for the
# weighted maps and each block's partial dot products <g, x_t> (their weights' gradients) in the
# same pass. Blocks of 4096 floats: the output (or g) stays in L1 while the inputs stream by.
# Sums in the order of the maps, each product rounded before its add, as PyTorch's chain.
WSUM = r"""
#define WSUM_BLOCK 4096

static long wsum_len(long b, long n) {
    const long rest = n - b * WSUM_BLOCK;
    return rest < WSUM_BLOCK ? rest : WSUM_BLOCK;
}

/* out[i] = sum_t c[t] * xs[t][i], i < n, over k maps */
void wsum_fwd(const float *const *xs, const float *c, float *out, long k, long n) {
    const long blocks = (n + WSUM_BLOCK - 1) / WSUM_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long lo = b * WSUM_BLOCK, len = wsum_len(b, n);
        float *restrict o = out + lo;
        const float *restrict x0 = xs[0] + lo;
        const float c0 = c[0];
        for (long i = 0; i < len; i++) o[i] = c0 * x0[i];  /* c = 1: exactly x */
        for (long t = 1; t < k; t++) {
            const float *restrict x = xs[t] + lo;
            const float ct = c[t];
            for (long i = 0; i < len; i++) o[i] += ct * x[i];
        }
    }
}

/* For t < m: gxs[t][i] = c[t] * g[i] (where gxs[t] is not NULL), and, where partial is not
   NULL, partial[b * m + t] = sum over block b of g[i] * xs[t][i]. */
void wsum_bwd(const float *g, const float *const *xs, const float *c, float *const *gxs,
              float *partial, long m, long n) {
    const long blocks = (n + WSUM_BLOCK - 1) / WSUM_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long lo = b * WSUM_BLOCK, len = wsum_len(b, n);
        const float *restrict gb = g + lo;
        for (long t = 0; t < m; t++) {
            if (gxs[t] != 0) {
                float *restrict gx = gxs[t] + lo;
                const float ct = c[t];
                for (long i = 0; i < len; i++) gx[i] = ct * gb[i];
            }
            if (partial == 0) continue;
            const float *restrict x = xs[t] + lo;
            float lanes[16] = {0};  /* 16 independent sums: vectorised without reassociation */
            long i = 0;
            for (; i + 16 <= len; i += 16)
                for (int j = 0; j < 16; j++) lanes[j] += gb[i + j] * x[i + j];
            for (; i < len; i++) lanes[0] += gb[i] * x[i];
            float sum = 0.0f;
            for (int j = 0; j < 16; j++) sum += lanes[j];
            partial[b * m + t] = sum;
        }
    }
}
"""


# A node's sum whose terms include BatchNorm outputs (no affine, batch statistics: the relaxed
# supernets' ops end in one), taken from the BatchNorms' inputs z_t: the normalised maps are
# never written. Over channels_last maps (n_pix pixels of c channels, c a multiple of 16: 16
# channels to a vector) in blocks of whole pixels (ppb a block). Forward: the moments of each
# z_t (one pass, each block about its first pixel), then out = sum_t cx[t] x_t + sum_t (a_t z_t + b_t), a_t and b_t per channel. Backward:
# one pass for the per-channel sums of g and of g (z_t - mean_t) (and the weighted maps' dot
# products), then one writing each gradient, alpha g + beta z + gamma per channel.
WSUM_BN = r"""
#include <math.h>
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define AT(ptr, i) (*(const v16u *)((ptr) + (i)))
#define PUT(ptr, i) (*(v16u *)((ptr) + (i)))

static long pixels_in(long b, long n_pix, long ppb) {
    const long rest = n_pix - b * ppb;
    return rest < ppb ? rest : ppb;
}

/* mean[t * c + ch] and invstd[t * c + ch] (1 / sqrt(var + eps), the biased variance) of
   zs[t] in one pass: per block b, about its first pixel (shift), the sums of z - shift and of
   its squares (in float32 over at most ppb pixels: centred, so without cancellation), then
   the blocks' means and squared deviations combined in double (Chan et al.'s pairwise
   update, in block order). work: 2 * blocks * k * c floats. c a multiple of 16 (as below). */
void bn_moments(const float *const *zs, float *mean, float *invstd, float *work, long k,
                long n_pix, long c, long ppb, double eps) {
    const long blocks = (n_pix + ppb - 1) / ppb;
    float *bmean = work, *bm2 = work + blocks * k * c;
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long np = pixels_in(b, n_pix, ppb);
        for (long t = 0; t < k; t++) {
            const float *z = zs[t] + b * ppb * c;
            for (long c0 = 0; c0 < c; c0 += 16) {
                const v16 m = AT(z, c0);
                v16 s1 = (v16){0}, s2 = (v16){0};
                for (long p = 0; p < np; p++) {
                    const v16 v = AT(z, p * c + c0) - m;
                    s1 += v;
                    s2 += v * v;
                }
                const v16 d = s1 / (float)np;
                PUT(bmean + (b * k + t) * c, c0) = m + d;
                PUT(bm2 + (b * k + t) * c, c0) = s2 - s1 * d;
            }
        }
    }
    for (long i = 0; i < k * c; i++) {
        double n = 0.0, mu = 0.0, m2 = 0.0;
        for (long b = 0; b < blocks; b++) {
            const double nb = (double)pixels_in(b, n_pix, ppb), total = n + nb;
            const double delta = (double)bmean[b * k * c + i] - mu;
            mu += delta * nb / total;
            m2 += (double)bm2[b * k * c + i] + delta * delta * n * nb / total;
            n = total;
        }
        mean[i] = (float)mu;
        invstd[i] = (float)(1.0 / sqrt(m2 / n + eps));
    }
}

/* out = sum_t cx[t] * xs[t] (t < kx) + sum_t (a[t] * zs[t] + bb[t]) (t < kz, per channel) */
void wsum_bn_fwd(const float *const *xs, const float *cx, long kx, const float *const *zs,
                 const float *a, const float *bb, long kz, float *out, long n_pix, long c,
                 long ppb) {
    const long blocks = (n_pix + ppb - 1) / ppb;
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long np = pixels_in(b, n_pix, ppb), lo = b * ppb * c, len = np * c;
        float *restrict o = out + lo;
        for (long i = 0; i < len; i++) o[i] = 0.0f;
        for (long t = 0; t < kx; t++) {
            const float *restrict x = xs[t] + lo;
            const float ct = cx[t];
            for (long i = 0; i < len; i++) o[i] += ct * x[i];
        }
        for (long t = 0; t < kz; t++) {
            const float *z = zs[t] + lo;
            for (long c0 = 0; c0 < c; c0 += 16) {
                const v16 at = AT(a + t * c, c0), bt = AT(bb + t * c, c0);
                for (long p = 0; p < np; p++)
                    PUT(o, p * c + c0) = AT(o, p * c + c0) + (at * AT(z, p * c + c0) + bt);
            }
        }
    }
}

/* Per block b: dots[b * m + t] = <g, xs[t]> (t < m; dots NULL: none), sg[b * c + ch] = the
   sum of g, sgz[(b * kz + t) * c + ch] = the sum of g * (zs[t] - mean[t]) */
void wsum_bn_bwd_reduce(const float *g, const float *const *xs, long m, float *dots,
                        const float *const *zs, const float *mean, long kz, float *sg,
                        float *sgz, long n_pix, long c, long ppb) {
    const long blocks = (n_pix + ppb - 1) / ppb;
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long np = pixels_in(b, n_pix, ppb), lo = b * ppb * c, len = np * c;
        const float *gb = g + lo;
        for (long t = 0; dots != 0 && t < m; t++) {
            const float *x = xs[t] + lo;
            v16 acc = (v16){0};
            for (long i = 0; i < len; i += 16) acc += AT(gb, i) * AT(x, i);  /* len: 16k */
            float sum = 0.0f;
            for (int j = 0; j < 16; j++) sum += acc[j];
            dots[b * m + t] = sum;
        }
        for (long c0 = 0; c0 < c; c0 += 16) {
            v16 acc = (v16){0};
            for (long p = 0; p < np; p++) acc += AT(gb, p * c + c0);
            PUT(sg + b * c, c0) = acc;
        }
        for (long t = 0; t < kz; t++) {
            const float *z = zs[t] + lo;
            for (long c0 = 0; c0 < c; c0 += 16) {
                const v16 mt = AT(mean + t * c, c0);
                v16 acc = (v16){0};
                for (long p = 0; p < np; p++)
                    acc += AT(gb, p * c + c0) * (AT(z, p * c + c0) - mt);
                PUT(sgz + (b * kz + t) * c, c0) = acc;
            }
        }
    }
}

/* gxs[t] = cx[t] * g (t < m, where not NULL); gzs[t] = al[t] g + be[t] zs[t] + ga[t], per
   channel (t < kz, where not NULL) */
void wsum_bn_bwd_apply(const float *g, const float *cx, float *const *gxs, long m,
                       const float *const *zs, const float *al, const float *be,
                       const float *ga, float *const *gzs, long kz, long n_pix, long c,
                       long ppb) {
    const long blocks = (n_pix + ppb - 1) / ppb;
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long np = pixels_in(b, n_pix, ppb), lo = b * ppb * c, len = np * c;
        const float *restrict gb = g + lo;
        for (long t = 0; t < m; t++) {
            if (gxs[t] == 0) continue;
            float *restrict gx = gxs[t] + lo;
            const float ct = cx[t];
            for (long i = 0; i < len; i++) gx[i] = ct * gb[i];
        }
        for (long t = 0; t < kz; t++) {
            if (gzs[t] == 0) continue;
            float *gz = gzs[t] + lo;
            const float *z = zs[t] + lo;
            for (long c0 = 0; c0 < c; c0 += 16) {
                const v16 at = AT(al + t * c, c0), bt = AT(be + t * c, c0),
                          ct = AT(ga + t * c, c0);
                for (long p = 0; p < np; p++)
                    PUT(gz, p * c + c0) = at * AT(gb, p * c + c0) + bt * AT(z, p * c + c0) + ct;
            }
        }
    }
}
"""


# The linear part of a relaxed NB201 node: its skips and its one average pooling (3x3, stride
# 1, padding 1, windows over their real pixels only), out = sum_t ws[t] x_t + pool(sum_t wp[t]
# x_t), over channels_last maps (N, H, W, C), C a multiple of 16, parallel over image rows.
# A window's pixel count is its real rows times its real columns, so the pooling is separable:
# each output row first sums the (weighted) input rows above, at and below it (a row buffer
# on the stack), then each pixel sums 3 columns of that. Backward: v = the pooling's backward
# of g, separable the same way (g / the window's rows, summed over rows; / its columns, summed
# over columns); gx_t = ws[t] g + wp[t] v, and per row the dot products <g, x_t>, <v, x_t>.
SKIP_POOL = r"""
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define AT(ptr, i) (*(const v16u *)((ptr) + (i)))
#define PUT(ptr, i) (*(v16u *)((ptr) + (i)))

static inline long lo_of(long i) { return i == 0 ? 0 : i - 1; }
static inline long hi_of(long i, long n) { return i == n - 1 ? n : i + 2; }

void skip_pool_fwd(const float *const *xs, const float *ws, const float *wp, long k,
                   float *out, long n_img, long h, long w, long c) {
    const long row = w * c;
    #pragma omp parallel for collapse(2) schedule(static)
    for (long n = 0; n < n_img; n++) {
        for (long oh = 0; oh < h; oh++) {
            float cs[row];  /* sum over the window's rows of sum_t wp[t] x_t */
            for (long i = 0; i < row; i++) cs[i] = 0.0f;
            const long r0 = lo_of(oh), r1 = hi_of(oh, h);
            for (long t = 0; t < k; t++) {
                const float wt = wp[t];
                if (wt == 0.0f) continue;
                for (long r = r0; r < r1; r++) {
                    const float *restrict x = xs[t] + (n * h + r) * row;
                    for (long i = 0; i < row; i++) cs[i] += wt * x[i];
                }
            }
            const long here = (n * h + oh) * row;
            const float rows_n = (float)(r1 - r0);
            for (long ow = 0; ow < w; ow++) {
                const long q0 = lo_of(ow), q1 = hi_of(ow, w);
                const float count = rows_n * (float)(q1 - q0);
                for (long c0 = 0; c0 < c; c0 += 16) {
                    v16 acc = (v16){0};
                    for (long q = q0; q < q1; q++) acc += AT(cs, q * c + c0);
                    v16 skip = (v16){0};
                    for (long t = 0; t < k; t++) skip += ws[t] * AT(xs[t] + here, ow * c + c0);
                    PUT(out + here, ow * c + c0) = skip + acc / count;
                }
            }
        }
    }
}

/* gxs[t] (NULL: not wanted) = ws[t] g + wp[t] v; dots (NULL: not wanted) per image row r:
   dots[r * 2k + t] = <g, x_t>, dots[r * 2k + k + t] = <v, x_t> over the row. */
void skip_pool_bwd(const float *g, const float *const *xs, const float *ws, const float *wp,
                   long k, float *const *gxs, float *dots, long n_img, long h, long w,
                   long c) {
    const long row = w * c;
    #pragma omp parallel for collapse(2) schedule(static)
    for (long n = 0; n < n_img; n++) {
        for (long ih = 0; ih < h; ih++) {
            float cs[row], v[row];
            for (long i = 0; i < row; i++) cs[i] = 0.0f;
            /* the windows reading row ih are centred on rows lo_of(ih) .. hi_of(ih) - 1 */
            for (long r = lo_of(ih); r < hi_of(ih, h); r++) {
                const float inv = 1.0f / (float)(hi_of(r, h) - lo_of(r));
                const float *restrict gr = g + (n * h + r) * row;
                for (long i = 0; i < row; i++) cs[i] += gr[i] * inv;
            }
            for (long iw = 0; iw < w; iw++) {
                for (long c0 = 0; c0 < c; c0 += 16) {
                    v16 acc = (v16){0};
                    for (long q = lo_of(iw); q < hi_of(iw, w); q++)
                        acc += AT(cs, q * c + c0) / (float)(hi_of(q, w) - lo_of(q));
                    PUT(v, iw * c + c0) = acc;
                }
            }
            const long here = (n * h + ih) * row;
            const float *restrict gb = g + here;
            for (long t = 0; t < k; t++) {
                const float *restrict x = xs[t] + here;
                if (gxs[t] != 0) {
                    float *restrict gx = gxs[t] + here;
                    const float a = ws[t], b = wp[t];
                    for (long i = 0; i < row; i++) gx[i] = a * gb[i] + b * v[i];
                }
                if (dots == 0) continue;
                v16 dg = (v16){0}, dv = (v16){0};
                for (long i = 0; i < row; i += 16) {
                    const v16 xv = AT(x, i);
                    dg += AT(gb, i) * xv;
                    dv += AT(v, i) * xv;
                }
                float sg = 0.0f, sv = 0.0f;
                for (int j = 0; j < 16; j++) { sg += dg[j]; sv += dv[j]; }
                dots[(n * h + ih) * 2 * k + t] = sg;
                dots[(n * h + ih) * 2 * k + k + t] = sv;
            }
        }
    }
}
"""


# A 1x1 convolution over channels_last maps as a matmul over the channel axis, forward and
# backward, for the few (16-64) channels of searched cells, where MKL's sgemm on these tall,
# skinny matrices runs at about half the memory's speed. The input's pixels may be strided
# (FactorizedReduce's every other row and column): pixel (b, i, j) of x starts at
# b * sb + i * si + j * sj, its channels contiguous; y and g are dense (B, H, W, N).
CHANNEL_MATMUL = r"""
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define AT(ptr, i) (*(const v16u *)((ptr) + (i)))
#define PUT(ptr, i) (*(v16u *)((ptr) + (i)))

/* y[b, i, j, :] = x[b, i, j, :] @ m, m (K, N) row-major; K, N multiples of 16. Eight pixels
   at a time share each row of m (eight independent sums: the FMA units' latency hidden). */
void channel_matmul(const float *restrict x, const float *restrict m, float *restrict y,
                    long nb, long h, long w, long k, long n, long sb, long si, long sj) {
    #pragma omp parallel for collapse(2) schedule(static)
    for (long b = 0; b < nb; b++) {
        for (long i = 0; i < h; i++) {
            const float *xr = x + b * sb + i * si;
            float *yr = y + (b * h + i) * w * n;
            long j = 0;
            for (; j + 8 <= w; j += 8) {
                const float *xp[8];
                for (int u = 0; u < 8; u++) xp[u] = xr + (j + u) * sj;
                for (long o = 0; o < n; o += 16) {
                    v16 a[8];
                    for (int u = 0; u < 8; u++) a[u] = (v16){0};
                    for (long c = 0; c < k; c++) {
                        const v16 mv = AT(m, c * n + o);
                        for (int u = 0; u < 8; u++) a[u] += xp[u][c] * mv;
                    }
                    for (int u = 0; u < 8; u++) PUT(yr, (j + u) * n + o) = a[u];
                }
            }
            for (; j < w; j++) {
                const float *x0 = xr + j * sj;
                for (long o = 0; o < n; o += 16) {
                    v16 a0 = (v16){0};
                    for (long c = 0; c < k; c++) a0 += x0[c] * AT(m, c * n + o);
                    PUT(yr, j * n + o) = a0;
                }
            }
        }
    }
}

/* The rows r in [lo, hi) of (B x H) image rows: acc (N, K) = sum g[pixel, o] x[pixel, c] for
   o in [o0, o0 + no), c in [c0, c0 + 16 nc): no x nc <= 16 sums, held in registers. */
static inline __attribute__((always_inline)) void gram_tile(
        const float *restrict g, const float *restrict x, float *acc, long lo, long hi, long h,
        long w, long k, long n, long sb, long si, long sj, long o0, long c0, const int no,
        const int nc) {
    v16 a[16][4];
    for (int u = 0; u < no; u++)
        for (int v = 0; v < nc; v++) a[u][v] = (v16){0};
    for (long r = lo; r < hi; r++) {
        const float *xr = x + (r / h) * sb + (r % h) * si + c0;
        const float *gr = g + r * w * n + o0;
        for (long j = 0; j < w; j++) {
            const float *xp = xr + j * sj, *gp = gr + j * n;
            for (int v = 0; v < nc; v++) {
                const v16 xv = AT(xp, 16 * v);
                for (int u = 0; u < no; u++) a[u][v] += gp[u] * xv;
            }
        }
    }
    for (int u = 0; u < no; u++)
        for (int v = 0; v < nc; v++) PUT(acc, (o0 + u) * k + c0 + 16 * v) = a[u][v];
}

/* part[ch] (N, K) = sum over chunk ch of the B x H image rows of g[pixel]^T x[pixel]: the
   weight's gradient in `chunks` partial sums (the caller adds them). Tiles of 16 output
   channels by 16 input channels, 8 by 32 or 4 by 64 (4 by 16-48 for what is left of K). */
void channel_gram(const float *restrict g, const float *restrict x, float *restrict part,
                  long nb, long h, long w, long k, long n, long sb, long si, long sj,
                  long chunks) {
    const long rows = nb * h;
    #pragma omp parallel for schedule(static)
    for (long ch = 0; ch < chunks; ch++) {
        const long lo = rows * ch / chunks, hi = rows * (ch + 1) / chunks;
        float *acc = part + ch * n * k;
#define TILE(no, nc) gram_tile(g, x, acc, lo, hi, h, w, k, n, sb, si, sj, o0, c0, no, nc)
        if (k == 16) {
            for (long o0 = 0, c0 = 0; o0 < n; o0 += 16) TILE(16, 1);
        } else if (k == 32) {
            for (long o0 = 0, c0 = 0; o0 < n; o0 += 8) TILE(8, 2);
        } else {
            for (long o0 = 0; o0 < n; o0 += 4) {
                long c0 = 0;
                for (; c0 + 64 <= k; c0 += 64) TILE(4, 4);
                switch ((k - c0) / 16) {
                case 3: TILE(4, 3); break;
                case 2: TILE(4, 2); break;
                case 1: TILE(4, 1); break;
                default: break;
                }
            }
        }
#undef TILE
    }
}
"""


def compile_c(compiler: str, src: Path, built: Path) -> None:
    """Compile with OpenMP (the kernels' ``omp parallel`` loops then run on the OpenMP pool
    PyTorch's CPU wheels load, ``libgomp.so.1``, with its thread count), else without it
    (the loops run on the calling thread)."""
    try:
        subprocess.run([compiler, *FLAGS, OPENMP, str(src), "-o", str(built)], check=True,
                       capture_output=True, text=True, timeout=120)
    except subprocess.CalledProcessError:
        log.info("the C compiler has no OpenMP: native kernels run on one thread")
        subprocess.run([compiler, *FLAGS, str(src), "-o", str(built)], check=True,
                       capture_output=True, text=True, timeout=120)


def cache_dir() -> Path:
    if os.environ.get("ARCHSEARCH_CACHE"):
        return Path(os.environ["ARCHSEARCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "archsearch"


def cpu_fingerprint() -> str:
    """The CPU's feature flags (Linux), else the platform's name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.platform() + platform.processor()


@functools.cache
def load(name: str) -> ctypes.CDLL | None:
    """The compiled library holding kernel ``name`` (one of ``SOURCES``), or None."""
    if os.environ.get("ARCHSEARCH_NATIVE", "1") == "0":
        return None
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler found: using PyTorch's kernel for %s", name)
        return None
    source = SOURCES[name]
    digest = hashlib.sha256("\0".join((source, *FLAGS, OPENMP, compiler, cpu_fingerprint()))
                            .encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}-{digest}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                src = Path(tmp) / f"{name}.c"
                src.write_text(source)
                built = Path(tmp) / target.name
                compile_c(compiler, src, built)
                os.replace(built, target)  # atomic: a racing process sees all or nothing
            log.info("built the native kernel %s into %s", name, target)
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or err
        log.warning("could not build the native kernel %s (%s): using PyTorch's kernel",
                    name, str(detail).strip()[:300])
        return None


SOURCES = {"dw5_wgrad": DW5_WGRAD, "pool3": POOL3, "wsum": WSUM, "wsum_bn": WSUM_BN,
           "skip_pool": SKIP_POOL, "channel_matmul": CHANNEL_MATMUL}


def call(name: str, kernel: str, *tensors: torch.Tensor, sizes: tuple[int, ...]) -> None:
    """Run ``kernel`` of the built library ``name`` (``load(name)`` must have succeeded) on
    the tensors' memory (contiguous, in the layout the kernel reads) and the integer sizes."""
    lib = load(name)
    assert lib is not None, f"the native kernel {name} is not built"
    getattr(lib, kernel)(*(ctypes.c_void_p(t.data_ptr()) for t in tensors),
                         *(ctypes.c_long(v) for v in sizes))
