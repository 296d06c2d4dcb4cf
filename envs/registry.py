"""`envs.make(name, **kwargs) -> (env, env_params)`: the JAX environments by name (as gymnax).

Names:

    minipacman-regular, minipacman-avoid, minipacman-hunt, minipacman-ambush, minipacman-rush
        MiniPacman (I2A, Weber et al. 2017, App. C), one per task of `envs.minipacman.TASKS`;
        kwargs: observation, max_ghosts.
    sokoban       Sokoban (I2A App. D); kwargs: height, width, num_boxes (4 in I2A), observation.
    po-sokoban    PO-Sokoban (CF-GPS, Buesing et al. 2019); kwargs as Sokoban's.
    maze          Maze (IBP, Pascanu et al. 2017); kwargs: cells.
    spaceship     Spaceship (IBP; continuous thrust); kwargs: num_planets, glide_steps.
    mspacman      envpool's MsPacman-v5 as B18's environment models see it (80x80 palette
                  tiles), host-stepped behind the same signature through callbacks
                  (`envs.host.jax_env`: jit, scan and vmap work; no grad, no bit-exact resume);
                  kwargs: size, num_colours, seed, max_steps. Needs envpool and its ROM.

`kwargs` go to the environment's constructor; `params` (a dict of field values) replaces fields
of its `default_params`, e.g. `make("sokoban", height=7, width=7, num_boxes=2,
params={"max_steps": 60})`. An unknown name raises a `ValueError` listing the known ones; an
unknown keyword raises a `TypeError` naming it and the environment.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from envs.maze import Maze
from envs.minipacman import TASKS, MiniPacman
from envs.po_sokoban import POSokoban
from envs.sokoban import Sokoban
from envs.spaceship import Spaceship


def _minipacman(task: str) -> Callable[..., MiniPacman]:
  def build(**kwargs) -> MiniPacman:
    return MiniPacman(task=task, **kwargs)
  build.__signature__ = inspect.Signature(
      [p for name, p in inspect.signature(MiniPacman).parameters.items() if name != "task"])
  return build


def _mspacman(size: int = 80, num_colours: int = 8, seed: int = 0, max_steps: int = 0):
  from envs.host import jax_env  # noqa: PLC0415  (envpool, host side: imported on use)

  return jax_env.mspacman(max_steps, size=size, num_colours=num_colours, seed=seed)


REGISTRY: dict[str, Callable[..., Any]] = {
    **{f"minipacman-{task}": _minipacman(task) for task in TASKS},
    "sokoban": Sokoban,
    "po-sokoban": POSokoban,
    "maze": Maze,
    "spaceship": Spaceship,
    "mspacman": _mspacman,
}


def registered_environments() -> tuple[str, ...]:
  """The names `make` accepts, in registration order."""
  return tuple(REGISTRY)


def make(name: str, params: Mapping[str, Any] | None = None, **kwargs) -> tuple[Any, Any]:
  """The environment `name` built with `kwargs`, and its params (`params` fields replaced).

  Raises:
    ValueError: `name` is not registered (the message lists the known names).
    TypeError: a keyword the environment's constructor or params do not take.
  """
  if name not in REGISTRY:
    raise ValueError(f"unknown environment {name!r}; known environments: "
                     f"{', '.join(REGISTRY)}.")
  build = REGISTRY[name]
  accepted = inspect.signature(build).parameters
  unknown = sorted(set(kwargs) - set(accepted))
  if unknown:
    raise TypeError(f"environment {name!r} takes no keyword(s) {unknown}; it takes "
                    f"{sorted(accepted)}.")
  env = build(**kwargs)
  env_params = env.default_params
  if params:
    fields = set(getattr(env_params, "__dataclass_fields__", {}))
    bad = sorted(set(params) - fields)
    if bad:
      raise TypeError(f"environment {name!r}: params have no field(s) {bad}; fields: "
                      f"{sorted(fields)}.")
    env_params = env_params.replace(**params)
  return env, env_params
