"""Host-side (not jittable) adapters for envpool: one interface, truncation apart from
termination, reward components beside the reward (SAC-D, MacGlashan et al. 2022)."""
from envs.host.envpool_env import (
                                   HostEnv,
                                   HostStep,
                                   atari_rom_path,
                                   count_distinct_sokoban_levels,
                                   sokoban_base_path,
                                   sokoban_levels_from_grid,
)
from envs.host.reward_components import component_names

__all__ = ["HostEnv", "HostStep", "atari_rom_path", "component_names",
           "count_distinct_sokoban_levels", "sokoban_base_path", "sokoban_levels_from_grid"]
