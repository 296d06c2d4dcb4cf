"""benchmarks/calcium_vs_oasis.py: OASIS timing leaves out the first call's import cost; the MCMC
budget ladder agrees with direct sampler calls and its summary fields are consistent."""
import json
import time

import jax
import numpy as np
import pytest

from benchmarks import calcium_vs_oasis
from calcium import mcmc, oasis_baseline


def test_time_oasis_excludes_first_call_cost(monkeypatch):
  calls = []

  def fake_deconvolve(f, order):  # First call slow, like oasis-deconv's import (~1 s).
    calls.append(len(f))
    if len(calls) == 1:
      time.sleep(0.5)
    return np.full(len(f), float(order))

  monkeypatch.setattr(oasis_baseline, "oasis_deconvolve", fake_deconvolve)
  traces = np.zeros((3, 1000))
  seconds, preds = calcium_vs_oasis.time_oasis(traces, 2, repeats=3)
  assert calls == [500] + [1000] * 9  # One short warm-up call, then 3 timed passes of 3 traces.
  assert seconds < 0.1  # The 0.5 s first call is not in the median.
  np.testing.assert_array_equal(np.stack(preds), np.full((3, 1000), 2.0))


def test_mean_and_se_literal():
  mean, se = calcium_vs_oasis.mean_and_se([1.0, 2.0, 3.0, 4.0, np.nan])  # nan left out.
  assert mean == 2.5
  np.testing.assert_allclose(se, np.sqrt(5.0 / 3.0) / 2.0)  # std (ddof 1) / sqrt(4).
  assert np.isnan(calcium_vs_oasis.mean_and_se([0.3])[1])


def test_cheapest_matching_budget():
  ladder = [dict(sweeps=1, corr_40ms=0.2), dict(sweeps=5, corr_40ms=0.85),
            dict(sweeps=20, corr_40ms=0.84), dict(sweeps=50, corr_40ms=0.9)]
  assert calcium_vs_oasis.cheapest_matching_budget(ladder, 0.85)["sweeps"] == 5  # Equal counts.
  assert calcium_vs_oasis.cheapest_matching_budget(ladder, 0.86)["sweeps"] == 50
  assert calcium_vs_oasis.cheapest_matching_budget(ladder, 0.1)["sweeps"] == 1
  assert calcium_vs_oasis.cheapest_matching_budget(ladder, 0.95) is None


def test_cheapest_within_noise():
  ladder = [dict(sweeps=1, minus_network_corr_40ms=-0.3, minus_network_corr_40ms_se=0.01),
            dict(sweeps=5, minus_network_corr_40ms=-0.03, minus_network_corr_40ms_se=0.01),
            dict(sweeps=20, minus_network_corr_40ms=-0.02, minus_network_corr_40ms_se=0.01)]
  assert calcium_vs_oasis.cheapest_within_noise(ladder)["sweeps"] == 20  # -0.02 + 2 x 0.01 = 0.
  assert calcium_vs_oasis.cheapest_within_noise(ladder, num_se=3.0)["sweeps"] == 5
  assert calcium_vs_oasis.cheapest_within_noise(ladder[:2]) is None


def test_mcmc_ladder_matches_direct_sampler_calls():
  model, raws, spikes, traces = calcium_vs_oasis.simulate(3, 300, seed=5)
  net_pred = np.clip(traces / 10.0, 0.0, 1.0)  # Any prediction: only paired differences matter.
  key = jax.random.key(7)
  ladder, network = calcium_vs_oasis.mcmc_ladder(model, raws, traces, spikes, net_pred,
                                                 (1, 3, 12), key, repeats=2)
  assert [r["sweeps"] for r in ladder] == [1, 3, 12]
  assert [r["burn_in"] for r in ladder] == [0, 0, 2]  # sweeps // 5, as mcmc.py needs < sweeps.
  net_fr, net_bn = calcium_vs_oasis.per_trace_scores(net_pred, spikes)
  assert network["corr_40ms"] == calcium_vs_oasis.mean_and_se(net_bn)[0]
  keys = jax.random.split(key, 3)
  for r in ladder:
    n = r["sweeps"]
    direct = jax.vmap(lambda raw, f, k, n=n: mcmc.scf_gibbs_marginals(
        model, raw, f, k, n, n // 5, calcium_vs_oasis.MCMC_WINDOW))(raws, traces[:, :, None], keys)
    fr, bn = calcium_vs_oasis.per_trace_scores(np.asarray(direct), spikes)
    np.testing.assert_allclose(r["corr_40ms"], bn.mean(), atol=1e-5)
    np.testing.assert_allclose(r["corr_frame_bins"], fr.mean(), atol=1e-5)
    np.testing.assert_allclose(r["minus_network_corr_40ms"], (bn - net_bn).mean(), atol=1e-5)
    np.testing.assert_allclose(r["minus_network_corr_40ms_se"],
                               (bn - net_bn).std(ddof=1) / np.sqrt(3), atol=1e-5)
    np.testing.assert_allclose(r["frames_per_s"], 3 * 300 / r["seconds"])
    assert r["measured_traces"] == 3 and r["compile_s"] > 0
  with pytest.raises(ValueError, match="strictly increasing"):
    calcium_vs_oasis.mcmc_ladder(model, raws, traces, spikes, net_pred, (5, 5), key)


def test_mcmc_ladder_from_initial_spikes():
  model, raws, spikes, traces = calcium_vs_oasis.simulate(3, 300, seed=5)
  net_pred = np.clip(traces / 10.0, 0.0, 1.0)
  key = jax.random.key(7)
  init = np.roll(spikes, 2, axis=1).astype(np.float32)  # Spikes two frames late.
  ladder, _ = calcium_vs_oasis.mcmc_ladder(model, raws, traces, spikes, net_pred, (2,), key,
                                           init_spikes=init, init_seconds=0.25)
  r = ladder[0]
  assert r["init_seconds"] == 0.25 and r["seconds"] == r["sampler_seconds"] + 0.25
  np.testing.assert_allclose(r["frames_per_s"], 3 * 300 / r["seconds"])
  direct = jax.vmap(lambda raw, f, k, s: mcmc.scf_gibbs_marginals(
      model, raw, f, k, 2, 0, calcium_vs_oasis.MCMC_WINDOW, s))(
          raws, traces[:, :, None], jax.random.split(key, 3), init)
  _, bn = calcium_vs_oasis.per_trace_scores(np.asarray(direct), spikes)
  np.testing.assert_allclose(r["corr_40ms"], bn.mean(), atol=1e-5)
  cold, _ = calcium_vs_oasis.mcmc_ladder(model, raws, traces, spikes, net_pred, (2,), key)
  assert cold[0]["corr_40ms"] != r["corr_40ms"]  # The start matters after 2 sweeps.


def test_oasis_init_spikes_thresholds_at_half_the_spike_size(monkeypatch):
  monkeypatch.setattr(oasis_baseline, "oasis_deconvolve",
                      lambda f, order: np.asarray(f, float) * (order == 1))
  traces = np.array([[0.0, 1.4, 1.5, 3.0], [0.0, 0.9, 1.1, 0.2]])
  init, seconds = calcium_vs_oasis.oasis_init_spikes(traces, [3.0, 2.0])
  np.testing.assert_array_equal(init, [[0, 0, 1, 1], [0, 0, 1, 0]])
  assert init.dtype == np.float32 and seconds >= 0


# Slow (50 s); fast counterpart: test_mcmc_ladder_matches_direct_sampler_calls.
@pytest.mark.slow
def test_quick_run_ladder_fields_consistent(tmp_path):
  out = tmp_path / "bench.json"
  assert calcium_vs_oasis.main(["--quick", "--out", str(out)]) == 0
  s = json.loads(out.read_text())
  ladder = s["mcmc_ladder"]
  sweeps = [r["sweeps"] for r in ladder]
  assert sweeps == list(calcium_vs_oasis.QUICK_SWEEPS) and sweeps == sorted(set(sweeps))
  assert s["mcmc_traces"] == 4 and all(r["measured_traces"] == 4 for r in ladder)
  net_corr = s["network_same_traces"]["corr_40ms"]
  assert s["rows"]["gibbs_mcmc_true_params"]["network_corr_40ms_same_traces"] == net_corr
  for r in ladder:  # Paired differences: the mean difference is the difference of the means.
    np.testing.assert_allclose(r["minus_network_corr_40ms"], r["corr_40ms"] - net_corr, atol=1e-9)
    assert r["corr_40ms_se"] > 0 and r["minus_network_corr_40ms_se"] > 0
  net_fps = s["rows"]["deepspike_network"]["frames_per_s"]
  matching = s["mcmc_matching_sweeps"]
  if matching is None:
    assert all(r["corr_40ms"] < net_corr for r in ladder)
    assert np.isnan(s["network_vs_mcmc_matching_speed"])
  else:
    i = sweeps.index(matching)
    assert ladder[i]["corr_40ms"] >= net_corr
    assert all(r["corr_40ms"] < net_corr for r in ladder[:i])  # The cheapest that reaches it.
    np.testing.assert_allclose(s["network_vs_mcmc_matching_speed"],
                               net_fps / ladder[i]["frames_per_s"])
  within = s["mcmc_within_2se_sweeps"]
  if within is not None:
    i = sweeps.index(within)
    assert ladder[i]["minus_network_corr_40ms"] >= -2 * ladder[i]["minus_network_corr_40ms_se"]
    if matching is not None:
      assert within <= matching  # Reaching the network's mean is within noise of it.
  init_ladder = s["mcmc_oasis_init_ladder"]
  assert [r["sweeps"] for r in init_ladder] == list(calcium_vs_oasis.QUICK_OASIS_INIT_SWEEPS)
  init_s = init_ladder[0]["init_seconds"]
  assert init_s > 0 and all(r["init_seconds"] == init_s for r in init_ladder)
  for r in init_ladder:
    np.testing.assert_allclose(r["seconds"], r["sampler_seconds"] + init_s)
    np.testing.assert_allclose(r["minus_network_corr_40ms"], r["corr_40ms"] - net_corr, atol=1e-9)
  init_match = s["mcmc_oasis_init_matching_sweeps"]
  if init_match is None:
    assert all(r["corr_40ms"] < net_corr for r in init_ladder)
  else:
    i = [r["sweeps"] for r in init_ladder].index(init_match)
    assert init_ladder[i]["corr_40ms"] >= net_corr
    assert all(r["corr_40ms"] < net_corr for r in init_ladder[:i])
    np.testing.assert_allclose(s["network_vs_mcmc_oasis_init_matching_speed"],
                               net_fps / init_ladder[i]["frames_per_s"])
  full = s["rows"]["gibbs_mcmc_true_params"]
  assert full["sweeps"] == sweeps[-1] and full["corr_40ms"] == ladder[-1]["corr_40ms"]
  np.testing.assert_allclose(s["network_vs_mcmc_speed"], net_fps / ladder[-1]["frames_per_s"])
  np.testing.assert_allclose(s["network_vs_mcmc_cheapest_speed"],
                             net_fps / ladder[0]["frames_per_s"])
