"""Simulated cells for the DeepSpike experiments (Speiser et al. 2017, Secs. 3.1 and 3.4).

* `single_spike_peak`: the peak, above the resting baseline, of the noiseless response to one
  spike (channel 0) -- the scale that sets a simulated cell's signal-to-noise ratio and the
  per-cell initial alpha of `calcium.train.initial_generative_params`.
* `random_cells`: per-cell parameters of a one-trace model (SCF, SCDF, ...) around typical
  GCaMP6 values, alpha scaled so that one isolated spike peaks at `spike_snr` noise std.
* `random_spine_pairs`: per-pair DS-BAP parameters (spine and dendrite, Sec. 3.4).
* `simulate`: spikes and traces of many cells in one jitted call, `GenerativeModel.simulate`
  mapped over the cells' parameters and keys (vmapped in batches of `batch_size` cells).
* `normalised_params`: the true parameters in the units of `calcium.train.make_dataset`'s
  per-trace normalisation (median 0, noise std 1), for runs that hold the true model fixed.

Parameters are drawn on the host from a `np.random.Generator` (cheap, and the launchers'
published numbers depend on that stream); the traces are drawn on the device.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from calcium import data as data_lib
from calcium import models as models_lib

Params = dict[str, Any]


def _stack(raws: list[Params]) -> Params:
  return jax.tree.map(lambda *x: np.stack(x), *raws)


def single_spike_peak(model: models_lib.GenerativeModel, raw: Params, num_frames: int = 240):
  """max_t [mu_t(one spike at t = 0) - mu_t(no spike)] per trace: `()` for one trace, else `(C,)`.

  For SCF (c_t = gamma c_{t-1} + s_t, f = alpha c + beta) this is alpha, reached at t = 0; for
  SCDF the dye's binding makes it a fraction of alpha; the window of `num_frames` frames must
  hold the peak (a few frames for every model here). Evaluated eagerly on one cell's `raw`.
  """
  if not (isinstance(num_frames, int) and num_frames >= 1):
    raise ValueError(f"num_frames must be a positive integer; got {num_frames!r}.")
  one = np.zeros((num_frames * model.upsample, model.num_spike_channels))
  one[0, 0] = 1.0  # Channel 0: the spike (for DS-BAP the bAP, seen by both traces).
  mu = np.asarray(model.mean_fluorescence(raw, one))
  rest = np.asarray(model.mean_fluorescence(raw, np.zeros_like(one)))
  # Both responses share the baseline (beta, drift), so the difference is the spike's alone.
  peak = np.max(mu - rest, axis=0)
  return peak[0] if model.num_traces == 1 else peak


def random_cells(model: models_lib.GenerativeModel, rng: np.random.Generator, num_cells: int, *,
                 tau_range: tuple[float, float], noise_std: float, firing_rate: float,
                 spike_snr: float, beta_std: float = 0.5, **fixed) -> Params:
  """Stacked raw params `(num_cells, ...)` of a one-trace model: tau ~ U(tau_range) seconds,
  beta ~ N(0, beta_std^2), sigma = noise_std, rate = firing_rate Hz, the `fixed` fields (e.g.
  SCDF's k_on, k_off, hill) as given, and alpha such that `single_spike_peak` equals
  `spike_snr * noise_std`."""
  if model.num_traces != 1:
    raise ValueError(f"random_cells needs a one-trace model; {model.name!r} has "
                     f"{model.num_traces} traces (see random_spine_pairs).")
  raws = []
  for _ in range(num_cells):
    common = dict(tau=rng.uniform(*tau_range), sigma=noise_std, rate=firing_rate,
                  beta=rng.normal(0, beta_std), **fixed)
    peak = float(single_spike_peak(model, model.init(alpha=1.0, **common)))
    raws.append(model.init(alpha=spike_snr * noise_std / peak, **common))
  return _stack(raws)


def random_spine_pairs(model: models_lib.GenerativeModel, rng: np.random.Generator,
                       num_cells: int, *, spine_tau_range: tuple[float, float],
                       dendrite_tau_range: tuple[float, float],
                       event_amplitude_range: tuple[float, float], noise_std: float,
                       spike_snr: float, bap_rate: float, event_rate: float,
                       beta_std: float = 0.5) -> Params:
  """Stacked DS-BAP raw params (Speiser et al. 2017, Sec. 3.4): per pair, spine and dendrite
  decay times uniform in their ranges, the spine event's size relative to a bAP's uniform in
  `event_amplitude_range`, one bAP peaking at `spike_snr * noise_std` in both traces (alpha: the
  calcium jump of a bAP is 1), baselines N(0, beta_std^2), rates `bap_rate` and `event_rate` Hz."""
  if model.name != "ds_bap":
    raise ValueError(f"random_spine_pairs needs the 'ds_bap' model; got {model.name!r}.")
  raws = []
  for _ in range(num_cells):
    tau = (rng.uniform(*spine_tau_range), rng.uniform(*dendrite_tau_range))
    raws.append(model.init(tau=tau, event_amplitude=rng.uniform(*event_amplitude_range),
                           alpha=(spike_snr * noise_std,) * 2,
                           beta=tuple(rng.normal(0, beta_std, 2)), sigma=(noise_std,) * 2,
                           rate=(bap_rate, event_rate)))
  return _stack(raws)


def simulate(model: models_lib.GenerativeModel, raws: Params, keys: jax.Array, num_frames: int,
             *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Spikes `(N, num_frames * upsample, S)` and traces `(N, num_frames, C)` of N cells, cell i
  from `raws[i]` and `keys[i]`, in one jitted `lax.map` of `model.simulate` over the cells.

  `batch_size` cells are simulated at once under `jax.vmap` (`None`: one at a time, a compiled
  loop; `N`: all at once, the fastest on an accelerator). The default reproduces a Python loop of
  `jit(model.simulate)` bit for bit; vmapped, XLA's vectorised exp moves SCDF traces by up to one
  float32 ulp (4.8e-7 on the default preset of `launch.calcium.simulated`).
  """
  keys = jnp.asarray(keys)
  n = jax.tree.leaves(raws)[0].shape[0]
  if keys.shape[:1] != (n,):
    raise ValueError(f"keys must hold one key per cell ({n}); got shape {keys.shape}.")
  if batch_size is not None and not (isinstance(batch_size, int) and batch_size >= 1):
    raise ValueError(f"batch_size must be None or a positive integer; got {batch_size!r}.")

  @jax.jit
  def run(raws, keys):
    return jax.lax.map(lambda rk: model.simulate(rk[0], rk[1], num_frames), (raws, keys),
                       batch_size=batch_size)

  spikes, traces = run(raws, keys)
  return np.asarray(spikes), np.asarray(traces)


def normalised_params(model: models_lib.GenerativeModel, raws: Params, traces) -> Params:
  """The raw params `raws (N, ...)` of the cells that made `traces (N, T, C)`, re-expressed for
  the traces in `calcium.data.normalise` units: alpha, sigma divided by each trace's noise level,
  beta centred on its median and divided likewise (the other fields are unit-free)."""
  out = []
  for i, f in enumerate(np.asarray(traces)):
    phys = model.constrain(jax.tree.map(lambda x: x[i], raws))
    centre = np.nanmedian(f, axis=0)
    scale = np.array([data_lib.noise_level(f[:, j]) for j in range(f.shape[1])])
    if model.num_traces == 1:
      centre, scale = centre[0], float(scale[0])
    phys = dict(phys, alpha=phys["alpha"] / scale, beta=(phys["beta"] - centre) / scale,
                sigma=phys["sigma"] / scale)
    out.append(model.unconstrain(phys))
  return _stack(out)
