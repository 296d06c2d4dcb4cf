"""I2A on the five MiniPacman tasks with one environment model (Weber et al. 2017, Sec. 5,
Table 1, Fig. 6): I2A vs the copy-model agent vs the large standard agent, 3 seeds each.

The paper: I2A ahead of the standard agent on all five tasks, the copy model behind I2A on four,
the largest gaps on the sparse tasks (hunt, ambush, rush). One model, trained first on data from
a partly trained standard agent on `regular` [O] (the dynamics and the events are the same in
every task; only the reward weights differ) and cached in the workdir, serves all five: its
event classes are valued with each task's weights (`minipacman_event_spec`). Presets start from
`launch.agents.i2a_common.base_config()`:

- `smoke`: one task, 2 seeds, a few updates, tiny networks (seconds; CI).
- `default`: the five tasks, 3 seeds, depth 3, 1.6e5 frames per seed per agent (CPU; the
  estimated wall time is in agents/README.md).
- `full`: the paper's agent sizes for a GPU, 1.6e7 frames per seed per agent.
"""
import ml_collections

from launch.agents.configs import i2a_sokoban, sacd_base
from launch.claims import Claim

TASKS = ("minipacman-regular", "minipacman-avoid", "minipacman-hunt", "minipacman-ambush",
         "minipacman-rush")

REPORT = {
    "title": "I2A vs copy-model and large standard agents on the five MiniPacman tasks",
    "headline": tuple(f"final_return/{t}/{a}" for t in TASKS
                      for a in ("i2a", "copy", "standard")),
    "claims": tuple(
        Claim("Weber et al. 2017 (I2A), Table 1", f"I2A above the standard agent on {t}",
              f"final_return/{t}/i2a", f"final_return/{t}/standard", ">",
              anchor_name="standard") for t in TASKS) + tuple(
        Claim("Weber et al. 2017 (I2A), Table 1", f"I2A above the copy-model agent on {t}",
              f"final_return/{t}/i2a", f"final_return/{t}/copy", ">",
              anchor_name="copy model") for t in TASKS),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, ("smoke", "demo", "default", "full"))
  c = i2a_sokoban.get_config("default" if preset == "demo" else preset)
  del c.env
  del c.depths
  c.tasks = TASKS                  # MiniPacman tasks; the model is trained on the first one's
  c.agents = ("standard", "copy", "i2a")
  c.agent.updates_per_chunk = 100  # 16 x 5 x 100 = 8,000 frames per chunk
  c.agent.num_chunks = 20
  if preset == "smoke":
    c.tasks = ("minipacman-regular",)
    c.agent.updates_per_chunk = 3
    c.agent.num_chunks = 2
  elif preset == "full":
    c.agent.updates_per_chunk = 1_000
    c.agent.num_chunks = 100
  return c
