"""The SAC / SAC-D settings shared by the sacd_* experiments; each config starts from these.

`default_config()` is the CPU-sized run every sacd experiment uses unless it says otherwise;
`smoke(c)` and `full(c)` change the shared fields for those presets (a config then changes its
own fields). The agent settings map onto `agents.sac.TrainConfig` in
`launch/agents/sacd_runs.train_config`.
"""
import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                     # First seed; run s uses seed + s (env and agent).
  c.num_envs = 1                 # Parallel environments per run.
  c.env_steps = 30_030           # Batched env steps per run (x num_envs transitions);
                                 # CPU-sized, not the paper's budget (see full). HalfCheetah
                                 # takes off after about 15k steps at these settings.
  c.steps_per_chunk = 2_002      # Env steps per checkpointed chunk (a multiple of log_every);
                                 # environments restart at its boundaries. 2 x 1001: two
                                 # 1000-step episodes plus envpool's reset steps fit.
  c.learning_starts = 5_000      # Env steps of uniform random actions before updates.
  c.updates_per_step = 1         # Gradient updates per env step (lax.scan).
  c.batch_size = 256             # Replay batch per update.
  c.buffer_size = 30_030         # Replay capacity (holds the whole default run).
  c.hidden_sizes = (64, 64)      # MLP widths (CPU-sized; full: 256, 256).
  c.learning_rate = 3e-4         # Adam step size of the policy.
  c.critic_learning_rate = 1e-3  # Adam step size of the critics (CleanRL's q_lr). The decisive
                                 # setting on HalfCheetah: with 3e-4 it barely learns in 30k
                                 # steps (agents/README.md, "HalfCheetah").
  c.alpha_learning_rate = 1e-3   # Adam step size of log(alpha) (CleanRL; alpha starts at 1.0).
  c.discount = 0.99              # gamma.
  c.tau = 0.005                  # Polyak rate of the target critics.
  c.influence_states = 64        # Replay states on which influence is measured.
  c.log_every = 286              # Env steps between logged update metrics.
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Seconds-long runs for CI. Every sacd smoke preset shares one agent and loop, so the tests
  compile one trainer (one learning rate, one discount)."""
  c.num_envs = 2
  c.steps_per_chunk = 200
  c.env_steps = 200
  c.learning_starts = 50
  c.batch_size = 32
  c.buffer_size = 2_000
  c.hidden_sizes = (32, 32)
  c.critic_learning_rate = 3e-4
  c.alpha_learning_rate = 3e-4
  c.influence_states = 16
  c.log_every = 25
  c.discount = 0.9
  return c


def full(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Ten times the default budget with the paper-sized networks (a GPU or a long CPU run)."""
  c.num_seeds = 3
  c.env_steps = 300_300
  c.steps_per_chunk = 10_010
  c.buffer_size = 1_000_000
  c.hidden_sizes = (256, 256)
  c.log_every = 1_001
  return c


def check_preset(preset: str, presets: tuple[str, ...] = ("smoke", "default", "full")) -> None:
  if preset not in presets:
    raise ValueError(f"unknown preset {preset!r}; expected {', '.join(presets[:-1])} or "
                     f"{presets[-1]}.")
