"""An on-disk cache of generated Sokoban level banks: a bank is generated once per machine.

Generating the default 1,024-level 10x10 pool takes 15-30 s of CPU (compile and search), and
every process that builds a Sokoban environment's `default_params` or `eval_params` pays it:
each launcher run, each notebook kernel, each test worker. The bank is a pure function of its
arguments, so it is stored after the first build and read back after that.

A file's name is a hash of everything the bank depends on: the arguments (shape, boxes, count,
seed, generator settings), the source of the generator modules (`sokoban_generator.py` and
`sokoban_levels.py`, so a change of the rules misses the old files), and the JAX version (its
PRNG streams may change between releases). A file that cannot be read, or holds arrays of the
wrong shape, is regenerated and replaced; a cache directory that cannot be written is logged
once and skipped, so the cache never changes a result, only the time it takes.

Where: `$ENVS_LEVEL_CACHE` if set (`off` or an empty value turns the cache off), else
`$XDG_CACHE_HOME/stochastic-graphs-monorepo/sokoban_levels` (`~/.cache/...` by default).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import tempfile
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from envs.sokoban_levels import Level

CACHE_ENV = "ENVS_LEVEL_CACHE"
_FIELDS = ("walls", "targets", "boxes", "player")
_SOURCES = ("sokoban_generator.py", "sokoban_levels.py")
_warned = set()


def cache_dir() -> pathlib.Path | None:
  """The cache directory, or None when `$ENVS_LEVEL_CACHE` turns the cache off."""
  value = os.environ.get(CACHE_ENV)
  if value is not None:
    return None if value.strip() in ("", "off") else pathlib.Path(value).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "stochastic-graphs-monorepo" / "sokoban_levels"


def bank_key(kind: str, spec: dict) -> str:
  """Hex digest naming a bank: `kind`, `spec` (JSON-able), the generator sources, JAX's version."""
  digest = hashlib.sha256()
  digest.update(json.dumps({"kind": kind, "spec": spec, "jax": jax.__version__},
                           sort_keys=True, default=repr).encode())
  here = pathlib.Path(__file__).parent
  for name in _SOURCES:
    digest.update((here / name).read_bytes())
  return digest.hexdigest()[:24]


def cached_bank(kind: str, spec: dict, build: Callable[[], Level],
                num_levels: int, shape: tuple[int, int]) -> Level:
  """`build()`, or the bank stored for `(kind, spec)` by an earlier call on this machine.

  `num_levels` and `shape` (height, width) check a stored file before it is trusted.
  """
  directory = cache_dir()
  if directory is None:
    return build()
  path = directory / f"{kind}-{bank_key(kind, spec)}.npz"
  stored = _read(path, num_levels, shape)
  if stored is not None:
    return stored
  bank = build()
  _write(path, bank)
  return bank


def _read(path: pathlib.Path, num_levels: int, shape: tuple[int, int]) -> Level | None:
  try:
    with np.load(path) as data:
      arrays = {name: data[name] for name in _FIELDS}
  except (OSError, KeyError, ValueError):
    return None  # missing or unreadable: regenerate
  grids = (num_levels, *shape)
  if any(arrays[name].shape != grids or arrays[name].dtype != bool
         for name in ("walls", "targets", "boxes")):
    return None
  if arrays["player"].shape != (num_levels, 2) or arrays["player"].dtype.kind != "i":
    return None
  return Level(*(jnp.asarray(arrays[name]) for name in _FIELDS))


def _write(path: pathlib.Path, bank: Level) -> None:
  tmp = None
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a reader in another process (a second test worker,
    # a parallel launcher) sees the whole file or none of it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **{name: np.asarray(getattr(bank, name)) for name in _FIELDS})
    os.replace(tmp, path)
  except OSError as err:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)
    if path.parent not in _warned:
      _warned.add(path.parent)
      logging.warning("Sokoban level cache %s not writable (%s); banks are regenerated per "
                      "process. Set %s to another directory or to 'off'.", path.parent, err,
                      CACHE_ENV)
