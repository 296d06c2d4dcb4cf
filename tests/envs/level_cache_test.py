"""The on-disk level cache returns what the generator returns, and never a stale or broken bank."""
import logging

import jax
import numpy as np
import pytest

from envs import level_cache, sokoban, sokoban_generator
from envs.sokoban_levels import Level


def _bank(n=3, h=5, w=6, seed=0):
  rng = np.random.default_rng(seed)
  return Level(rng.random((n, h, w)) < 0.3, rng.random((n, h, w)) < 0.1,
               rng.random((n, h, w)) < 0.1, rng.integers(0, 5, (n, 2)).astype(np.int32))


class _Counting:
  def __init__(self, bank):
    self.bank, self.calls = bank, 0

  def __call__(self):
    self.calls += 1
    return self.bank


def _equal(a, b):
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_second_call_reads_the_stored_bank(tmp_path, monkeypatch):
  monkeypatch.setenv(level_cache.CACHE_ENV, str(tmp_path))
  build = _Counting(_bank())
  first = level_cache.cached_bank("k", {"a": 1}, build, 3, (5, 6))
  second = level_cache.cached_bank("k", {"a": 1}, build, 3, (5, 6))
  assert build.calls == 1
  assert _equal(first, build.bank) and _equal(second, build.bank)
  assert len(list(tmp_path.glob("k-*.npz"))) == 1
  assert not list(tmp_path.glob("*.tmp"))  # the rename left no partial file


def test_key_changes_with_arguments_and_jax_version(monkeypatch):
  base = level_cache.bank_key("app_d3", {"height": 10, "seed": 0})
  assert base == level_cache.bank_key("app_d3", {"seed": 0, "height": 10})  # order-free
  assert base != level_cache.bank_key("app_d3", {"height": 10, "seed": 1})
  assert base != level_cache.bank_key("reverse_walk", {"height": 10, "seed": 0})
  monkeypatch.setattr(level_cache.jax, "__version__", "0.0.1")
  assert base != level_cache.bank_key("app_d3", {"height": 10, "seed": 0})


def test_key_changes_with_the_generator_source(tmp_path, monkeypatch):
  base = level_cache.bank_key("app_d3", {"seed": 0})
  fake = tmp_path / "envs"
  fake.mkdir()
  for name in level_cache._SOURCES:
    (fake / name).write_text("# another generator\n")
  monkeypatch.setattr(level_cache, "__file__", str(fake / "level_cache.py"))
  assert base != level_cache.bank_key("app_d3", {"seed": 0})


def test_broken_or_mis_shaped_file_is_rebuilt(tmp_path, monkeypatch):
  monkeypatch.setenv(level_cache.CACHE_ENV, str(tmp_path))
  path = tmp_path / f"k-{level_cache.bank_key('k', {})}.npz"
  path.write_bytes(b"not an npz")
  build = _Counting(_bank())
  assert _equal(level_cache.cached_bank("k", {}, build, 3, (5, 6)), build.bank)
  assert build.calls == 1
  # The broken file was replaced; a request for another count does not trust it.
  assert _equal(level_cache.cached_bank("k", {}, build, 3, (5, 6)), build.bank)
  assert build.calls == 1
  level_cache.cached_bank("k", {}, build, 4, (5, 6))
  assert build.calls == 2


def test_off_and_unwritable_directory_still_return_the_bank(tmp_path, monkeypatch, caplog):
  monkeypatch.setenv(level_cache.CACHE_ENV, "off")
  assert level_cache.cache_dir() is None
  build = _Counting(_bank())
  level_cache.cached_bank("k", {}, build, 3, (5, 6))
  level_cache.cached_bank("k", {}, build, 3, (5, 6))
  assert build.calls == 2
  blocker = tmp_path / "file"
  blocker.write_text("")
  monkeypatch.setenv(level_cache.CACHE_ENV, str(blocker / "sub"))  # a path under a file
  with caplog.at_level(logging.WARNING):
    out = level_cache.cached_bank("k", {}, build, 3, (5, 6))
  assert _equal(out, build.bank)
  assert "not writable" in caplog.text


@pytest.mark.parametrize("kind", ["app_d3", "reverse_walk"])
def test_cached_generated_bank_equals_the_generator(tmp_path, monkeypatch, kind):
  monkeypatch.setenv(level_cache.CACHE_ENV, str(tmp_path))
  if kind == "app_d3":
    fn = sokoban.generated_levels.__wrapped__  # past the per-process lru_cache
    config = sokoban_generator.GeneratorConfig(num_rooms=2, num_placements=2, max_visits=100)
    args = (6, 6, 1, 4, 3, config)
    direct = sokoban_generator.generate_bank(jax.random.PRNGKey(3), 4, 6, 6, 1, config, batch=4)
  else:
    fn = sokoban.default_levels.__wrapped__
    args = (6, 6, 1, 4)
    direct = sokoban.generate_bank(jax.random.PRNGKey(0), 4, 6, 6, 1)
  stored = fn(*args)
  assert len(list(tmp_path.glob(f"{kind}-*.npz"))) == 1
  again = fn(*args)
  assert _equal(stored, direct) and _equal(again, direct)
  assert [x.dtype for x in jax.tree.leaves(again)] == [x.dtype for x in jax.tree.leaves(direct)]
