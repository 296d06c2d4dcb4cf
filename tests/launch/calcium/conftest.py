"""Synthetic CASCADE-format ground-truth folders for the calcium launcher tests."""
import numpy as np
import pytest
import scipy.io


def write_cascade_set(folder, rate=60.0, neurons=2, recordings=2, seconds=40.0, seed=0,
                      spike_amplitude=3.0, noise_std=1.0, kernel_seconds=3.0):
  """Writes `neurons` cell files of `recordings` Poisson-spiking traces (1 Hz) into `folder`.

  Fluorescence: spike counts convolved with `spike_amplitude * exp(-t / 0.5 s)` (cut after
  `kernel_seconds`) plus Gaussian noise of std `noise_std`; spike times in units of 1e-4 s, as
  the CASCADE files store them. Returns `folder`.
  """
  folder.mkdir()
  rng = np.random.default_rng(seed)
  frames = int(seconds * rate)
  t = np.arange(frames) / rate
  kernel = spike_amplitude * np.exp(-np.arange(int(kernel_seconds * rate)) / (0.5 * rate))
  for n in range(neurons):
    structs = []
    for _ in range(recordings):
      counts = rng.poisson(1.0 / rate, frames)
      fluo = np.convolve(counts, kernel)[:frames] + noise_std * rng.normal(size=frames)
      spikes = np.repeat(t, counts) + rng.uniform(0, 1 / rate, counts.sum())
      structs.append({"fluo_time": t, "fluo_mean": fluo, "events_AP": spikes * 1e4})
    scipy.io.savemat(folder / f"cell{n}.mat", {"CAttached": np.array(structs, dtype=object)})
  return folder


@pytest.fixture
def cascade_set():
  """`write_cascade_set`, for tests that build their own ground-truth folders."""
  return write_cascade_set
