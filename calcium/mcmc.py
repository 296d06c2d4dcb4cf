"""MCMC of the exact SCF posterior p(s | f) (reference for Speiser et al. 2017, Sec. 3.1).

A sampler over the binary spike train of the SCF model with known parameters. Each site t gets
(1) a Gibbs update from p(s_t | s_{-t}, f), whose log-odds are the prior log-odds plus the change
of the Gaussian log-likelihood when one spike's calcium kernel alpha gamma^(t'-t) is added to the
frames t' = t .. t + window - 1; then (2) a Metropolis move that swaps s_t and s_{t+1} (shifts a
spike by one frame; symmetric proposal, same prior), without which single-site Gibbs cannot move a
spike in time and freezes at the first timing it finds. The kernel is truncated after `window`
frames (exact when
window >= T). Marginals are Rao-Blackwellised: the mean over sweeps of the Gibbs conditional
probabilities (valid since both moves leave the posterior invariant). It is the slow,
exact-model reference the amortized network is compared with.

The chain starts from no spikes unless `init_spikes` is given. From that cold start the first
sweep is poor: the conditional at t sees the whole unexplained transient of a later spike at
t + k and, for spikes of a few noise std, gains likelihood from a spike at t while roughly
gamma^k > 1/2, so a spike is first drawn up to about ln 2 / (1 - gamma) frames early (23 at
tau = 0.56 s, 60 Hz) and the shift move then carries it forward site by site; the conditionals
recorded on the way are near 1 on all those frames, so an average over few sweeps is smeared
ahead of each spike.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from calcium import models as models_lib


def scf_gibbs_marginals(model: models_lib.GenerativeModel, raw, fluorescence, key,
                        num_sweeps: int = 100, burn_in: int = 20, window: int = 200,
                        init_spikes=None):
  """Posterior spike probabilities (T,) of the SCF model by single-site Gibbs sampling.

  Args:
    model: an SCF model with upsample 1 and no drift.
    raw: the cell's raw parameters (the model's `init` output).
    fluorescence: (T, 1) trace.
    key: PRNG key.
    num_sweeps: sweeps over all sites, including burn-in.
    burn_in: initial sweeps left out of the estimate.
    window: frames of the spike kernel kept (truncation of gamma^k).
    init_spikes: optional (T,) 0/1 spike train the chain starts from (default: no spikes).

  Returns:
    (T,) estimated p(s_t = 1 | f).
  """
  if model.name != "scf" or model.upsample != 1:
    raise ValueError(f"scf_gibbs_marginals needs an 'scf' model with upsample 1; got "
                     f"{model.name!r} with upsample {model.upsample}.")
  if "drift" in raw:
    raise ValueError("scf_gibbs_marginals does not model drift; use drift_terms=0.")
  if not 0 <= burn_in < num_sweeps:
    raise ValueError(f"burn_in must be in [0, num_sweeps={num_sweeps}); got {burn_in}.")
  fluorescence = jnp.asarray(fluorescence)
  if fluorescence.ndim != 2 or fluorescence.shape[1] != 1:
    raise ValueError(f"fluorescence must have shape (T, 1); got {fluorescence.shape}.")
  p = model.constrain(raw)
  num_frames = fluorescence.shape[0]
  if init_spikes is not None and jnp.shape(init_spikes) != (num_frames,):
    raise ValueError(f"init_spikes must have shape ({num_frames},) like the trace; got "
                     f"{jnp.shape(init_spikes)}.")
  gamma = jnp.exp(-model.frame_dt / p["tau"])
  kernel = p["alpha"] * gamma ** jnp.arange(window)
  shifted = jnp.concatenate([jnp.zeros((1,)), kernel[:-1]])  # The kernel one frame later.
  prior_logit = jnp.log(p["spike_prob"]) - jnp.log1p(-p["spike_prob"])
  inv_2var = 0.5 / p["sigma"] ** 2
  # Residual f - mean with no spikes, padded so every window slice stays in range.
  resid = jnp.concatenate([fluorescence[:, 0] - p["beta"], jnp.zeros((window,))])
  spikes0 = jnp.zeros((num_frames,), resid.dtype)
  if init_spikes is not None:  # Remove the initial spikes' (truncated) calcium.
    spikes0 = jnp.asarray(init_spikes, resid.dtype)
    resid = resid - jnp.concatenate([jnp.convolve(spikes0, kernel), jnp.zeros((1,))])
  valid = jnp.concatenate([jnp.ones((num_frames,)), jnp.zeros((window,))])

  def site(carry, t):
    spikes, resid, key = carry
    key, k, k2 = jax.random.split(key, 3)
    r = jax.lax.dynamic_slice(resid, (t,), (window,))
    m = jax.lax.dynamic_slice(valid, (t,), (window,))
    r0 = r + spikes[t] * kernel  # Residual with s_t = 0.
    logit = prior_logit + inv_2var * jnp.sum(m * (2.0 * r0 * kernel - kernel ** 2))
    prob = jax.nn.sigmoid(logit)
    s_new = jax.random.bernoulli(k, prob).astype(r.dtype)
    r1 = r0 - s_new * kernel
    spikes = spikes.at[t].set(s_new)
    # Shift move: a spike at t moves to t + 1 (direction +1) or back (-1).
    nxt = jnp.where(t + 1 < num_frames, spikes[jnp.minimum(t + 1, num_frames - 1)], s_new)
    direction = s_new - nxt  # 0: nothing to swap.
    delta = direction * (shifted - kernel)  # Change of the mean over the window.
    dll = inv_2var * jnp.sum(m * (2.0 * r1 * delta - delta ** 2))
    accept = (direction != 0) & (jnp.log(jax.random.uniform(k2)) < dll)
    r1 = jnp.where(accept, r1 - delta, r1)
    spikes = jnp.where(accept, spikes.at[t].set(nxt).at[jnp.minimum(t + 1, num_frames - 1)]
                       .set(s_new), spikes)
    resid = jax.lax.dynamic_update_slice(resid, r1, (t,))
    return (spikes, resid, key), prob

  def sweep(carry, _):
    carry, probs = jax.lax.scan(site, carry, jnp.arange(num_frames))
    return carry, probs

  init = (spikes0, resid, key)
  _, probs = jax.lax.scan(sweep, init, None, length=num_sweeps)
  return probs[burn_in:].mean(0)
