"""Shared pytest fixtures.

`x64` switches JAX to float64 for one test and restores the previous setting afterwards, so
closed-form comparisons run in double precision without leaking into other tests in the same
(xdist) worker.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield
