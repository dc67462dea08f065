"""Seeded cuRAND generators (PyCUDA's ``curandom``) for the random fillers and Dropout.

An op whose DeviceOption (or net) sets ``random_seed`` gets its own generator
seeded from it, so re-creating a seeded net replays its numbers, as Caffe2's
CUDAContext does; unseeded ops share one generator per GPU (building one
compiles cuRAND's module and initializes a state per GPU thread: costly). The
numbers differ from the CPU pack's (another generator), so only their
distribution can be compared.
"""
from __future__ import annotations

import weakref

import numpy as np
from pycuda import gpuarray
from pycuda.curandom import XORWOWRandomNumberGenerator

from c2ops_cuda import runtime


def _build(seed):
    seeds = np.random.default_rng(seed)

    def seed_getter(count):
        return gpuarray.to_gpu(seeds.integers(1, 2 ** 31 - 1, size=count, dtype=np.int32))

    return XORWOWRandomNumberGenerator(seed_getter=seed_getter)


def generator(op):
    """A cuRAND XORWOW generator for `op` (call once, in ``prepare``, with the op's GPU current)."""
    option = op.device_option
    ordinal = runtime.current()
    if not option.HasField("random_seed"):
        return runtime.device_object(("curand", None), lambda: _build(None))
    gen = _build(option.random_seed)
    # freed with the op's GPU current, whichever thread drops the op
    weakref.finalize(op, runtime.release_later, ordinal, gen)
    return gen


def uniform(gen, out):
    """Fill a float32/float64 GPUArray with draws from (0, 1]."""
    if out.size:
        gen.fill_uniform(out)


def normal(gen, out):
    if out.size:
        gen.fill_normal(out)
