"""Recorded, downsampled Atari frames for learning environment models (Buesing et al. 2018,
Sec. 4: MS_PACMAN frames under a random and a partly trained policy), cached once on disk.

    data = load_or_record(path, FramesSpec(task_id="MsPacman-v5", policy="random", ...))
    data.obs        # [T + 1, B, size, size] uint8 palette indices
    data.action     # [T, B] int32;  data.reward [T, B] float32
    data.frame_valid  # [T, B] float32: 0 where obs[t + 1] starts a new episode (envpool's reset)
    data.palette    # [K, 3] uint8 RGB colours of the indices
    one_hot(data.obs, K)   # [..., size, size, K] float32, what the models read

Preprocessing, with its source ([P] the paper as we read it, [O] our choice):
- [P] Frames are downsampled to `size x size` (80 x 80 in `full`) from envpool's 210 x 160 RGB
  screen with envpool's defaults otherwise (frame skip 4 with max-pooling of the last two
  frames, up to 30 no-op starts, no reward clipping). [O] Nearest-neighbour sampling
  (`downsample`: rows `floor((i + 0.5) * 210 / size)`, columns likewise), which keeps the
  Atari palette's colours where bilinear filtering would blend them. (B18's text on the
  preprocessing could not be consulted here: three searches of the stored pages found only its
  abstract and introduction; the 80 x 80 size is our reading of it.)
- [O] Colours are quantised to the `num_colours` most frequent colours of the recording
  (`palette_from_frames`; every pixel to its nearest palette colour in RGB), so a frame is a
  map of categorical tiles and the environment models' per-tile categorical likelihood
  (`latent_dynamics.env_models`, `agents.i2a.env_model`) reads it unchanged. B18 models RGB
  pixels; a palette is the categorical analogue on an 8-bit console, and it keeps one decoder
  for the symbolic and the Atari frames.
- Policies: "random" (uniform over the 9 actions) [P]; "sticky" [O], a scripted stand-in for
  B18's partly trained agent, which repeats its previous action with probability
  `sticky_prob` (0.9) and otherwise draws a uniform one, so Ms. Pac-Man runs along corridors
  and reaches more of the maze than the jittering uniform policy; "a2c" [P], B18's partly
  trained agent: frames of a trained policy, recorded by the caller that trains it through
  `envs.host.jax_env.record_policy_frames` and cached here under this policy name (`record`
  refuses it: it has no agent; `launch.latent_dynamics.env_models` trains an A2C agent on
  `envs.make("mspacman")`).

The cache is one `.npz` written once (to a temporary name, then renamed, so an interrupted
recording leaves no cache and the next run records again); `load_or_record` returns the cached
recording when the file exists and matches the spec, and refuses (ValueError naming the file) a
file that does not load, whose arrays fail their stored SHA-256, or that was recorded under
another spec.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from typing import NamedTuple

import numpy as np

POLICIES = ("random", "sticky", "a2c")
ARRAYS = ("obs", "action", "reward", "frame_valid", "palette")


@dataclasses.dataclass(frozen=True)
class FramesSpec:
  """What to record (the cache stores it and refuses a file recorded under another)."""
  task_id: str = "MsPacman-v5"
  policy: str = "random"        # "random", "sticky" or "a2c" (module doc)
  num_envs: int = 8
  num_steps: int = 100          # T: recorded steps per environment
  size: int = 80                # frames are size x size
  num_colours: int = 8          # K: palette size
  seed: int = 0
  sticky_prob: float = 0.9      # "sticky" only: probability of repeating the last action


class Frames(NamedTuple):
  obs: np.ndarray          # [T + 1, B, size, size] uint8 palette indices
  action: np.ndarray       # [T, B] int32
  reward: np.ndarray       # [T, B] float32
  frame_valid: np.ndarray  # [T, B] float32
  palette: np.ndarray      # [K, 3] uint8


def check_spec(spec: FramesSpec) -> None:
  if spec.policy not in POLICIES:
    raise ValueError(f"spec.policy must be one of {POLICIES}; got {spec.policy!r}.")
  for name in ("num_envs", "num_steps", "size", "num_colours"):
    v = getattr(spec, name)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
      raise ValueError(f"spec.{name} must be a positive integer; got {v!r}.")
  if spec.num_colours > 255:
    raise ValueError(f"spec.num_colours must be <= 255 (uint8 indices); got {spec.num_colours}.")
  if not 0.0 <= spec.sticky_prob <= 1.0:
    raise ValueError(f"spec.sticky_prob must lie in [0, 1]; got {spec.sticky_prob!r}.")


def downsample(frames: np.ndarray, size: int) -> np.ndarray:
  """Nearest-neighbour `[..., H, W, 3] -> [..., size, size, 3]` (centre of each output cell)."""
  h, w = frames.shape[-3], frames.shape[-2]
  rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(np.int64), h - 1)
  cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(np.int64), w - 1)
  return frames[..., rows[:, None], cols[None, :], :]


def palette_from_frames(frames: np.ndarray, num_colours: int) -> np.ndarray:
  """The `num_colours` most frequent RGB colours of `frames[..., 3]` (ties by colour value),
  most frequent first; fewer if the frames have fewer colours. `[K, 3] uint8`."""
  flat = frames.reshape(-1, 3).astype(np.int64)
  codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
  values, counts = np.unique(codes, return_counts=True)
  order = np.lexsort((values, -counts))[:num_colours]
  top = values[order]
  return np.stack([(top >> 16) & 255, (top >> 8) & 255, top & 255], -1).astype(np.uint8)


def quantise(frames: np.ndarray, palette: np.ndarray) -> np.ndarray:
  """`[..., 3]` RGB -> `[...]` uint8 index of the nearest palette colour (squared RGB distance,
  ties to the lower index).

  Through a lookup table over the 2^24 RGB codes, filled on first sight of each colour (an
  Atari screen has a few dozen): about 40x faster than the distances to every pixel, which
  made it the cost of stepping MsPacman (`envs.host.jax_env`)."""
  frames = np.asarray(frames)
  codes = ((frames[..., 0].astype(np.int32) << 16) | (frames[..., 1].astype(np.int32) << 8)
           | frames[..., 2].astype(np.int32))
  lut = _lookup_table(np.ascontiguousarray(palette, np.uint8).tobytes())
  out = lut[codes]
  unseen = out == _UNSEEN
  if unseen.any():
    new = np.unique(codes[unseen])
    rgb = np.stack([(new >> 16) & 255, (new >> 8) & 255, new & 255], -1)
    lut[new] = _nearest(rgb, palette)
    out = lut[codes]
  return out


_UNSEEN = 255  # (a palette has at most 255 colours: check_spec)


def _nearest(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
  d = np.sum((rgb.astype(np.int32)[..., None, :] - palette.astype(np.int32)) ** 2, -1)
  return np.argmin(d, -1).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _lookup_table(palette_bytes: bytes) -> np.ndarray:
  del palette_bytes  # (the cache key: one table per palette)
  return np.full(1 << 24, _UNSEEN, np.uint8)


def one_hot(obs: np.ndarray, num_colours: int) -> np.ndarray:
  """`[...] uint8` indices -> `[..., K] float32` one-hot tiles."""
  return np.eye(num_colours, dtype=np.float32)[obs]


def to_hwc(obs: np.ndarray) -> np.ndarray:
  """`[..., 3, H, W]` (envpool's colour layout) -> `[..., H, W, 3]`; other layouts unchanged."""
  return np.moveaxis(obs, -3, -1) if obs.shape[-3] == 3 else obs


def record(spec: FramesSpec) -> Frames:
  """Records `spec.num_steps` steps of `spec.num_envs` envpool environments (module doc)."""
  check_spec(spec)
  if spec.policy == "a2c":
    raise ValueError("spec.policy='a2c' frames come from a trained agent: record them with "
                     "envs.host.jax_env.record_policy_frames and cache them with save()")
  from envs.host.envpool_env import HostEnv  # noqa: PLC0415  (envpool: lazily)
  env = HostEnv(spec.task_id, num_envs=spec.num_envs, seed=spec.seed, img_height=210,
                img_width=160, stack_num=1, gray_scale=False)
  try:
    n_act = int(env.action_space.n)
    rng = np.random.default_rng(spec.seed)
    obs, _ = env.reset()
    raw = [downsample(to_hwc(np.asarray(obs)), spec.size)]
    actions, rewards, valid = [], [], []
    prev = rng.integers(0, n_act, spec.num_envs)
    for _ in range(spec.num_steps):   # host-side envpool stepping: not jittable
      fresh = rng.integers(0, n_act, spec.num_envs)
      if spec.policy == "sticky":
        a = np.where(rng.random(spec.num_envs) < spec.sticky_prob, prev, fresh)
      else:
        a = fresh
      out = env.step(a.astype(np.int32))
      raw.append(downsample(to_hwc(np.asarray(out.obs)), spec.size))
      actions.append(a)
      rewards.append(out.reward)
      # obs[t + 1] of a reset step is the next episode's first frame (envpool resets on the
      # step after the end, ignoring its action).
      valid.append(1.0 - np.asarray(out.info["reset_step"], np.float32))
      prev = a
  finally:
    env.close()
  raw = np.stack(raw)
  palette = palette_from_frames(raw, spec.num_colours)
  return Frames(quantise(raw, palette), np.stack(actions).astype(np.int32),
                np.stack(rewards).astype(np.float32), np.stack(valid).astype(np.float32),
                palette)


def _digest(frames: Frames) -> str:
  h = hashlib.sha256()
  for name in ARRAYS:
    a = np.ascontiguousarray(getattr(frames, name))
    h.update(name.encode())
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
  return h.hexdigest()


def save(path: str, frames: Frames, spec: FramesSpec) -> None:
  """Writes the cache atomically (temporary file, then rename)."""
  meta = json.dumps({"spec": dataclasses.asdict(spec), "sha256": _digest(frames)})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "wb") as f:
    np.savez_compressed(f, meta=np.asarray(meta), **frames._asdict())
  os.replace(tmp, path)


def load(path: str, spec: FramesSpec | None = None) -> Frames:
  """Reads and verifies a cache (module doc); `spec`: the spec it must have been recorded under."""
  try:
    with np.load(path, allow_pickle=False) as z:
      meta = json.loads(str(z["meta"]))
      frames = Frames(**{name: np.asarray(z[name]) for name in ARRAYS})
  except Exception as e:  # noqa: BLE001  (any unreadable file is refused the same way)
    raise ValueError(f"frame cache {path!r} is corrupted or not a frame cache "
                     f"({type(e).__name__}: {e}); delete it to record again.") from e
  if _digest(frames) != meta.get("sha256"):
    raise ValueError(f"frame cache {path!r} is corrupted: its arrays do not match their stored "
                     "SHA-256; delete it to record again.")
  if spec is not None and meta.get("spec") != dataclasses.asdict(spec):
    raise ValueError(f"frame cache {path!r} was recorded under {meta.get('spec')}, not the "
                     f"requested {dataclasses.asdict(spec)}; use another path or delete it.")
  return frames


def load_or_record(path: str, spec: FramesSpec) -> Frames:
  """The cached recording at `path` if there is one (verified), else records and caches it."""
  check_spec(spec)
  if os.path.exists(path):
    return load(path, spec)
  frames = record(spec)
  save(path, frames, spec)
  return frames
