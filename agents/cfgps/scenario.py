"""The learned scenario model of CF-GPS on PO-Sokoban: the prior p(U) and the posteriors
p(U | h_t) over levels (Buesing et al. 2019, Sec. 3.2 and Sec. 5; issue 19).

In CF-GPS only the scenario distribution is learned; the transition, observation and reward
kernels are the environment's. The scenario U of a PO-Sokoban episode is its level, and the
paper learns p(U | h_t) for t in {0, 5, 10, 20, 30, 40, 50} with privileged access to the true
level in training (a DRAW-like latent-variable model over a backward recurrent summary of the
history). Ours [O: the issue allows either]:

- The history summary (`history_features`): a backward recurrence over the steps i = t-1..0
  with a fixed, not learned, update [O: the learned recurrence of the paper costs a recurrent
  network over 50 steps per training example, too much for 2 CPU cores; a fixed one is
  computed in closed form]. For every tile and every non-floor tile code c (wall, target, box
  on target, box, player, player on target) it carries whether c was seen (PO-Sokoban shows a
  non-floor code only when it is the truth: noise shows "floor"), how often (count / 50), and
  exp(-i_first / 5) of the earliest sighting i_first, which the backward scan writes last;
  one plane back-projects the player's sightings to step 0 through the actions taken; a
  plane t / 50 tells the network how long the history is. At t = 0 every plane but that one is
  zero: the posterior at t = 0 is the prior p(U), one network for every t.
- The level (`level_to_classes`): the interior tiles of the room (the outer ring is always
  wall, [O] as in App. D.3's generator), each one of 5 classes: wall, floor, target, box,
  player (generated levels never start with a box or the player on a target: App. D.3 scores
  such a configuration 0).
- The model (`ScenarioNet`): a tile-wise autoregressive categorical in raster order,
  log p(U | h_t) = sum_j log p(u_j | u_<j, h_t), a PixelCNN-style stack of masked 3x3
  convolutions (van den Oord et al. 2016; mask "A" on the input level, "B" after) with the
  summary fed to every layer through an unmasked convolutional trunk.
- Training (`train`): maximum likelihood of the true level given histories of the behaviour
  policy (uniformly random) on training levels, averaged over the seven t of T_SET per
  example; Adam through `agents.supervised`.
- Sampling (`sample`): ancestral, one tile at a time, with the level's counts enforced [O]: a
  class is masked once its count is full (k boxes, k targets, one player), and in the last
  tiles only the missing classes remain, so every sample has k boxes, k targets and one
  player and can be played. Whether it is consistent with the history and solvable is what
  `posterior_report` measures.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from agents import supervised
from agents.cfgps import episodes as ep_lib
from envs import sokoban
from envs.sokoban_levels import Level

T_SET = (0, 5, 10, 20, 30, 40, 50)  # the paper's history lengths t
WALL, FLOOR, TARGET, BOX, PLAYER = range(5)
NUM_CLASSES = 5
# Non-floor tile codes of an observation (envs.sokoban): what a sighting can show.
SEEN_CODES = (sokoban.WALL, sokoban.TARGET, sokoban.BOX_ON_TARGET, sokoban.BOX, sokoban.PLAYER,
              sokoban.PLAYER_ON_TARGET)
NUM_FEATURES = 3 * len(SEEN_CODES) + 2
TAU = 5.0            # steps: decay of the earliest-sighting plane
MAX_HORIZON = 50.0   # normalises counts and t


# ----------------------------------------------------------------------------- levels <-> classes
def level_to_classes(level: Level) -> jax.Array:
  """int32 `[..., H - 2, W - 2]` class of every interior tile of a level (or bank)."""
  cut = (Ellipsis, slice(1, -1), slice(1, -1))
  walls, targets, boxes = (jnp.asarray(x, bool)[cut] for x in (level.walls, level.targets,
                                                                 level.boxes))
  h, w = jnp.shape(level.walls)[-2:]
  rows = jnp.arange(1, h - 1)[:, None]
  cols = jnp.arange(1, w - 1)[None, :]
  player = jnp.asarray(level.player)
  is_player = ((rows == player[..., 0, None, None]) & (cols == player[..., 1, None, None]))
  classes = jnp.full(walls.shape, FLOOR, jnp.int32)
  classes = jnp.where(targets, TARGET, classes)
  classes = jnp.where(boxes, BOX, classes)
  classes = jnp.where(is_player, PLAYER, classes)
  return jnp.where(walls, WALL, classes)


def classes_to_level(classes: jax.Array) -> Level:
  """The level of interior classes `[..., h, w]` (the outer ring walled): its inverse. A grid
  without a player puts it at (0, 0) (a wall; only an unconstrained sample can lack one)."""
  classes = jnp.asarray(classes)
  pad = [(0, 0)] * (classes.ndim - 2) + [(1, 1), (1, 1)]
  full = jnp.pad(classes, pad, constant_values=WALL)
  h, w = full.shape[-2:]
  flat = (full == PLAYER).reshape(full.shape[:-2] + (h * w,))
  idx = jnp.argmax(flat, axis=-1)
  player = jnp.stack([idx // w, idx % w], axis=-1).astype(jnp.int32)
  return Level(walls=full == WALL, targets=full == TARGET, boxes=full == BOX, player=player)


def check_level_classes(level: Level, name: str = "levels") -> None:
  """Refuses levels the 5 classes cannot hold (a box or the player on a target, or an open
  outer ring), naming the first."""
  walls, targets, boxes = (np.asarray(x, bool) for x in (level.walls, level.targets,
                                                          level.boxes))
  player = np.asarray(level.player).reshape(-1, 2)
  walls, targets, boxes = (x.reshape((-1,) + x.shape[-2:]) for x in (walls, targets, boxes))
  ring = np.ones(walls.shape[1:], bool)
  ring[1:-1, 1:-1] = False
  for i in range(walls.shape[0]):
    r, c = player[i]
    if (boxes[i] & targets[i]).any() or targets[i, r, c] or not walls[i][ring].all():
      raise ValueError(f"{name}[{i}] has a box or the player on a target, or an open outer ring; "
                       f"the scenario model's 5 classes hold only App. D.3 starting levels")


# ----------------------------------------------------------------------------- history summary
def obs_codes(obs: jax.Array) -> jax.Array:
  """Tile codes `[..., H, W]` int8 of symbolic observations `[..., H, W, 7]`."""
  return jnp.argmax(obs, axis=-1).astype(jnp.int8)


_MOVES5 = jnp.asarray([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], jnp.int32)


def history_features(codes: jax.Array, t, actions: jax.Array | None = None) -> jax.Array:
  """The backward summary of h_t (module docstring): float32 `[H - 2, W - 2, NUM_FEATURES]`
  from the observation codes `[T + 1, H, W]` (and the actions `[T]`) of one episode; steps
  i >= t are ignored. The last plane but one back-projects the player's sightings to step 0:
  a sighting at step i is moved by minus the displacement the actions a_0..a_{i-1} intend
  (blocked moves make it approximate) and weighted exp(-i / 10), the maximum kept [O]."""
  codes = jnp.asarray(codes)
  steps = jnp.arange(codes.shape[0])
  inside_all = (steps < t)[:, None, None]
  if actions is None:
    actions = jnp.zeros((codes.shape[0] - 1,), jnp.int32)
  disp = jnp.concatenate([jnp.zeros((1, 2), jnp.int32),
                          jnp.cumsum(_MOVES5[jnp.asarray(actions, jnp.int32)], axis=0)])
  seen_player = ((codes == sokoban.PLAYER) | (codes == sokoban.PLAYER_ON_TARGET)) & inside_all
  back = jax.vmap(lambda m, d: jnp.roll(m, (-d[0], -d[1]), axis=(0, 1)))(seen_player, disp)
  back = jnp.max(back * jnp.exp(-steps / 10.0)[:, None, None], axis=0)[1:-1, 1:-1]
  codes = codes[:, 1:-1, 1:-1]
  inside = inside_all
  planes = []
  for c in SEEN_CODES:
    seen = (codes == c) & inside
    count = jnp.sum(seen, axis=0)
    first = jnp.argmax(seen, axis=0)  # the earliest sighting (0 where never seen: masked)
    planes += [count > 0, count / MAX_HORIZON,
               jnp.where(count > 0, jnp.exp(-first / TAU), 0.0)]
  planes.append(back)
  planes.append(jnp.full(codes.shape[1:], t / MAX_HORIZON))
  return jnp.stack(planes, axis=-1).astype(jnp.float32)


# ----------------------------------------------------------------------------- the network
def _causal_mask(kernel: int, mask_type: str) -> np.ndarray:
  """Raster-order mask of a `kernel` x `kernel` filter: rows above the centre, and the centre
  row left of the centre ("A") or up to and including it ("B")."""
  m = np.zeros((kernel, kernel), np.float32)
  c = kernel // 2
  m[:c] = 1.0
  m[c, :c] = 1.0
  if mask_type == "B":
    m[c, c] = 1.0
  return m


class MaskedConv(nn.Module):
  """A PixelCNN masked convolution (NHWC, SAME padding)."""
  features: int
  kernel: int = 3
  mask_type: str = "B"

  @nn.compact
  def __call__(self, x):
    k = self.param("kernel", nn.initializers.lecun_normal(),
                   (self.kernel, self.kernel, x.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    mask = jnp.asarray(_causal_mask(self.kernel, self.mask_type))[:, :, None, None]
    y = jax.lax.conv_general_dilated(x, k * mask, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b


class ScenarioNet(nn.Module):
  """Logits `[B, h, w, 5]` of p(u_j | u_<j, h_t) for every interior tile j (module docstring):
  `levels` the one-hot classes `[B, h, w, 5]` (only tiles before j reach tile j's logits),
  `features` the history summaries `[B, h, w, NUM_FEATURES]`."""
  channels: int = 16     # width of every layer
  layers: int = 3        # masked "B" residual layers
  cond_layers: int = 2   # unmasked 3x3 layers of the summary trunk

  def condition(self, features):
    h = features
    for _ in range(self.cond_layers):
      h = nn.relu(nn.Conv(self.channels, (3, 3))(h))
    return h

  @nn.compact
  def __call__(self, levels, features):
    cond = self.condition(features)
    h = MaskedConv(self.channels, 3, "A")(levels) + nn.Dense(self.channels)(cond)
    for _ in range(self.layers):
      h = h + MaskedConv(self.channels, 3, "B")(nn.relu(h)) + nn.Dense(self.channels)(cond)
    return nn.Dense(NUM_CLASSES)(nn.relu(h))


def log_likelihood(net: ScenarioNet, params, classes: jax.Array, features: jax.Array):
  """log p(U | h_t) of levels `[B, h, w]` (int classes) under summaries `[B, h, w, F]`: `[B]`."""
  logits = net.apply(params, jax.nn.one_hot(classes, NUM_CLASSES), features)
  logp = jax.nn.log_softmax(logits)
  return jnp.sum(jnp.take_along_axis(logp, classes[..., None], axis=-1), axis=(1, 2, 3))


def _constraint_mask(counts, needed_total, remaining, num_boxes):
  """Allowed classes `[5]` given the counts so far (target, box, player)."""
  n_target, n_box, n_player = counts
  allowed = jnp.array([True, True, n_target < num_boxes, n_box < num_boxes, n_player < 1])
  forced = needed_total >= remaining  # every remaining tile must take a missing class
  return allowed & jnp.where(forced, jnp.array([False, False, True, True, True]), True)


def sample(net: ScenarioNet, params, key: jax.Array, features: jax.Array,
           num_boxes: int = 3) -> jax.Array:
  """One level's classes `[h, w]` from p(U | h_t) given one summary `[h, w, F]`, with the
  counts enforced (module docstring)."""
  h, w = features.shape[:2]
  n = h * w
  keys = jax.random.split(key, n)

  def body(j, carry):
    classes, counts = carry
    onehot = jax.nn.one_hot(classes, NUM_CLASSES) * (jnp.arange(n) < j).reshape(h, w, 1)
    logits = net.apply(params, onehot[None], features[None])[0].reshape(n, NUM_CLASSES)[j]
    needed = (num_boxes - counts[0]) + (num_boxes - counts[1]) + (1 - counts[2])
    allowed = _constraint_mask(counts, needed, n - j, num_boxes)
    c = jax.random.categorical(keys[j], jnp.where(allowed, logits, -jnp.inf))
    counts = counts + jnp.array([c == TARGET, c == BOX, c == PLAYER], jnp.int32)
    return classes.reshape(n).at[j].set(c).reshape(h, w), counts

  classes0 = jnp.zeros((h, w), jnp.int32)
  classes, _ = jax.lax.fori_loop(0, n, body, (classes0, jnp.zeros(3, jnp.int32)))
  return classes


# ----------------------------------------------------------------------------- data and training
def split_bank(levels: Level, num_heldout: int, name: str = "levels") -> tuple[Level, Level]:
  """(training, held-out) parts of a bank: the last `num_heldout` levels are held out. Refuses
  a bank too small to leave at least one training level."""
  n = levels.num_levels if jnp.ndim(levels.walls) == 3 else 0
  if isinstance(num_heldout, bool) or not isinstance(num_heldout, (int, np.integer)) \
      or num_heldout < 1:
    raise ValueError(f"num_heldout must be a positive integer; got {num_heldout!r}")
  if n <= num_heldout:
    raise ValueError(f"{name} has {n} levels, too few for a held-out split of num_heldout="
                     f"{num_heldout} (need more than {num_heldout} to keep a training level)")
  return levels[: n - num_heldout], levels[n - num_heldout:]


class ScenarioData(NamedTuple):
  """Training data: per row an episode's observation codes, its true level and a t."""
  codes: jax.Array    # int8 [N, T + 1, H, W] the behaviour episode's observations
  actions: jax.Array  # int8 [N, T] its actions
  classes: jax.Array  # int32 [N, H - 2, W - 2] its level's interior classes
  t: jax.Array        # int32 [N] the history length this row trains p(U | h_t) on


def with_t_set(data: ScenarioData, t_set=T_SET) -> ScenarioData:
  """Every episode once per t of `t_set` (rows `[len(t_set) * N]`, t-major) [O: one t per row
  makes a training step 7x cheaper than every t per episode, with every (episode, t) pair
  in the data]."""
  n = data.codes.shape[0]
  tile = lambda x: jnp.tile(x, (len(t_set),) + (1,) * (x.ndim - 1))  # noqa: E731
  return ScenarioData(tile(data.codes), tile(data.actions), tile(data.classes),
                      jnp.repeat(jnp.asarray(t_set, jnp.int32), n))


def collect(key: jax.Array, env, params, levels: Level, horizon: int | None = None,
            policy: ep_lib.Policy | None = None, batch: int = 256) -> ScenarioData:
  """One episode of `policy` (default uniformly random, the behaviour policy) on each level,
  in batches of `batch`, kept as observation codes (`t` set to T_SET[-1]; `with_t_set`
  gives the training rows)."""
  check_level_classes(levels)
  policy = ep_lib.uniform_policy(env.num_actions) if policy is None else policy
  n = levels.num_levels
  codes, actions = [], []
  for start in range(0, n, batch):
    part = levels[start:start + batch]
    eps = ep_lib.log_on_levels(jax.random.fold_in(key, start), env, params, policy, part,
                               horizon)
    codes.append(np.asarray(obs_codes(eps.obs)))
    actions.append(np.asarray(eps.action, np.int8))
  return ScenarioData(jnp.asarray(np.concatenate(codes)), jnp.asarray(np.concatenate(actions)),
                      level_to_classes(levels),
                      jnp.full((n,), T_SET[-1], jnp.int32))


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
  """The scenario model and its training."""
  channels: int = 16        # width of the network's layers
  layers: int = 3           # masked residual layers
  cond_layers: int = 2      # layers of the summary trunk
  t_set: tuple = T_SET      # history lengths t trained on (each episode once per t)
  train: supervised.TrainConfig = supervised.TrainConfig(learning_rate=2e-3, batch_size=32,
                                                         steps_per_chunk=100)


def make_net(config: ScenarioConfig) -> ScenarioNet:
  return ScenarioNet(config.channels, config.layers, config.cond_layers)


def loss_fn(net: ScenarioNet, t_set):
  """The negative log-likelihood per level at each row's t, averaged over the batch; the
  metrics `nll_t<t>` are its means over the rows of each t of `t_set` (NaN if none)."""
  def fn(params, batch: ScenarioData):
    feats = jax.vmap(history_features)(batch.codes, batch.t, batch.actions)
    nll = -log_likelihood(net, params, batch.classes, feats)
    aux = {}
    for t in t_set:
      m = batch.t == t
      aux[f"nll_t{t}"] = jnp.where(m.any(), jnp.sum(nll * m) / jnp.maximum(m.sum(), 1),
                                   jnp.nan)
    return jnp.mean(nll), aux
  return fn


def make_trainer(config: ScenarioConfig, interior: tuple[int, int]) -> supervised.Trainer:
  net = make_net(config)

  def init(key):
    h, w = interior
    return net.init(key, jnp.zeros((1, h, w, NUM_CLASSES)), jnp.zeros((1, h, w, NUM_FEATURES)))

  return supervised.make_trainer(loss_fn(net, tuple(config.t_set)), init, config.train)


def train(key: jax.Array, config: ScenarioConfig, data: ScenarioData, num_chunks: int,
          log: Callable[[int, dict], None] | None = None):
  """Maximum likelihood training; returns `(params, history of per-chunk mean metrics)`."""
  if isinstance(num_chunks, bool) or not isinstance(num_chunks, int) or num_chunks < 1:
    raise ValueError(f"num_chunks must be a positive integer; got {num_chunks!r}")
  trainer = make_trainer(config, tuple(data.classes.shape[1:]))
  state = trainer.init(key)
  hist = []
  for i in range(num_chunks):
    state, m = trainer.chunk(state, data)
    m = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
         for k, v in ((k, np.asarray(v)) for k, v in m.items())}
    hist.append(m)
    if log is not None:
      log(i, m)
  return state.params, hist


# ----------------------------------------------------------------------------- posterior
def make_posterior(config: ScenarioConfig, params, num_boxes: int = 3) -> Callable:
  """`posterior(key, history, t) -> Level` for `agents.cfgps.counterfactual_pe`: a level from
  p(U | h_t) given one logged episode's history (symbolic observations)."""
  net = make_net(config)

  def posterior(key, history: ep_lib.Episode, t: int):
    feats = history_features(obs_codes(history.obs), t, history.action)
    return classes_to_level(sample(net, params, key, feats, num_boxes))

  return posterior


def make_prior(config: ScenarioConfig, params, interior: tuple[int, int],
               num_boxes: int = 3) -> Callable:
  """`prior(key) -> Level` for `agents.cfgps.model_based_pe`: p(U), the posterior at t = 0."""
  net = make_net(config)
  h, w = interior
  feats = history_features(jnp.zeros((1, h + 2, w + 2), jnp.int8), 0)

  def prior(key):
    return classes_to_level(sample(net, params, key, feats, num_boxes))

  return prior


@functools.partial(jax.jit, static_argnames=("net", "num_boxes"))
def _report_jit(params, key, codes, actions, classes, t, *, net, num_boxes):
  feats = jax.vmap(lambda c, a: history_features(c, t, a))(codes, actions)
  ll = log_likelihood(net, params, classes, feats)
  keys = jax.random.split(key, codes.shape[0])
  samples = jax.vmap(lambda k, f: sample(net, params, k, f, num_boxes))(keys, feats)
  return ll, samples


def sample_levels(key, config: ScenarioConfig, params, episodes: ep_lib.Episode, t: int,
                  num_boxes: int = 3) -> tuple[Level, jax.Array]:
  """One level per episode from p(U | h_t) and the log-likelihood of the episode's recorded
  level: `(levels [N], log_lik [N])`. One compiled function serves every t (t is traced)."""
  ep_lib.history(episodes, t)  # refuses a t beyond the episode length
  ll, samples = _report_jit(params, key, obs_codes(episodes.obs), episodes.action,
                            level_to_classes(episodes.level), jnp.int32(t),
                            net=make_net(config), num_boxes=num_boxes)
  return classes_to_level(samples), ll


def posterior_report(key, config: ScenarioConfig, params, env, env_params,
                     episodes: ep_lib.Episode, t_set=T_SET, solver=None,
                     return_samples: bool = False):
  """Per t: the mean log-likelihood of the true level (nats), the fraction of samples (one per
  episode, key `fold_in(key, t)`) equal to the true level, consistent with h_t (its replay
  under the logged actions and keys shows the logged observations and rewards of the first t
  steps) and solvable (`solver`). With `return_samples`, also `{t: levels [N]}`."""
  for t in t_set:
    ep_lib.history(episodes, t)  # refuses a t beyond the episode length
  ep_lib.check_episodes(env, env_params, episodes)  # refuses an inconsistent logged episode
  out, drawn = {}, {}
  for t in t_set:
    levels, ll = sample_levels(jax.random.fold_in(key, t), config, params, episodes, t,
                               env.num_boxes)
    ll = np.asarray(ll)
    drawn[t] = levels
    exact = np.all(np.asarray(level_to_classes(levels)) == np.asarray(
        level_to_classes(episodes.level)), axis=(1, 2))
    consistent = consistent_with_history(env, env_params, episodes, levels, t)
    row = {"log_lik": float(np.mean(ll)), "log_lik_se": float(np.std(ll) / np.sqrt(len(ll))),
           "exact": float(exact.mean()), "consistent": float(consistent.mean())}
    if solver is not None:
      solvable = np.array([solver.distance(levels[i]) < np.inf for i in range(len(exact))])
      row["solvable"] = float(solvable.mean())
      row["consistent_and_solvable"] = float((solvable & consistent).mean())
    out[t] = row
  return (out, drawn) if return_samples else out


def sample_consistent_levels(key, config: ScenarioConfig, params, env, env_params,
                             episodes: ep_lib.Episode, t: int, tries: int):
  """Posterior samples with those that contradict h_t rejected [O]: per episode, the first
  of up to `tries` samples of p(U | h_t) (keys `fold_in(key, i)`) whose replay under the logged
  actions and noise keys shows the logged h_t (`consistent_with_history`), else the last one.
  This conditions the learned posterior q(U | h_t) on the event p(h_t | U) > 0, a projection
  that can only move it towards the true posterior. Returns `(levels [N], found [N] bool)`."""
  if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
    raise ValueError(f"tries must be a positive integer; got {tries!r}")
  chosen, found = None, None
  for i in range(tries):
    levels, _ = sample_levels(jax.random.fold_in(key, i), config, params, episodes, t,
                              env.num_boxes)
    ok = consistent_with_history(env, env_params, episodes, levels, t)
    if chosen is None:
      chosen, found = levels, ok
    else:
      take = ok & ~found
      chosen = jax.tree.map(
          lambda new, old: jnp.where(take.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
          levels, chosen)
      # an episode with no consistent sample yet keeps the latest sample
      chosen = jax.tree.map(
          lambda new, old: jnp.where((~found & ~ok).reshape((-1,) + (1,) * (new.ndim - 1)),
                                     new, old), levels, chosen)
      found = found | ok
    if found.all():
      break
  return chosen, found


def consistent_with_history(env, params, episodes: ep_lib.Episode, levels: Level,
                            t: int) -> np.ndarray:
  """bool `[N]`: each level, replayed with the episode's logged actions and keys, shows the
  episode's logged observations o_0..o_{t-1} and rewards r_0..r_{t-1} (all of h_t)."""
  ep_lib.history(episodes, t)
  rep = ep_lib.replay_actions(env, params, episodes._replace(level=levels))
  n = episodes.action.shape[0]
  steps = np.arange(episodes.horizon + 1) < t
  a = np.asarray(episodes.obs).reshape(n, episodes.horizon + 1, -1)
  b = np.asarray(rep.obs).reshape(n, episodes.horizon + 1, -1)
  same_obs = ~((a != b).any(-1) & steps[None]).any(1)
  rsteps = np.arange(episodes.horizon) < t
  same_r = ~((np.asarray(episodes.reward) != np.asarray(rep.reward)) & rsteps[None]
             & np.asarray(episodes.valid)).any(1)
  return same_obs & same_r


# ----------------------------------------------------------------------------- cache
def cache_path(cache_dir, spec: dict):
  """`(params file, metadata file)` of the cached scenario model whose training is described
  by `spec` (everything that determines it: bank, keys, model and training config), named by
  the SHA-256 of `spec`'s JSON."""
  digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
  base = pathlib.Path(cache_dir) / f"scenario_{digest[:16]}"
  return base.with_suffix(".msgpack"), base.with_suffix(".json")


def train_cached(key: jax.Array, config: ScenarioConfig, data_fn: Callable[[], ScenarioData],
                 num_chunks: int, cache_dir, spec: dict, interior: tuple[int, int],
                 log: Callable[[int, dict], None] | None = None):
  """`train(key, config, data_fn(), num_chunks)` with its result cached in `cache_dir` (None:
  no cache) under `spec` (`cache_path`): a second experiment with the same spec (the policy
  search after the policy evaluation, or a rerun) loads the parameters instead of training.
  A cached file whose bytes do not match the SHA-256 its metadata records, that does not
  decode, or whose parameter shapes differ from the model's is refused by name (delete it to
  retrain). Returns `(params, history, loaded)`."""
  if cache_dir is None:
    params, hist = train(key, config, data_fn(), num_chunks, log)
    return params, hist, False
  params_file, meta_file = cache_path(cache_dir, spec)
  template = jax.eval_shape(make_trainer(config, interior).init, key).params
  if meta_file.exists():
    try:
      meta = json.loads(meta_file.read_text())
      raw = params_file.read_bytes()
      if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
        raise ValueError("its bytes do not match the SHA-256 of its metadata")
      params = flax.serialization.msgpack_restore(raw)
      want = jax.tree.map(lambda x: tuple(x.shape), template)
      got = jax.tree.map(lambda x: tuple(np.shape(x)), params)
      if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
        raise ValueError("its parameter shapes differ from the model's")
    except (ValueError, KeyError, OSError, TypeError) as e:
      raise ValueError(f"corrupted scenario-model cache {params_file} ({meta_file}): {e}; "
                       f"delete both files to retrain") from e
    return jax.tree.map(jnp.asarray, params), meta["history"], True
  params, hist = train(key, config, data_fn(), num_chunks, log)
  raw = flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, params))
  params_file.parent.mkdir(parents=True, exist_ok=True)
  params_file.write_bytes(raw)
  meta_file.write_text(json.dumps({"spec": spec, "sha256": hashlib.sha256(raw).hexdigest(),
                                   "history": hist}, default=str))
  return params, hist, False
