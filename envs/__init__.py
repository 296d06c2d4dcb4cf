"""JAX-native environments of the agent papers, and envpool adapters.

- Sokoban and MiniPacman: Weber et al. 2017, *Imagination-augmented agents* (I2A), App. C-D.
- Spaceship and Maze: Pascanu et al. 2017, *Learning model-based planning from scratch* (IBP).
- PO-Sokoban: Buesing et al. 2019, *Woulda, coulda, shoulda: counterfactually-guided policy
  search* (CF-GPS).
- `envs.host`: envpool's Atari, MuJoCo, LunarLander and Sokoban behind one host-side interface,
  with reward components for value decomposition (MacGlashan et al. 2022, SAC-D).

Every JAX environment follows the gymnax 1.0 signature (`reset(key, params) -> (obs, state)`,
`step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`) with
automatic reset, and is jit- and vmap-able. `envs.make(name, **kwargs)` builds one by name
(`envs.registry`); `envs.wrappers` adds episode statistics.
"""
from envs import sokoban_generator, spaces
from envs.environment import Environment
from envs.maze import Maze, MazeParams, MazeState
from envs.minipacman import (
                             EVENTS,
                             TASK_WEIGHTS,
                             TASKS,
                             MiniPacman,
                             MiniPacmanParams,
                             MiniPacmanState,
)
from envs.po_sokoban import POSokoban, POSokobanParams
from envs.registry import make, registered_environments
from envs.sokoban import Sokoban, SokobanParams, SokobanState
from envs.sokoban_levels import (
                             Level,
                             format_level,
                             generate_bank,
                             generate_level,
                             load_levels,
                             make_bank,
                             parse_level,
                             parse_levels,
                             save_levels,
                             solve_level,
                             validate_level,
)
from envs.spaceship import Spaceship, SpaceshipParams, SpaceshipState

__all__ = [
    "EVENTS", "Environment", "Level", "Maze", "MazeParams", "MazeState", "MiniPacman",
    "MiniPacmanParams", "MiniPacmanState", "POSokoban", "POSokobanParams", "Sokoban",
    "SokobanParams", "SokobanState", "Spaceship", "SpaceshipParams", "SpaceshipState", "TASKS",
    "TASK_WEIGHTS", "format_level", "generate_bank", "generate_level", "load_levels",
    "make", "make_bank", "parse_level", "parse_levels", "registered_environments", "save_levels",
    "sokoban_generator", "solve_level", "spaces", "validate_level",
]
