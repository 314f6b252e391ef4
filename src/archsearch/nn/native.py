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

log = logging.getLogger(__name__)

FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c99")

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
    digest = hashlib.sha256("\0".join((source, *FLAGS, compiler, cpu_fingerprint()))
                            .encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}-{digest}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                src = Path(tmp) / f"{name}.c"
                src.write_text(source)
                built = Path(tmp) / target.name
                subprocess.run([compiler, *FLAGS, str(src), "-o", str(built)], check=True,
                               capture_output=True, text=True, timeout=120)
                os.replace(built, target)  # atomic: a racing process sees all or nothing
            log.info("built the native kernel %s into %s", name, target)
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or err
        log.warning("could not build the native kernel %s (%s): using PyTorch's kernel",
                    name, str(detail).strip()[:300])
        return None


SOURCES = {"dw5_wgrad": DW5_WGRAD}
