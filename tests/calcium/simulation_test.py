"""calcium.simulation: the single-spike peak against hand-worked values, the mapped simulation
against a loop over cells, the SNR scaling of random cells, normalised parameters."""
import jax
import numpy as np
import pytest

from calcium import data, models, simulation


def test_single_spike_peak_of_scf_is_alpha():
  # c_0 = 1 after the spike, then c decays: the peak above beta is alpha, at t = 0.
  m = models.make_model("scf")
  assert float(simulation.single_spike_peak(m, m.init(alpha=2.5, beta=-1.0, tau=0.7))) == (
      pytest.approx(2.5, rel=1e-6))


def test_single_spike_peak_of_scdf_by_hand():
  # tau << dt: the calcium is 1 for the spike's frame and ~exp(-dt / tau) = e^-16.7 after, so the
  # dye peaks at t = 0: b_0 = b_eq (1 - exp(-(k_on + k_off) dt)) with b_eq = k_on / (k_on + k_off)
  # (c^hill = 1), and the peak is alpha b_0.
  m = models.make_model("scdf", frame_rate=60.0)
  k_on, k_off, alpha, dt = 20.0, 5.0, 3.0, 1.0 / 60.0
  raw = m.init(tau=1e-3, k_on=k_on, k_off=k_off, hill=2.0, alpha=alpha, beta=0.4)
  b0 = k_on / (k_on + k_off) * (1.0 - np.exp(-(k_on + k_off) * dt))
  assert float(simulation.single_spike_peak(m, raw)) == pytest.approx(alpha * b0, rel=1e-5)


def test_single_spike_peak_per_trace_and_window():
  # DS-BAP: a bAP raises both calcium traces by 1, so the peaks are (alpha_spine, alpha_dendrite).
  m = models.make_model("ds_bap", frame_rate=30.0)
  np.testing.assert_allclose(simulation.single_spike_peak(m, m.init(alpha=(2.0, 0.5))),
                             [2.0, 0.5], rtol=1e-6)
  # scf_rise is scaled so that one spike peaks at alpha (after a rise over several frames).
  m = models.make_model("scf_rise")
  assert float(simulation.single_spike_peak(m, m.init(alpha=1.7, tau=1.0, tau_rise=0.1))) == (
      pytest.approx(1.7, rel=1e-5))
  # Over the whole range of decay times the SCDF peak lies inside 120 frames: a longer window
  # gives the same value (the former 120- and 240-frame copies agreed).
  m = models.make_model("scdf")
  for tau in (0.05, 0.4, 1.0, 5.0):
    raw = m.init(tau=tau)
    assert (simulation.single_spike_peak(m, raw, 120)
            == simulation.single_spike_peak(m, raw, 480)), tau
  with pytest.raises(ValueError, match="num_frames must be a positive integer"):
    simulation.single_spike_peak(m, m.init(), 0)


def test_simulate_equals_a_loop_over_cells():
  m = models.make_model("scdf")
  raws = simulation.random_cells(m, np.random.default_rng(0), 3, tau_range=(0.4, 1.0),
                                 noise_std=1.0, firing_rate=2.0, spike_snr=3.0)
  keys = jax.vmap(jax.random.key)(np.arange(3) + 7)
  spikes, traces = simulation.simulate(m, raws, keys, 300)
  assert spikes.shape == (3, 300, 1) and traces.shape == (3, 300, 1)
  for i in range(3):
    s, f = jax.jit(m.simulate, static_argnums=2)(jax.tree.map(lambda x: x[i], raws),
                                                 jax.random.key(7 + i), 300)
    np.testing.assert_array_equal(spikes[i], s)  # Bit for bit: the launchers' numbers stay.
    np.testing.assert_array_equal(traces[i], f)
  # All cells at once under vmap: the same spikes, traces equal to float32 rounding.
  spikes_v, traces_v = simulation.simulate(m, raws, keys, 300, batch_size=3)
  np.testing.assert_array_equal(spikes_v, spikes)
  np.testing.assert_allclose(traces_v, traces, rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match="one key per cell"):
    simulation.simulate(m, raws, keys[:2], 300)
  with pytest.raises(ValueError, match="batch_size must be None or a positive integer"):
    simulation.simulate(m, raws, keys, 300, batch_size=0)


def test_random_cells_peak_at_the_snr():
  m = models.make_model("scdf")
  raws = simulation.random_cells(m, np.random.default_rng(1), 4, tau_range=(0.4, 1.0),
                                 noise_std=0.5, firing_rate=1.0, spike_snr=3.0, k_on=10.0)
  for i in range(4):
    raw = jax.tree.map(lambda x: x[i], raws)
    assert float(simulation.single_spike_peak(m, raw)) == pytest.approx(1.5, rel=1e-5)
    phys = m.constrain(raw)
    assert 0.4 <= float(phys["tau"]) <= 1.0 and float(phys["k_on"]) == pytest.approx(10.0)
    assert float(phys["sigma"]) == pytest.approx(0.5)
  with pytest.raises(ValueError, match="one-trace model"):
    simulation.random_cells(models.make_model("ds_bap"), np.random.default_rng(0), 1,
                            tau_range=(0.2, 0.4), noise_std=1.0, firing_rate=1.0, spike_snr=3.0)


def test_random_spine_pairs_and_normalised_params():
  m = models.make_model("ds_bap", frame_rate=30.0)
  raws = simulation.random_spine_pairs(
      m, np.random.default_rng(2), 2, spine_tau_range=(0.2, 0.4), dendrite_tau_range=(0.3, 0.6),
      event_amplitude_range=(0.7, 1.3), noise_std=1.0, spike_snr=3.0, bap_rate=0.5,
      event_rate=0.5)
  phys = jax.vmap(m.constrain)(raws)
  np.testing.assert_allclose(phys["alpha"], 3.0, rtol=1e-6)
  assert np.all((0.7 <= phys["event_amplitude"]) & (phys["event_amplitude"] <= 1.3))
  spikes, traces = simulation.simulate(m, raws, jax.random.split(jax.random.key(0), 2), 600)
  norm = simulation.normalised_params(m, raws, traces)
  # The mean trace under the normalised params is the true mean trace in normalise() units.
  for i in range(2):
    f = traces[i]
    mu = np.asarray(m.mean_fluorescence(jax.tree.map(lambda x: x[i], raws), spikes[i]))
    mu_norm = np.asarray(m.mean_fluorescence(jax.tree.map(lambda x: x[i], norm), spikes[i]))
    for j in range(2):
      expected = (mu[:, j] - np.nanmedian(f[:, j])) / data.noise_level(f[:, j])
      np.testing.assert_allclose(mu_norm[:, j], expected, rtol=1e-4, atol=1e-4)
  # One trace: scalar fields stay scalars.
  m1 = models.make_model("scf")
  raws1 = simulation.random_cells(m1, np.random.default_rng(0), 2, tau_range=(0.4, 1.0),
                                  noise_std=1.0, firing_rate=1.0, spike_snr=3.0)
  _, traces1 = simulation.simulate(m1, raws1, jax.random.split(jax.random.key(1), 2), 400)
  norm1 = simulation.normalised_params(m1, raws1, traces1)
  assert norm1["alpha"].shape == (2,)
  np.testing.assert_allclose(m1.constrain(jax.tree.map(lambda x: x[0], norm1))["alpha"],
                             3.0 / data.noise_level(traces1[0, :, 0]), rtol=1e-5)
  with pytest.raises(ValueError, match="needs the 'ds_bap' model"):
    simulation.random_spine_pairs(m1, np.random.default_rng(0), 1, spine_tau_range=(0.2, 0.4),
                                  dendrite_tau_range=(0.3, 0.6),
                                  event_amplitude_range=(0.7, 1.3), noise_std=1.0,
                                  spike_snr=3.0, bap_rate=0.5, event_rate=0.5)
