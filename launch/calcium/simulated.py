"""Simulated SCF / SCDF data: unsupervised DeepSpike vs OASIS AR1 / AR2 (Speiser 2017, Sec. 3.1).

For each model, `num_cells` traces are simulated with per-cell parameters drawn around typical
GCaMP6 values (one isolated spike peaks at `spike_snr` noise standard deviations); DeepSpike
(factorised CNN + the same generative model, unsupervised VIMCO, per-cell parameters initialised
from each trace's moments) is fitted to all of them and scored by the Pearson correlation of the
expected spike count with the true spikes per 60 Hz frame (mean over cells), next to:

* OASIS AR1 / AR2 on the same traces;
* the diagnosis run (`true_model_run`): the same network trained with the *true* generative
  parameters held fixed, which separates recognition-network errors from generative-model
  learning errors;
* for SCF, the exact model's posterior by MCMC with the true parameters (`calcium.mcmc`) on the
  first `mcmc_cells` cells, with DeepSpike's score on the same cells beside it.

It also reports how far the learned decay time and single-spike amplitude are from the truth.
"""
import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import evaluation, mcmc, models, oasis_baseline, simulation, train  # noqa: E402
from launch import app  # noqa: E402


def simulate_cells(name: str, config, rng: np.random.Generator):
  """Per-cell parameters around typical values (`calcium.simulation.random_cells`); returns the
  model, raw params (stacked), spikes (N, T, 1) and traces (N, T, 1)."""
  model = models.make_model(name, frame_rate=60.0)
  # SCDF: Hill-type binding with saturation (k_on c^n (1 - b) - k_off b).
  binding = (dict(k_on=config.scdf_k_on, k_off=config.scdf_k_off, hill=config.scdf_hill)
             if name == "scdf" else {})
  raws = simulation.random_cells(model, rng, config.num_cells, tau_range=config.tau_range,
                                 noise_std=config.noise_std, firing_rate=config.firing_rate,
                                 spike_snr=config.spike_snr, **binding)
  keys = jax.vmap(jax.random.key)(config.seed * 1000 + np.arange(config.num_cells))
  spikes, traces = simulation.simulate(model, raws, keys, config.num_frames)
  return model, raws, spikes, traces


def mean_corr(pred, spikes):
  return float(np.nanmean([evaluation.pearson(p, s) for p, s in zip(pred, spikes)]))


def fit(name, config, ds, run: app.Run, loop_name, generative_params=None):
  tcfg = train.default_config()
  tcfg.update(config.train.to_dict())
  tcfg.model = name
  if generative_params is not None:
    tcfg.train_generative = False
  trainer = train.make_trainer(tcfg, ds, generative_params)
  state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                         config.num_chunks, name=loop_name)
  infer = jax.jit(lambda p, f: trainer.recognition.probabilities(p, f))
  pred = [np.asarray(infer(state.recognition_params, f))[:, 0] for f in ds.fluorescence]
  return trainer, state, pred


def experiment(config, run: app.Run) -> dict:
  rng = np.random.default_rng(config.seed)
  summary, curves = {}, {}
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
  for name in config.models:
    model, raws, spikes, traces = simulate_cells(name, config, rng)
    ds = train.make_dataset(list(traces))
    true = spikes[:, :, 0]
    trainer, state, pred = fit(name, config, ds, run, name)
    summary[f"{name}_deepspike_corr"] = mean_corr(pred, true)
    summary[f"{name}_deepspike_count_ratio"] = float(np.sum(pred) / max(true.sum(), 1))
    # Learned vs true generative parameters (in normalised units), median over cells.
    true_norm = simulation.normalised_params(model, raws, traces)
    learned = jax.vmap(model.constrain)(state.generative_params)
    target = jax.vmap(model.constrain)(jax.tree.map(np.asarray, true_norm))
    summary[f"{name}_tau_rel_error"] = float(np.median(
        np.abs(np.asarray(learned["tau"]) / np.asarray(target["tau"]) - 1)))
    peak = lambda raw, i: float(simulation.single_spike_peak(  # noqa: E731
        model, jax.tree.map(lambda x: x[i], raw)))
    peaks = [(peak(state.generative_params, i), peak(true_norm, i))
             for i in range(min(config.num_cells, 10))]
    summary[f"{name}_spike_amplitude_rel_error"] = float(np.median(
        [abs(a / b - 1) for a, b in peaks]))
    curves[name] = np.asarray(run.history(name)["bound_per_frame"])
    summary[f"{name}_final_bound_per_frame"] = float(curves[name][-10:].mean())
    if config.true_model_run:
      _, _, pred_true = fit(name, config, ds, run, f"{name}_true_model", true_norm)
      summary[f"{name}_true_model_corr"] = mean_corr(pred_true, true)
      curves[f"{name} (true model)"] = np.asarray(
          run.history(f"{name}_true_model")["bound_per_frame"])
      summary[f"{name}_true_model_final_bound_per_frame"] = float(
          curves[f"{name} (true model)"][-10:].mean())
    for order in (1, 2):
      est = [oasis_baseline.oasis_deconvolve(t[:, 0], order) for t in traces]
      summary[f"{name}_oasis_ar{order}_corr"] = mean_corr(est, true)
    if name == "scf" and config.mcmc_cells:
      n = min(config.mcmc_cells, config.num_cells)
      gibbs = jax.jit(jax.vmap(lambda r, f, k: mcmc.scf_gibbs_marginals(
          model, r, f, k, config.mcmc_sweeps, config.mcmc_sweeps // 5, 200)))
      post = gibbs(jax.tree.map(lambda x: x[:n], raws), traces[:n],
                   jax.random.split(jax.random.key(config.seed), n))
      summary["scf_mcmc_true_params_corr"] = mean_corr(np.asarray(post), true[:n])
      summary["scf_deepspike_corr_mcmc_cells"] = mean_corr(pred[:n], true[:n])
  for label, curve in curves.items():
    axes[0].plot(curve, label=label, lw=0.8)
  # The first steps' bound is far lower; zoom on the rest of the run.
  tails = np.concatenate([c[len(c) // 10:] for c in curves.values()])
  axes[0].set_ylim(np.percentile(tails, 1) - 0.2, tails.max() + 0.2)
  axes[0].set(xlabel="step", ylabel="VIMCO bound per frame", title="learning curves")
  axes[0].legend(fontsize=7)
  labels = ["deepspike", "true_model", "oasis_ar1", "oasis_ar2"]
  width = 0.8 / len(config.models)
  for j, name in enumerate(config.models):
    axes[1].bar(np.arange(len(labels)) + j * width,
                [summary.get(f"{name}_{k}_corr", np.nan) for k in labels], width, label=name)
  axes[1].set_xticks(np.arange(len(labels)) + 0.4 - width / 2,
                     ["DeepSpike", "net, true model", "OASIS AR1", "OASIS AR2"], fontsize=8)
  axes[1].set(ylabel="correlation (60 Hz bins)", title="spike inference on simulated data")
  axes[1].legend()
  run.save_figure("simulated_correlation", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
