"""I2A on a state-space environment model (Buesing et al. 2018, Sec. 5) on MiniPacman: the large
standard agent vs the copy-model agent (I2A's control: the same architecture, the identity for a
model) vs I2A with RAR (I2A's pixel-space model) vs I2A with an SSM (sSSM by default, imagining
in its latent state), and I2A-SSM with learning to query vs distillation.

B18 Sec. 5 (MS_PACMAN): I2A agents that query SSMs beat the model-free baseline, and training
the rollout policy by the agent's policy gradient ("learning to query") gives consistent,
modest gains over distillation. Presets start from `launch.agents.i2a_common.base_config()` and
take the MiniPacman budget of `launch/agents/configs/i2a_minipacman.py`:

- `smoke`: tiny networks and models, 2 seeds, a few updates (CI).
- `default`: `minipacman-regular`, 3 seeds, depth 3, 6,400 frames per seed per agent (16
  environments x 5 steps x 80 updates), 100-step episodes; the SSM 20 x 100 Adam steps on 16
  windows of 5 steps (its loss and KL logged after every chunk), RAR 2 x 500 steps. [O] CPU
  budget. Measured (session 17, 2 quiet cores, load 1-2): 21.0 min in all, of which RAR
  254 s (0.25 s per step, scanned), the SSM 344 s (0.17 s per step, a host loop), agents
  standard 9 s, copy 37 s, I2A-RAR 121 s, I2A-sSSM 241 s, learning to query 245 s (3 seeds
  each), plus compilation (39 s) and evaluation; with 600 SSM steps it was 16.1 min. A
  pipeline run, not a learning budget (A2C needs about 5e5 frames on regular); results in
  latent_dynamics/env_models/README.
- `full`: B18's MS_PACMAN for a GPU: `task = "mspacman"` (envpool's MsPacman-v5 as the
  environment models see it, 80x80 tiles of an 8-colour palette, through `envs.make`: the
  jitted trainers step it on the host, one call per step for the whole batch), the I2A paper's
  agent sizes, 1.6e7 frames per seed per agent, B18's SSM sizes with its (4, 2) space-to-depth,
  categorical tiles (the palette tiles are one-hot), episodes cut at 2,000 agent steps [O].
  `--config.task=minipacman-regular --config.ssm.frame_likelihood=bernoulli
  --config.ssm.factors="(1, 2)" --config.model.frame_likelihood=bernoulli
  --config.model.change_threshold=0.7` gives the MiniPacman run at the same sizes. Not run
  here (no GPU was lent).
"""
import ml_collections

from launch.agents.configs import i2a_minipacman, sacd_base
from launch.claims import Claim

AGENTS = ("standard", "i2a_copy", "i2a_rar", "i2a_ssm", "i2a_ssm_query")

REPORT = {
    "title": "I2A on a state-space model (sSSM) vs I2A on RAR vs the standard agent; learning to "
             "query vs distillation (MiniPacman regular)",
    "headline": tuple(f"final_return/{a}" for a in AGENTS),
    "claims": (
        Claim("Buesing et al. 2018, Sec. 5", "I2A with an SSM above the model-free (standard) "
              "agent", "final_return/i2a_ssm", "final_return/standard", ">",
              anchor_name="standard"),
        Claim("Weber et al. 2017 (I2A), Sec. 4.2's copy-model control, here for the SSM [O]",
              "I2A with an SSM above the same architecture with the copy model (its "
              "predictions, not the extra path, help)", "final_return/i2a_ssm",
              "final_return/i2a_copy", ">", anchor_name="copy model"),
        Claim("Buesing et al. 2018, Sec. 5", "learning to query above distillation",
              "final_return/i2a_ssm_query", "final_return/i2a_ssm", ">",
              anchor_name="distillation"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, ("smoke", "default", "full"))
  c = i2a_minipacman.get_config(preset)
  del c.tasks
  c.task = "minipacman-regular"     # A MiniPacman task or "mspacman" (models trained on its data).
  c.agents = AGENTS                  # Any of AGENTS.
  c.query_coef = 1.0                 # Weight of the learning-to-query term (i2a_ssm_query).
  # The SSM (latent_dynamics.env_models.EnvModelConfig fields); CPU-sized [O].
  c.ssm = ml_collections.ConfigDict(dict(
      kind="sSSM", embed_channels=32, state_channels=32, latent_channels=8, hidden=16,
      pool_features=16, decoder_channels=32, reward_hidden=16,
      factors=(1, 2),  # space-to-depth (f1, f2): (1, 2) on 15x19 tiles; B18's (4, 2) on 80x80
      # [O] MiniPacman's planes are not one-hot (an empty floor cell has none on): a Bernoulli
      # per plane, as the RAR's (`i2a_minipacman`'s `model.frame_likelihood`).
      frame_likelihood="bernoulli",
      # [O] Free bits (Kingma et al. 2016): the loss's KL per step is max(KL, 1 nat). Without
      # them the session-16 run's posterior collapsed (KL 25 -> 0.003 nats per step).
      free_nats=1.0))
  c.ssm_output = "latent"            # What imagination yields: "latent" (s_t) or "probs".
  c.ssm_train_length = 5             # Steps of the SSM's training windows (after 3 context).
  c.ssm_learning_rate = 5e-4
  c.ssm_batch_size = 16              # Windows per Adam step.
  c.ssm_steps_per_chunk = 100        # Adam steps per chunk (the loss is logged after each).
  c.ssm_chunks = 20                  # Adam steps = ssm_chunks x ssm_steps_per_chunk.
  if preset == "default":
    c.agent.updates_per_chunk = 80   # 16 x 5 x 80 = 6,400 frames per seed per agent
  elif preset == "smoke":
    c.ssm.update(embed_channels=4, state_channels=4, latent_channels=2, hidden=4,
                 pool_features=4, decoder_channels=4, reward_hidden=4)
    c.ssm_train_length = 2
    c.ssm_batch_size = 4
    c.ssm_steps_per_chunk = 5
    c.ssm_chunks = 1
  elif preset == "full":
    c.task = "mspacman"             # B18 Sec. 5's MS_PACMAN
    c.max_episode_steps = 2_000      # [O] agent steps (8,000 emulator frames) per episode
    c.model.frame_likelihood = "categorical"   # palette tiles are one-hot
    c.model.change_threshold = 0.5   # (Bernoulli's greedy rule only: back to its neutral value)
    c.ssm.update(embed_channels=64, state_channels=64, latent_channels=16, hidden=32,
                 pool_features=32, decoder_channels=64, reward_hidden=24,
                 frame_likelihood="categorical", factors=(4, 2))  # B18 App. A on 80x80
    c.ssm_train_length = 10
    c.ssm_batch_size = 32
    c.ssm_steps_per_chunk = 1_000
    c.ssm_chunks = 40
  return c

