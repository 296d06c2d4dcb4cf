"""Design diagnosis with SAC-D: LunarLanderContinuous with a mis-scaled fuel cost."""
import ml_collections

from launch.agents.configs import sacd_base
from launch.claims import Claim

REPORT = {
    "title": "SAC-D diagnosis: LunarLander with fuel cost x10 vs fixed weights",
    "headline": ("fuel_influence/misscaled", "fuel_influence/fixed", "fuel_value/misscaled",
                 "fuel_value/fixed", "task_return/misscaled", "task_return/fixed"),
    "demo": True,
    "claims": (
        Claim("MacGlashan et al. 2022 (SAC-D)", "reward influence exposes the mis-scaled fuel "
              "cost: fuel influence with fuel x10 above its influence at the original weights",
              "fuel_influence/misscaled", "fuel_influence/fixed", ">",
              anchor_name="original weights"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, ("smoke", "demo", "default", "restore", "full"))
  c = sacd_base.default_config()
  c.env = "LunarLanderContinuous-v2"  # envpool task id.
  c.fuel_components = ("main_engine", "side_engine")  # Components whose weight is wrong.
  c.misscale = 10.0              # The designer's mistake: fuel cost multiplied by this.
  c.num_seeds = 2                # SAC-D runs per variant.
  c.env_steps = 60_060           # Batched env steps per run (x num_envs transitions).
  c.buffer_size = 60_060         # Replay capacity (holds the whole default run).
  if preset == "smoke":
    sacd_base.smoke(c)
    c.num_seeds = 1
    c.steps_per_chunk = 150
    c.env_steps = 150
  elif preset == "demo":
    # The default's agent, task, fuel x10 and settings (5,000 random warm-up steps included);
    # shrinks to 1 seed per variant and 10,010 env steps per run (5 chunks, about 5,000
    # updates) instead of 2 seeds and 60,060. The fuel influence separates as soon as updates
    # start: in a 30,030-step run of this preset, the last-20% fuel influence up to 10k / 20k /
    # 30k steps was 0.19 / 0.20 / 0.25 (fuel x10) against 0.04 / 0.05 / 0.05 (original weights).
    # Measured at this preset (2026-12-03): 0.193 vs 0.040; 176 s wall, 80 s CPU at load 14-15.
    c.num_seeds = 1
    c.env_steps = 10_010
    c.buffer_size = 10_010
  elif preset == "full":
    sacd_base.full(c)
  elif preset == "restore":      # CPU budget at which the fixed agent can learn the task
    c.num_envs = 4               # (agents/README.md, "Design diagnosis"): 4 envs per update,
                                 # 4 x 200,200 = 800,800 transitions and 195,200 updates a run.
    c.env_steps = 200_200        # Batched env steps per run (20 chunks).
    c.steps_per_chunk = 10_010   # Fewer restarts: 4 abandoned episodes per 40,040 transitions.
    c.buffer_size = 1_000_000    # Holds the whole run (800,800 transitions).
  return c
