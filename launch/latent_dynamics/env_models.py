"""Test log-likelihood per frame of learned environment models over rollouts of 1-10 steps
(Buesing et al. 2018, Sec. 4.2, on our symbolic MiniPacman and Sokoban frames, and on envpool's
MsPacman frames, `--config.envs=mspacman`).

For each environment: transitions of a uniform random policy are recorded (training and test
sets from different keys, `agents.i2a.env_model_train.collect_transitions`), cut into windows
of 3 context frames and `train_length` (training) or `length` (test) steps that lie inside
one episode (`latent_dynamics.env_models.data`), and each model is trained on the training
windows ([O] shorter than the test windows: a training step costs in proportion to the
window, and the filtering ELBO's rollouts under the prior are scored on the longer ones):

- RAR: I2A's environment model (`agents.i2a.env_model`), trained on the transitions; its
  log-likelihood of `o_{1:t}` given `o_0` and the actions is exact (teacher forcing: the true
  frame is fed back), the sum of its per-tile (or per-plane) log-probabilities.
- dSSM-DET (exact), dSSM-VAE and sSSM (`latent_dynamics.env_models`), trained by the ELBO;
  their log-likelihood of `o_{1:t}` given `o_{-2:0}` and the actions is bounded by the
  importance-weighted bound of `eval_samples` posterior paths (`frame_log_likelihood`).

Every model of an environment scores frames under one likelihood, `config.frame_likelihood`
per environment: a categorical per tile where the planes are one-hot (Sokoban, MsPacman's
palette tiles), [O] a Bernoulli per plane on MiniPacman, whose planes are not (an eaten-food
floor cell has every plane off, a ghost on food two on; under the categorical an all-off tile
costs nothing, so its floor went untrained: `agents/i2a/env_model.py`).

MsPacman (B18 Sec. 4's MS_PACMAN): frames of envpool's `MsPacman-v5` recorded once per policy
of `config.mspacman_policies` ("random"; "a2c", B18's partly trained agent: A2C trained in this
run on `envs.make("mspacman")` for `config.mspacman_agent.frames` frames, the loop
`mspacman_agent`, then recorded through `envs.host.jax_env.record_policy_frames`; and the
scripted "sticky" stand-in [O]: `envs.host.atari_frames`), downsampled to `mspacman_size`
squared and quantised to `mspacman_colours` palette colours (categorical tiles, so every model's
likelihood is unchanged), cached in `mspacman_cache_dir` (default `WORKDIR/data`; a file
recorded under another spec or corrupted is refused by name). Training and test sets are
recorded with different seeds; the reward classes of RAR are the distinct rewards recorded.
The SSMs use `mspacman_factors` (B18's (4, 2) space-to-depth on pixels).

Reported: `<env>/<model>/ll_per_frame_T<t>` = mean over test windows of `log p(o_{1:t}) / t`
(nats per frame, frames only) for `t = 1..length`, and a figure per environment of one test
window's true frames beside each model's greedy rollout (argmax tiles, a tile with no plane
on drawn as its own colour; RAR feeds its greedy frames back, the SSMs roll out under their
prior).
"""
import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import envs  # noqa: E402
from agents import a2c  # noqa: E402
from agents.i2a import env_model as rar_lib  # noqa: E402
from agents.i2a import env_model_train as rar_train  # noqa: E402
from envs.host import atari_frames, jax_env  # noqa: E402
from latent_dynamics import env_models  # noqa: E402
from latent_dynamics.env_models import data as data_lib  # noqa: E402
from latent_dynamics.env_models import train as ssm_train  # noqa: E402
from launch import app  # noqa: E402

ENVS = ("minipacman", "sokoban", "mspacman")
MODELS = ("RAR",) + env_models.KINDS


def make_env(name: str, config):
  """`(env, env_params, reward_spec)` of environment `name`."""
  if name == "minipacman":
    env, params = envs.make("minipacman-regular")
    return env, params, rar_lib.minipacman_event_spec(params)
  if name == "sokoban":
    env, params = envs.make("sokoban", height=config.sokoban_size, width=config.sokoban_size,
                            num_boxes=config.sokoban_boxes)
    return env, params, rar_lib.sokoban_reward_spec(params)
  raise ValueError(f"config.envs: unknown environment {name!r}; expected one of {ENVS}.")


def mspacman_recordings(config, workdir, split: str, run: app.Run | None = None) -> list:
  """The cached (or newly recorded) MsPacman `Frames` of every policy for `split` (module doc).
  The "a2c" policy's agent is trained in `run` (resumable loop `mspacman_agent`) when a split
  is not cached yet."""
  policies = parse_list(config.mspacman_policies, atari_frames.POLICIES, "mspacman_policies")
  envs_, steps = ((config.mspacman_envs, config.mspacman_steps) if split == "train" else
                  (config.mspacman_test_envs, config.mspacman_test_steps))
  folder = config.mspacman_cache_dir or str(workdir / "data")
  parts = []
  for i, policy in enumerate(policies):
    spec = atari_frames.FramesSpec(
        policy=policy, num_envs=int(envs_), num_steps=int(steps), size=int(config.mspacman_size),
        num_colours=int(config.mspacman_colours),
        seed=int(config.seed) * 1000 + 10 * i + (0 if split == "train" else 1))
    if policy != "a2c":
      path = f"{folder}/mspacman_{policy}_{split}_s{spec.size}_k{spec.num_colours}.npz"
      parts.append(atari_frames.load_or_record(path, spec))
      continue
    frames = int(config.mspacman_agent.frames)
    path = (f"{folder}/mspacman_a2c{frames}_{split}_s{spec.size}_k{spec.num_colours}.npz")
    if os.path.exists(path):
      parts.append(atari_frames.load(path, spec))
      continue
    if run is None:
      raise ValueError(f"no cached a2c recording {path}: the agent is trained in a run "
                       "(mspacman_recordings(..., run=run))")
    env, policy_fn = mspacman_agent(run, config)
    rec = jax_env.record_policy_frames(env, policy_fn, jax.random.key(spec.seed), spec.num_envs,
                                       spec.num_steps)
    if run.is_writer:
      os.makedirs(folder, exist_ok=True)
      atari_frames.save(path, rec, spec)
    parts.append(rec)
  return parts


_AGENTS: dict = {}


def mspacman_agent(run: app.Run, config):
  """`(env, policy_fn)`: B18's partly trained agent for the "a2c" recordings, A2C
  (`agents.a2c`) trained for `config.mspacman_agent.frames` frames on `envs.make("mspacman")`
  (the resumable loop `mspacman_agent`; one agent per run); `env` is the palette environment
  the recordings are taken in (its own envpool batches)."""
  memo = (id(run), str(run.workdir))
  if memo in _AGENTS:
    return _AGENTS[memo]
  ac = config.mspacman_agent
  env, params = envs.make("mspacman", size=int(config.mspacman_size),
                          num_colours=int(config.mspacman_colours), seed=int(config.seed),
                          params={"max_steps": int(ac.max_steps)})
  per_chunk = int(ac.num_envs) * int(ac.rollout_length) * int(ac.updates_per_chunk)
  chunks = max(1, -(-int(ac.frames) // per_chunk))
  cfg = a2c.default_config(num_envs=int(ac.num_envs), rollout_length=int(ac.rollout_length),
                           updates_per_chunk=int(ac.updates_per_chunk), num_chunks=chunks,
                           conv_features=tuple(ac.conv_features),
                           kernel_sizes=tuple(ac.kernel_sizes), strides=tuple(ac.strides),
                           hidden_size=int(ac.hidden_size))
  trainer = a2c.make_trainer(cfg, env, params, env_name="mspacman")
  state = run.train_loop(trainer.init, trainer.chunk, chunks, name="mspacman_agent",
                         seed_keys=jax.random.split(jax.random.key(int(config.seed) + 7), 1))
  agent_params = jax.tree.map(lambda x: x[0], jax.device_get(state.params))
  _AGENTS[memo] = (env, lambda k, obs: trainer.policy(agent_params, k, obs))
  return _AGENTS[memo]


def mspacman_data(config, workdir, run: app.Run | None = None):
  """`(train, test, reward_spec)`: `[T, B]` transitions of the recorded MsPacman frames, every
  policy's environments side by side, all on the palette of the first training recording
  (each recording quantises to its own); the reward classes are the distinct rewards."""
  train, test = (mspacman_recordings(config, workdir, s, run) for s in ("train", "test"))
  base = train[0].palette
  k = base.shape[0]

  def transitions(parts):
    parts = [p if np.array_equal(p.palette, base)
             else p._replace(obs=atari_frames.quantise(p.palette[p.obs], base)) for p in parts]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=1)  # noqa: E731
    obs = atari_frames.one_hot(cat("obs"), k)
    reward = cat("reward")
    return rar_lib.Transitions(obs[:-1], cat("action"), obs[1:], reward,
                               np.zeros(reward.shape, np.int32), cat("frame_valid"))

  train, test = transitions(train), transitions(test)
  values = tuple(float(v) for v in np.unique(np.concatenate(
      [np.ravel(train.reward), np.ravel(test.reward), [0.0]])))
  spec = rar_lib.RewardSpec(values, rar_lib.nearest_value_classes(values), "mspacman")
  label = lambda t: t._replace(reward_class=np.asarray(spec.class_fn(t.reward)))  # noqa: E731
  return label(train), label(test), spec


def parse_list(value: str, allowed: tuple, field: str) -> list:
  items = [v.strip() for v in value.split(",") if v.strip()]
  bad = [v for v in items if v not in allowed]
  if not items or bad:
    raise ValueError(f"config.{field} must list some of {allowed}; got {value!r}.")
  return items


def frame_likelihood(config, env_name: str) -> str:
  """The frame likelihood every model of `env_name` is trained and scored under."""
  value = config.frame_likelihood.get(env_name)
  if value not in rar_lib.FRAME_LIKELIHOODS:
    raise ValueError(f"config.frame_likelihood.{env_name} must be one of "
                     f"{rar_lib.FRAME_LIKELIHOODS}; got {value!r}.")
  return value


def tiles(planes, likelihood: str = "bernoulli") -> np.ndarray:
  """`[..., H, W, C]` planes (0/1 or probabilities) -> `[..., H, W]` tile indices for the
  figure: the most likely plane; under "bernoulli", `C` where no plane is above 1/2
  (MiniPacman's eaten floor)."""
  planes = np.asarray(planes)
  if likelihood == "categorical":
    return np.argmax(planes, -1)
  return np.where(planes.max(-1) > 0.5, np.argmax(planes, -1), planes.shape[-1])


def rar_prefix_ll(model, params, seqs) -> np.ndarray:
  """`[N, T]`: exact `log p(o_{1:t} | o_0, a)` of I2A's model (teacher forcing), under the
  model's own frame likelihood."""
  logits, _ = jax.jit(model.apply)(params, seqs.obs[:, 2:-1], seqs.action)
  loss = rar_lib.frame_loss(logits, seqs.obs[:, 3:], model.config.frame_likelihood)
  return np.cumsum(np.asarray(-loss), axis=1)


def rar_rollout(model, params, obs0, actions) -> np.ndarray:
  """`[T, H, W]` greedy tiles of an open-loop rollout from `obs0[H, W, C]`."""
  obs, frames = obs0[None], []
  for a in np.asarray(actions):
    obs, _ = model.predict(params, obs, jnp.asarray([a], jnp.int32))
    frames.append(tiles(obs[0], model.config.frame_likelihood))
  return np.stack(frames)


def experiment(config, run: app.Run) -> dict:
  env_names = parse_list(config.envs, ENVS, "envs")
  model_names = parse_list(config.models, MODELS, "models")
  key = jax.random.key(config.seed)
  summary, curves = {}, {}
  for e_i, env_name in enumerate(env_names):
    k_train, k_test, k_models = jax.random.split(jax.random.fold_in(key, e_i), 3)
    likelihood = frame_likelihood(config, env_name)
    ssm_extra = {"frame_likelihood": likelihood}
    if env_name == "mspacman":
      train_traj, test_traj, spec = mspacman_data(config, run.workdir, run)
      obs_shape, num_actions = tuple(train_traj.obs_tm1.shape[2:]), 9
      ssm_extra["factors"] = tuple(config.mspacman_factors)
    else:
      env, env_params, spec = make_env(env_name, config)
      obs_shape = tuple(env.observation_space(env_params).shape)
      num_actions = env.action_space(env_params).num_values
      policy = rar_train.uniform_policy(num_actions)
      train_traj = rar_train.collect_transitions(policy, env, env_params, spec, k_train,
                                                 config.num_envs, config.collect_steps)
      test_traj = rar_train.collect_transitions(policy, env, env_params, spec, k_test,
                                                config.test_envs, config.test_steps)
    cut = lambda t, n: data_lib.sequences_from_trajectory(  # noqa: E731
        t.obs_tm1, t.action, t.obs_t, t.reward, t.frame_valid, n, config.stride)
    train_seqs, test_seqs = cut(train_traj, config.train_length), cut(test_traj, config.length)
    test_seqs = jax.tree.map(lambda x: x[:config.num_test], test_seqs)
    summary[f"{env_name}/num_train_windows"] = int(train_seqs.action.shape[0])
    summary[f"{env_name}/num_test_windows"] = int(test_seqs.action.shape[0])
    show = jax.tree.map(lambda x: np.asarray(x[0]), test_seqs)
    rollouts = {"true": tiles(show.obs[3:], likelihood)}
    for m_i, name in enumerate(model_names):
      k_init = jax.random.fold_in(k_models, m_i)
      loop = f"{env_name}_{name}"
      if name == "RAR":
        model = rar_lib.make_env_model(rar_lib.EnvModelConfig(
            width=config.rar.width, blocks=tuple(tuple(b) for b in config.rar.blocks),
            frame_hidden=config.rar.frame_hidden, reward_hidden=config.rar.reward_hidden,
            frame_likelihood=likelihood),
            obs_shape, num_actions, spec)
        trainer = rar_train.make_trainer(model, rar_train.TrainConfig(
            learning_rate=config.learning_rate, batch_size=10 * config.batch_size,
            steps_per_chunk=config.steps_per_chunk))
        state = run.train_loop(lambda: trainer.init(k_init), trainer.chunk, config.num_chunks,
                               name=loop, data=rar_train.flatten(train_traj))
        prefix = rar_prefix_ll(model, state.params, test_seqs)
        rollouts[name] = rar_rollout(model, state.params, show.obs[2], show.action)
      else:
        model = env_models.make_env_model(
            env_models.EnvModelConfig(kind=name, **config.ssm.to_dict(), **ssm_extra),
            obs_shape, num_actions)
        trainer = ssm_train.make_trainer(model, ssm_train.TrainConfig(
            learning_rate=config.learning_rate, batch_size=config.batch_size,
            steps_per_chunk=config.steps_per_chunk))
        # The SSM's chunk is a host loop of jitted Adam steps (`ssm_train`'s module doc): the
        # loop must call it as it is, not compile it whole.
        state = run.train_loop(lambda: trainer.init(k_init), trainer.chunk, config.num_chunks,
                               name=loop, data=train_seqs,
                               jit_chunk=trainer.config.loop == "scan")
        fll = jax.jit(model.frame_log_likelihood, static_argnums=3)
        prefix = np.concatenate([
            np.asarray(fll(state.params, jax.tree.map(lambda x: x[i:i + 32], test_seqs),
                           jax.random.fold_in(k_init, i), config.eval_samples))
            for i in range(0, test_seqs.action.shape[0], 32)])
        s0 = model.observe(state.params, show.obs[None, :3])
        _, out = model.imagine(state.params, s0, show.action[None], jax.random.fold_in(k_init, 1))
        rollouts[name] = tiles(env_models.models.frame_probs(out.frame_logits[0], likelihood),
                               likelihood)
      per_frame = prefix.mean(0) / np.arange(1, config.length + 1)
      curves[(env_name, name)] = per_frame
      for t in range(config.length):
        summary[f"{env_name}/{name}/ll_per_frame_T{t + 1}"] = float(per_frame[t])
      # Every prefix length, as soon as the model is scored (a run stopped later keeps them).
      run.log_metrics(0, {f"{env_name}/{name}/ll_per_frame_T{t + 1}": float(per_frame[t])
                          for t in range(config.length)})
    _figure(run, env_name, rollouts, {m: curves[(env_name, m)] for m in model_names},
            obs_shape[-1])
  return summary


def _figure(run, env_name, rollouts, curves, num_tiles):
  rows = list(rollouts)
  t_len = rollouts["true"].shape[0]
  fig, axes = plt.subplots(len(rows) + 1, t_len, figsize=(1.3 * t_len, 1.4 * (len(rows) + 1)),
                           squeeze=False)
  for r, name in enumerate(rows):
    for t in range(t_len):
      ax = axes[r, t]
      ax.imshow(rollouts[name][t], cmap="tab10", vmin=0, vmax=max(num_tiles, 9),
                interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if t == 0:
        ax.set_ylabel(name, fontsize=7)
      if r == 0:
        ax.set_title(f"t={t + 1}", fontsize=7)
  for ax in axes[-1]:
    ax.remove()
  ax = fig.add_subplot(len(rows) + 1, 1, len(rows) + 1)
  for name, curve in curves.items():
    ax.plot(np.arange(1, t_len + 1), curve, marker="o", label=name)
  ax.set(xlabel="rollout length t", ylabel="log p(o_1:t) / t (nats)")
  ax.legend(fontsize=7)
  fig.suptitle(f"{env_name}: test rollouts (argmax tiles) and log-likelihood per frame")
  fig.tight_layout()
  run.save_figure(f"rollouts_{env_name}", fig)
  plt.close(fig)


if __name__ == "__main__":
  app.run(experiment)
