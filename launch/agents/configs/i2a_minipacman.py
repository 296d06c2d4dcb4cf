"""I2A on the five MiniPacman tasks with one environment model (Weber et al. 2017, Sec. 5,
Table 1, Fig. 6): I2A vs the copy-model agent vs the large standard agent, 3 seeds each.

The paper: I2A ahead of the standard agent on all five tasks, the copy model behind I2A on four,
the largest gaps on the sparse tasks (hunt, ambush, rush). One model, trained first on data from
a partly trained standard agent on `regular` [O] (the dynamics and the events are the same in
every task; only the reward weights differ) and cached in the workdir, serves all five: its
event classes are valued with each task's weights (`minipacman_event_spec`). Presets start from
`launch.agents.i2a_common.base_config()`:

- `smoke`: one task, 2 seeds, a few updates, tiny networks (seconds; CI).
- `default`: the five tasks, 3 seeds, depth 3, 3,200 frames per seed per agent and 100-step
  episodes (35.4 minutes measured on the shared 2 cores at load 5-7, 12 of them the
  environment model; a pipeline run, not a learning budget: see the comment in `get_config`).
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
  # [O] MiniPacman's symbolic planes are not one-hot (floor cells all off, a ghost on food
  # two planes on): a Bernoulli per plane (agents/i2a/env_model.py, `frame_likelihood`).
  c.model.frame_likelihood = "bernoulli"
  # [O] Greedy imagined frames keep a plane's value unless the model gives its change more than
  # 0.7: a ghost moves with probability 0.5-0.6 on levels 1-2, so an uncertain ghost stays put
  # (whole) instead of appearing in both cells or neither (`change_threshold`).
  c.model.change_threshold = 0.7
  if preset in ("default", "demo"):
    # [O] CPU budget: 16 x 5 x 40 = 3,200 frames per seed per agent, 100-step episodes (the
    # env's limit is 1,000: the evaluation rollout must hold two episodes), 8 evaluation
    # environments. On MiniPacman's 15x19 frames the model and encoder cost about 7x Sokoban
    # 7x7's per frame (285 cells against 49, 5 actions against 4). Measured (session 16, load
    # 5-7): 35.4 min in all, of which the model 12 min (1,000 Adam steps 654 s) and I2A about
    # 3 min per task for 3 seeds. This exercises the pipeline; it is not a learning budget
    # (A2C needs about 5e5 frames on regular, launch/agents/configs/a2c.py).
    c.model_chunks = 2             # 1,000 Adam steps at 3e-3 (1e-3 left Pacman's moves unsure)
    c.model_train.learning_rate = 3e-3
    c.agent.updates_per_chunk = 40
    c.agent.num_chunks = 1
    c.max_episode_steps = 100
    c.random_steps = 201
    c.random_envs = 8
  elif preset == "smoke":
    c.tasks = ("minipacman-regular",)
    c.agent.updates_per_chunk = 3
    c.agent.num_chunks = 2
  elif preset == "full":
    c.max_episode_steps = 0
    c.random_steps = 5_000
    c.agent.updates_per_chunk = 1_000
    c.agent.num_chunks = 100
  return c
