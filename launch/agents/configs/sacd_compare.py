"""SAC vs SAC-D (MacGlashan et al. 2022): returns over environment steps on envpool tasks."""
import ml_collections

from launch.agents.configs import sacd_base

REPORT = {
    "title": "SAC vs SAC-D: final returns (SAC-D should match SAC)",
    "headline": ("final_return/LunarLanderContinuous-v2/sac",
                 "final_return/LunarLanderContinuous-v2/sac_d",
                 "difference_in_sac_se/LunarLanderContinuous-v2"),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset)
  c = sacd_base.default_config()
  c.envs = ("HalfCheetah-v4", "Hopper-v4", "LunarLanderContinuous-v2")  # envpool task ids.
  c.agents = ("sac", "sac_d")    # Agents compared.
  c.num_seeds = 3                # Independent runs per (env, agent).
  c.return_window = 2_002        # Transitions per point of the return curve.
  if preset == "smoke":
    sacd_base.smoke(c)
    c.envs = ("LunarLanderContinuous-v2",)
    c.num_seeds = 1
    c.return_window = 200
  elif preset == "full":
    sacd_base.full(c)
    c.return_window = 10_000
  return c
