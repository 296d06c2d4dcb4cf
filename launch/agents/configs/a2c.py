"""A2C (Mnih et al. 2016), the I2A paper's standard agent, on MiniPacman and Sokoban.

Weber et al. 2017 (I2A) train this model-free baseline on the five MiniPacman tasks (App. C) and
on Sokoban (App. D). Presets start from `agents.a2c.default_config()` (the agent's fields, in
`c.agent`) and change fields:

- `smoke`: one MiniPacman task, 2 seeds, a few updates (seconds; CI).
- `default`: the seven environments, 3 seeds each, sized for 2 shared CPU cores (minutes per
  environment; agents/README.md, "A2C results", has the measured wall times), with
  per-environment changes in `c.env_overrides` (hunt's horizon, the Sokoban budgets).
- `full`: the I2A paper's scale for a GPU: 32 environments per seed, conv torso (16, 32, 64)
  channels, 256 hidden units, 1e7-2e7 frames per run (I2A Fig. 3 and 4 plot up to 1e9 frames
  of their much larger A3C-style runs; this budget is ours).

Sokoban trains on the level stream (a new generated level every episode, as the paper trains)
in every preset, except 10x10/4 at the `default`, which trains on the 1,024-level pool because
generating its levels on 2 CPU cores would take over an hour.
"""
import ml_collections

from agents import a2c
from launch.agents.configs import sacd_base
from launch.claims import Claim

MINIPACMAN = ("minipacman-regular", "minipacman-avoid", "minipacman-hunt", "minipacman-ambush",
              "minipacman-rush")
SOKOBAN = ("sokoban-7x7-2", "sokoban-10x10-4")  # sokoban-<height>x<width>-<boxes>

REPORT = {
    "title": "A2C on MiniPacman and Sokoban: final return vs a uniformly random policy",
    "headline": tuple(f"{what}/{env}" for env in MINIPACMAN + SOKOBAN
                      for what in ("final_return", "random_return", "margin_se")),
    "claims": tuple(
        Claim("Weber et al. 2017 (I2A, standard agent)",
              f"A2C learns {env}: final return above a uniformly random policy's by more than "
              "5 standard errors", f"margin_se/{env}", 5.0, ">", anchor_name="5 SE")
        for env in MINIPACMAN + SOKOBAN[:1]),
}


def agent_fields(**overrides) -> ml_collections.ConfigDict:
  """`agents.a2c.default_config()` as a ConfigDict (the fields of `A2CConfig`)."""
  config = a2c.default_config(**overrides)
  return ml_collections.ConfigDict({f: getattr(config, f)
                                    for f in config.__dataclass_fields__})


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, ("smoke", "demo", "default", "full"))
  c = ml_collections.ConfigDict()
  c.seed = 0                      # Key of seed s: fold_in(key(seed), s).
  c.num_seeds = 3                 # Seeds per environment, trained together under jax.vmap.
  c.envs = MINIPACMAN + SOKOBAN   # One training loop per environment (resumable by name).
  c.observation = "symbolic"      # MiniPacman / Sokoban observation ("symbolic" or "rgb").
  # Sokoban's levels: "stream" (a new generated level every episode, the I2A paper's rule:
  # `sokoban_stream_levels` levels generated per seed before every chunk; resets that find none
  # left play a pool level and are counted in the `stream_dry` metric; evaluation on the
  # held-out bank), "pool" (1,024 generated levels, repeating) or "fresh" (the generator inside
  # every reset: correct but hundreds of times slower on a CPU). A Sokoban entry of
  # `env_overrides` may set these three fields for its environment.
  c.sokoban_levels = "stream"
  c.sokoban_stream_levels = 256   # Levels per seed per chunk (the ring holds twice as many).
  c.sokoban_stream_batch = 64     # Levels per batched search (64: fastest on the 2-core CPU).
  c.final_fraction = 0.2          # Final return: episodes of the last 20% of updates.
  c.curve_points = 20             # Points of the return and solve-rate curves.
  c.max_episode_steps = 0         # Time limit of the episodes (params.max_steps); 0: the env's.
  c.random_steps = 2_001          # Evaluation steps per environment (at least 2 x the limit + 1).
  c.random_envs = 16              # Environments per seed of the evaluation (final and uniform).
  # CPU-sized agent: one conv layer, small dense layer, 16 environments per seed; 4.8e5 frames
  # per seed (40 chunks x 150 updates x 16 x 5). Learning rate and budget: agents/README.md,
  # "A2C results" (1e-3 and 1.2e5 frames did not learn enough).
  c.agent = agent_fields(
      num_envs=16, rollout_length=5, updates_per_chunk=150, num_chunks=40,
      conv_features=(16,), kernel_sizes=(3,), strides=(2,), hidden_size=64,
      learning_rate=2e-3, entropy_coef=0.01, advantage="gae", gae_lambda=0.95)
  # Per-environment changes to `c.agent` (jumanji's agent config + per-environment overrides):
  # {tag with "-" written "_": {A2CConfig field: value}}. Budgets and settings per environment:
  # agents/README.md, "A2C results". From the command line:
  # --config.env_overrides.minipacman_hunt.num_chunks=100.
  c.env_overrides = ml_collections.ConfigDict({
      # Hunt pays only for pills (+1) and ghosts (+10), and death (-20) comes in every episode
      # shorter than the time limit: at gamma 0.99 the policy learned to put death off, which
      # leaves the undiscounted return unchanged, and collapsed (entropy 0.005). A shorter
      # horizon (0.9) aims it at the pills and ghosts near by; rewards x0.3 keep the entropy
      # bonus from being swamped. 2.9e6 frames per seed.
      "minipacman_hunt": {"discount": 0.9, "reward_scale": 0.3, "num_chunks": 240},
      # Rush learns late and the seeds take off at different times (one at about 5.5e6 frames):
      # 6.6e6 frames per seed, the most that fits about 30 minutes on the 2 cores.
      "minipacman_rush": {"num_chunks": 550},
      "sokoban_7x7_2": {"num_chunks": 400},      # 4.8e6 frames per seed, about 20 minutes
      # 10x10 levels take 4x as long to generate: on the stream a chunk costs 10x the pool's
      # (benchmarks/agents_a2c_sokoban_levels.py), over an hour for this budget on the CPU.
      "sokoban_10x10_4": {"num_chunks": 400, "sokoban_levels": "pool"},
  })
  if preset == "smoke":
    c.envs = ("minipacman-regular",)
    c.num_seeds = 2
    c.curve_points = 2
    c.max_episode_steps = 20
    c.random_steps = 41
    c.random_envs = 8
    c.agent.num_envs = 4
    c.agent.updates_per_chunk = 5
    c.agent.num_chunks = 2
    c.agent.hidden_size = 16
    c.agent.conv_features = (4,)
    c.env_overrides = ml_collections.ConfigDict()
  elif preset == "demo":
    c.envs = ("minipacman-regular", "sokoban-7x7-2")
    c.agent.num_chunks = 20
  elif preset == "full":
    c.sokoban_stream_levels = 4096   # 1.6e5 frames per chunk: about 1,500-5,000 episodes
    c.sokoban_stream_batch = 1024    # an accelerator wants large batches
    c.random_steps = 5_000
    c.agent.num_envs = 32
    c.agent.rollout_length = 5
    c.agent.updates_per_chunk = 1_000
    c.agent.num_chunks = 100      # 1.6e7 frames per seed
    c.agent.conv_features = (16, 32, 64)
    c.agent.kernel_sizes = (3, 3, 3)
    c.agent.strides = (1, 1, 2)
    c.agent.hidden_size = 256
    c.agent.learning_rate = 7e-4
    c.env_overrides = ml_collections.ConfigDict()
  return c
