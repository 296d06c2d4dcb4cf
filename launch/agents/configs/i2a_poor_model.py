"""Poor model vs good model: I2A vs Monte-Carlo search with the same model (Weber et al. 2017,
Sec. 4.2, Fig. 4 right: with a poor model I2A keeps its performance, Monte-Carlo search
collapses).

Both models are the same network trained on the same data from a partly trained standard
agent; the poor one gets `poor_model_chunks` training chunks instead of `model_chunks` [O] (the
paper's poor model is a worse-trained model with more errors; ours is trained far less, and its
held-out multi-step accuracy is reported beside the good one's). The Monte-Carlo agent
(`agents.i2a.mc_search`) uses the trained large standard agent of this run as its rollout policy
and bootstrap value. Presets start from `launch.agents.i2a_common.base_config()`:

- `smoke`: 2 seeds, a few updates, tiny networks (seconds; CI).
- `default`: Sokoban 7x7/2, 3 seeds, depth 3, 9.6e4 frames per seed per agent (about 42
  minutes estimated on the shared 2 cores).
- `full`: 10x10/4 at the paper's agent sizes for a GPU.
"""
import ml_collections

from launch.agents.configs import i2a_sokoban, sacd_base
from launch.claims import Claim

REPORT = {
    "title": "Poor vs good environment model: I2A and Monte-Carlo search (Sokoban)",
    "headline": ("solve_rate/i2a_good", "solve_rate/i2a_poor", "solve_rate/mc_good",
                 "solve_rate/mc_poor", "solve_rate/standard", "model_frame_accuracy_k5/good",
                 "model_frame_accuracy_k5/poor"),
    "claims": (
        Claim("Weber et al. 2017 (I2A), Fig. 4", "Monte-Carlo search collapses with the poor "
              "model: its solve rate falls below its good-model one", "solve_rate/mc_poor",
              "solve_rate/mc_good", "<", anchor_name="MC, good model"),
        Claim("Weber et al. 2017 (I2A), Fig. 4", "I2A with the poor model stays above "
              "Monte-Carlo search with the poor model", "solve_rate/i2a_poor",
              "solve_rate/mc_poor", ">", anchor_name="MC, poor model"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, ("smoke", "demo", "default", "full"))
  c = i2a_sokoban.get_config("default" if preset == "demo" else preset)
  del c.depths
  del c.agents
  c.poor_model_chunks = 1          # Training chunks of the poor model (good: model_chunks).
  c.poor_model_steps = 100         # Adam steps of the poor model's one chunk [O].
  c.mc_rollouts = 4                # Monte-Carlo rollouts per action.
  c.mc_depth = 3                   # Monte-Carlo rollout depth (I2A: c.net.depth).
  if preset in ("default", "demo"):
    # 3 agents trained (standard, I2A good, I2A poor: 9.6e4 frames per seed each, about 30
    # minutes at the benchmark's rates) + 2 Monte-Carlo evaluations (about 3 minutes each)
    # + the data agent and the models (about 4 minutes): about 42 minutes.
    c.agent.num_chunks = 6
  if preset == "smoke":
    c.poor_model_steps = 2
    c.mc_rollouts = 2
    c.mc_depth = 2
    c.net.depth = 2
  return c
