"""SAC-D reward influence over training and per-component values vs observed returns."""
import ml_collections

from launch.agents.configs import sacd_base

REPORT = {
    "title": "SAC-D reward influence and per-component value predictions",
    "headline": ("influence/LunarLanderContinuous-v2/main_engine",
                 "influence/LunarLanderContinuous-v2/position",
                 "value_predicted/LunarLanderContinuous-v2/main_engine",
                 "value_observed/LunarLanderContinuous-v2/main_engine"),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset)
  c = sacd_base.default_config()
  c.envs = ("HalfCheetah-v4", "Hopper-v4", "LunarLanderContinuous-v2")  # envpool task ids.
  c.num_seeds = 1                # SAC-D runs per environment.
  c.eval_steps = 2_000           # Env steps of the final rollout comparing values and returns.
  if preset == "smoke":
    sacd_base.smoke(c)           # discount 0.9: a 300-step rollout completes the tails.
    c.envs = ("LunarLanderContinuous-v2",)
    c.eval_steps = 300
  elif preset == "full":
    sacd_base.full(c)
    c.eval_steps = 5_000
  return c
