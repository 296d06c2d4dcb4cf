"""Config of launch.latent_dynamics.env_models: test log-likelihood per frame of RAR, dSSM-DET,
dSSM-VAE and sSSM over rollouts of 1-10 steps on MiniPacman and Sokoban frames, and on envpool's
MsPacman frames with `--config.envs=mspacman` (Buesing et al. 2018, Sec. 4.2).

Presets:
- `smoke`: tiny models, a few steps (CI; MsPacman at 16 x 16 if asked for).
- `default`: MiniPacman + Sokoban 7x7/2, the paper's model sizes (App. A), 3 x 200 Adam
  steps per model. Budget: under 45 minutes on 2 quiet cores. [O] Measured (session 17, 2
  quiet cores, load 1-2): 1 x 200 steps ran in 9.3 minutes in all, of which training 214 s
  (MiniPacman RAR), 30 / 43 / 45 s (its dSSM-DET / dSSM-VAE / sSSM, each a host loop of
  jitted steps) and 55 / 25 / 34 / 38 s (Sokoban's four); 3 x 200 is about 25 minutes.
- `full` (GPU): 20 x 1,000 steps per model, 64 x 1,000 recorded steps, all three
  environments (MsPacman at B18's 80 x 80, 8 colours).
"""
import ml_collections

from launch.claims import Claim

REPORT = {"title": "State-space environment models vs the autoregressive RAR: test "
                   "log-likelihood per frame over 1-10 step rollouts (Buesing et al. 2018)",
          "headline": ("minipacman/sSSM/ll_per_frame_T10", "minipacman/RAR/ll_per_frame_T10",
                       "sokoban/sSSM/ll_per_frame_T10", "sokoban/RAR/ll_per_frame_T10"),
          "claims": (
              Claim("Buesing et al. 2018", "the stochastic SSM models MiniPacman frames "
                    "better than the deterministic one (log-likelihood per frame over 10-step "
                    "rollouts, nats)", "minipacman/sSSM/ll_per_frame_T10",
                    "minipacman/dSSM-DET/ll_per_frame_T10", ">"),
          )}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of data collection, initialisation and training.
  c.envs = "minipacman,sokoban"  # Comma-separated: minipacman, sokoban, mspacman (envpool).
  c.models = "RAR,dSSM-DET,dSSM-VAE,sSSM"  # Comma-separated models (RAR: I2A's env model).
  c.sokoban_size = 7  # Sokoban room height = width (I2A's test size: 7x7, 2 boxes).
  c.sokoban_boxes = 2  # Boxes in the Sokoban rooms.
  c.length = 10  # T: steps after the 3 context frames (rollouts of 1..T steps are scored).
  c.train_length = 5  # Steps of the training windows (the ELBO's sequence length).
  c.num_envs = 32  # Environments recorded in parallel (uniform random policy) for training.
  c.collect_steps = 200  # Recorded steps per environment for training.
  c.test_envs = 16  # Environments recorded for the test set (another key).
  c.test_steps = 60  # Recorded steps per test environment.
  c.stride = 2  # Steps between window starts.
  c.num_test = 128  # Test windows scored (the first ones).
  c.eval_samples = 16  # K: importance samples of the latent models' log-likelihood bound.
  c.num_chunks = 3  # Chunks per model of the launcher's train loop (checkpoint after each).
  c.steps_per_chunk = 200  # Adam steps per chunk (SSMs: sequences; RAR: transitions).
  c.batch_size = 8  # SSMs: sequences per step (RAR: 10x as many transitions).
  c.learning_rate = 5e-4  # Adam's rate (all models).
  # Frame likelihood per environment, shared by every model of it: "categorical" per tile
  # where the planes are one-hot, [O] "bernoulli" per plane on MiniPacman, whose are not
  # (an eaten floor cell has no plane on; the categorical gives it zero loss).
  c.frame_likelihood = ml_collections.ConfigDict(dict(
      minipacman="bernoulli", sokoban="categorical", mspacman="categorical"))
  # MsPacman (envs.host.atari_frames): frames recorded once per policy and cached.
  # "random", the scripted "sticky" policy [O] and "a2c" (B18's partly trained agent: A2C
  # trained on envs.make("mspacman") for mspacman_agent.frames frames, then recorded).
  c.mspacman_policies = "random,sticky"
  c.mspacman_envs = 4  # Environments recorded per policy for training.
  c.mspacman_steps = 100  # Recorded steps per training environment.
  c.mspacman_test_envs = 2  # Environments recorded per policy for the test set.
  c.mspacman_test_steps = 40  # Recorded steps per test environment.
  c.mspacman_size = 80  # Frames are size x size (B18: 80 x 80).
  c.mspacman_colours = 8  # Palette colours (tile classes).
  c.mspacman_factors = (4, 2)  # The SSMs' space-to-depth factors on MsPacman (B18 App. A).
  c.mspacman_cache_dir = ""  # Folder of the frame caches; "": WORKDIR/data.
  # The "a2c" policy's agent (agents.a2c on envs.make("mspacman"), B18's "partly trained" [O]).
  c.mspacman_agent = ml_collections.ConfigDict(dict(
      frames=200_000,        # Training frames (agent steps x environments).
      num_envs=16, rollout_length=5, updates_per_chunk=250,
      max_steps=2_000,       # Episode limit in agent steps (4 emulator frames each) [O].
      conv_features=(16, 32), kernel_sizes=(3, 3), strides=(2, 2), hidden_size=128))
  # SSM sizes (latent_dynamics.env_models.EnvModelConfig); B18 App. A by default.
  c.ssm = ml_collections.ConfigDict(dict(
      embed_channels=64, state_channels=64, latent_channels=16, hidden=32, pool_features=32,
      decoder_channels=64, reward_hidden=24))
  # RAR sizes (agents.i2a.env_model.EnvModelConfig); I2A's App. B by default.
  c.rar = ml_collections.ConfigDict(dict(width=64, blocks=((16, 32, 64), (16, 32, 64)),
                                         frame_hidden=64, reward_hidden=64))
  if preset == "smoke":
    c.length, c.num_envs, c.collect_steps, c.test_envs, c.test_steps = 3, 4, 24, 2, 16
    c.train_length = 2
    c.num_test, c.eval_samples, c.num_chunks, c.steps_per_chunk, c.batch_size = 8, 2, 1, 3, 4
    c.ssm.update(embed_channels=8, state_channels=8, latent_channels=4, hidden=8,
                 pool_features=8, decoder_channels=8, reward_hidden=4)
    c.rar.update(width=8, blocks=((4, 4, 8),), frame_hidden=8, reward_hidden=8)
    c.mspacman_envs, c.mspacman_steps, c.mspacman_test_envs, c.mspacman_test_steps = 2, 24, 1, 16
    c.mspacman_size, c.mspacman_colours, c.mspacman_factors = 16, 5, (2, 2)
    c.mspacman_agent.update(frames=60, num_envs=2, rollout_length=3, updates_per_chunk=5,
                            max_steps=50, conv_features=(4,), kernel_sizes=(3,), strides=(2,),
                            hidden_size=8)
  elif preset == "full":
    c.num_envs, c.collect_steps, c.test_envs, c.test_steps = 64, 1000, 32, 200
    c.num_test, c.eval_samples, c.num_chunks, c.steps_per_chunk = 512, 64, 20, 1000
    c.batch_size, c.train_length = 32, 10
    c.envs = "minipacman,sokoban,mspacman"
    c.mspacman_policies = "random,a2c"  # B18: a random and a partly trained policy
    c.mspacman_agent.update(frames=2_000_000, num_envs=32, conv_features=(16, 32, 64),
                            kernel_sizes=(3, 3, 3), strides=(2, 2, 2), hidden_size=256)
    c.mspacman_envs, c.mspacman_steps, c.mspacman_test_envs, c.mspacman_test_steps = (
        32, 1000, 8, 200)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  return c
