"""Tests of envs.host.atari_frames: the recorder's shapes and dtypes on envpool's MsPacman, the
downsampling and palette by hand, and the cache's round trip and refusals."""
import dataclasses

import numpy as np
import pytest

from envs.host import atari_frames as af


def test_downsample_and_quantise_by_hand():
  frames = np.zeros((4, 6, 3), np.uint8)
  frames[:, :, 0] = np.arange(6)[None, :] * 10 + np.arange(4)[:, None]   # R = 10 col + row
  small = af.downsample(frames, 2)
  # Centres: rows floor(0.5 * 4 / 2) = 1 and floor(1.5 * 2) = 3; cols 1 and 4.
  np.testing.assert_array_equal(small[..., 0], [[11, 41], [13, 43]])
  pal = np.array([[0, 0, 0], [200, 0, 0], [0, 0, 250]], np.uint8)
  rgb = np.array([[[10, 0, 0], [150, 0, 0], [0, 10, 200]]], np.uint8)
  np.testing.assert_array_equal(af.quantise(rgb, pal), [[0, 1, 2]])
  many = np.array([[[1, 1, 1]] * 3 + [[2, 2, 2]] * 5 + [[3, 3, 3]]], np.uint8)
  np.testing.assert_array_equal(af.palette_from_frames(many, 2), [[2, 2, 2], [1, 1, 1]])
  oh = af.one_hot(np.array([[2, 0]], np.uint8), 3)
  np.testing.assert_array_equal(oh, [[[0, 0, 1], [1, 0, 0]]])


def test_quantise_table_equals_nearest_colour_by_distance():
  rng = np.random.default_rng(3)
  pal = rng.integers(0, 256, (8, 3)).astype(np.uint8)
  frames = rng.integers(0, 256, (2, 30, 40, 3)).astype(np.uint8)
  frames[0, :5] = pal[3]          # exact palette colours map to themselves
  direct = np.argmin(((frames.astype(np.int32)[..., None, :] - pal.astype(np.int32)) ** 2)
                     .sum(-1), -1)
  for _ in range(2):              # first fills the table, then reads it
    np.testing.assert_array_equal(af.quantise(frames, pal), direct)
  assert np.all(af.quantise(frames, pal)[0, :5] == 3)


def _fake(spec):
  t, b, s, k = spec.num_steps, spec.num_envs, spec.size, spec.num_colours
  rng = np.random.default_rng(0)
  return af.Frames(rng.integers(0, k, (t + 1, b, s, s)).astype(np.uint8),
                   rng.integers(0, 9, (t, b)).astype(np.int32), np.zeros((t, b), np.float32),
                   np.ones((t, b), np.float32), np.zeros((k, 3), np.uint8))


def test_cache_round_trip_and_refusals(tmp_path):
  spec = af.FramesSpec(num_envs=2, num_steps=3, size=8, num_colours=4)
  frames = _fake(spec)
  path = str(tmp_path / "f.npz")
  af.save(path, frames, spec)
  back = af.load(path, spec)
  for name in af.ARRAYS:
    np.testing.assert_array_equal(getattr(back, name), getattr(frames, name))
    assert getattr(back, name).dtype == getattr(frames, name).dtype
  with pytest.raises(ValueError, match="recorded under"):
    af.load(path, dataclasses.replace(spec, size=16))
  # Arrays changed behind the stored digest.
  bad = frames._replace(reward=frames.reward + 1)
  meta_spec = spec
  af.save(path, frames, meta_spec)
  with np.load(path) as z:
    content = {k: z[k] for k in z.files}
  content["reward"] = bad.reward
  with open(path, "wb") as f:
    np.savez(f, **content)
  with pytest.raises(ValueError, match=r"f\.npz.*SHA-256"):
    af.load(path, spec)
  with open(path, "wb") as f:
    f.write(b"not a zip")
  with pytest.raises(ValueError, match=r"f\.npz.*corrupted"):
    af.load_or_record(path, spec)
  with pytest.raises(ValueError, match="spec.policy"):
    af.check_spec(dataclasses.replace(spec, policy="a3c"))


def test_record_mspacman_shapes_and_cache(tmp_path):
  pytest.importorskip("envpool")
  from envs.host import envpool_env  # noqa: PLC0415
  if envpool_env.atari_rom_path("MsPacman") is None:
    pytest.skip("MsPacman ROM not installed in envpool's assets")
  spec = af.FramesSpec(policy="sticky", num_envs=2, num_steps=6, size=16, num_colours=5)
  path = str(tmp_path / "mspacman.npz")
  frames = af.load_or_record(path, spec)
  assert frames.obs.shape == (7, 2, 16, 16) and frames.obs.dtype == np.uint8
  assert frames.action.shape == (6, 2) and frames.action.dtype == np.int32
  assert frames.reward.shape == (6, 2) and frames.reward.dtype == np.float32
  assert frames.frame_valid.shape == (6, 2) and set(np.unique(frames.frame_valid)) <= {0.0, 1.0}
  assert frames.palette.shape[1] == 3 and frames.palette.dtype == np.uint8
  assert frames.obs.max() < frames.palette.shape[0] <= 5
  assert frames.palette.shape[0] >= 3   # maze, background, pellets at least
  assert np.all((frames.action >= 0) & (frames.action < 9))
  again = af.load_or_record(path, spec)   # from the cache: identical
  np.testing.assert_array_equal(again.obs, frames.obs)
