"""Tests of calcium.data: loading, NaN handling, rates and bad files."""
import numpy as np
import pytest
import scipy.io

from calcium import data

_FILES = data.chen2013_files()
needs_data = pytest.mark.skipif(
    not _FILES, reason=f"Chen 2013 data absent from {data.default_data_dir()} (set "
    f"${data.DATA_ENV_VAR} to the folder holding {data.CHEN2013_SUBDIR}/).")


def _write(path, **fields):
  scipy.io.savemat(path, {"CAttached": fields})
  return path


def test_load_mat_synthetic_with_nan(tmp_path):
  t = np.arange(10) / 50.0
  f = np.arange(10.0)
  f[[3, 4]] = np.nan
  path = _write(tmp_path / "cell.mat", fluo_time=t, fluo_mean=f,
                events_AP=np.array([500.0, 1000.0]))
  (rec,) = data.load_mat(path)
  assert rec.name == "cell#0" and rec.nan_frames == 2
  np.testing.assert_allclose(rec.spike_times, [0.05, 0.1])
  np.testing.assert_allclose(rec.frame_rate, 50.0)
  np.testing.assert_array_equal(rec.valid, np.isfinite(f))
  np.testing.assert_allclose(data.fill_nan(rec.fluorescence), np.arange(10.0))


def test_bad_files(tmp_path):
  with pytest.raises(ValueError, match="no such file"):
    data.load_mat(tmp_path / "missing.mat")
  bad = tmp_path / "text.mat"
  bad.write_text("not matlab")
  with pytest.raises(ValueError, match="text.mat: not a readable"):
    data.load_mat(bad)
  scipy.io.savemat(tmp_path / "other.mat", {"x": 1.0})
  with pytest.raises(ValueError, match="no variable 'CAttached'"):
    data.load_mat(tmp_path / "other.mat")
  path = _write(tmp_path / "nofluo.mat", fluo_time=np.arange(3.0), events_AP=np.ones(2))
  with pytest.raises(ValueError, match="nofluo.mat: .*no field 'fluo_mean'"):
    data.load_mat(path)
  path = _write(tmp_path / "short.mat", fluo_time=np.arange(3.0), fluo_mean=np.ones(4),
                events_AP=np.ones(1))
  with pytest.raises(ValueError, match="'fluo_time' has 3 frames"):
    data.load_mat(path)
  with pytest.raises(ValueError, match="no Chen 2013"):
    data.load_chen2013(tmp_path / "empty")


def test_spike_counts_and_noise_level():
  t = np.arange(5) * 0.1
  np.testing.assert_allclose(data.spike_counts(np.array([-0.04, 0.0, 0.12, 0.17, 0.41]), t),
                             [2, 1, 1, 0, 1])
  np.testing.assert_allclose(data.spike_counts(np.array([0.01, 0.12]), t, upsample=2)[:4],
                             [0, 1, 0, 1])
  rng = np.random.default_rng(0)
  x = rng.normal(0, 2.0, 20_000)
  assert data.noise_level(x) == pytest.approx(2.0, rel=0.03)
  assert np.nanmedian(data.normalise(x + 5)) == pytest.approx(0.0, abs=1e-12)


def test_match_frame_rate(tmp_path):
  t = np.arange(100) / 30.0
  rec = data.Recording("r", t, np.sin(t), np.array([]), 30.0, np.ones(100, bool), 0)
  assert data.match_frame_rate(rec, 30.2) is rec
  with pytest.raises(ValueError, match="30.00 Hz does not match the trained model's 60.00 Hz"):
    data.match_frame_rate(rec, 60.0, allow_resample=False)
  up = data.match_frame_rate(rec, 60.0)
  assert up.frame_rate == 60.0 and up.fluorescence.size == 199
  np.testing.assert_allclose(up.fluorescence, np.sin(up.frame_times), atol=2e-3)


def test_resample_trace_two_columns_and_gaps():
  t = np.arange(11) / 10.0
  f = np.stack([t, 2 * t], 1)
  valid = np.ones(11, bool)
  valid[5] = False
  new_t, new_f, new_valid = data.resample_trace(t, np.where(valid[:, None], f, np.nan), valid, 20.0)
  assert new_t.size == 21 and new_f.shape == (21, 2)
  # Linear data are reproduced exactly; frames next to the gap become invalid (NaN).
  np.testing.assert_array_equal(new_valid, ~np.isin(np.arange(21), [9, 10, 11]))
  np.testing.assert_allclose(new_f[new_valid], np.stack([new_t, 2 * new_t], 1)[new_valid],
                             atol=1e-12)
  assert np.all(np.isnan(new_f[~new_valid]))
  with pytest.raises(ValueError, match="share their first axis"):
    data.resample_trace(t, f[:5], valid, 20.0)


@needs_data
def test_chen2013_loads_18_recordings():
  recs = data.load_chen2013()
  assert len(recs) == 18
  assert all(abs(r.frame_rate - 60.06) < 0.1 for r in recs)
  assert sum(r.spike_times.size for r in recs) == 1917  # Sum of the per-file events_AP lengths.


def _synthetic_set(folder, recordings_per_file=(1, 2, 1), frames=300, rate=30.0, seed=0):
  """A CASCADE-format folder: one .mat per neuron, a struct array where a neuron has several."""
  folder.mkdir(parents=True)
  rng = np.random.default_rng(seed)
  for n, count in enumerate(recordings_per_file):
    structs = []
    for _ in range(count):
      t = np.arange(frames) / rate
      spikes = np.sort(rng.uniform(0, t[-1], 5))
      structs.append({"fluo_time": t, "fluo_mean": rng.normal(size=frames),
                      "events_AP": spikes * 1e4})
    content = structs[0] if count == 1 else np.array(structs, dtype=object)
    scipy.io.savemat(folder / f"neuron{n}.mat", {"CAttached": content})
  return folder


def test_load_folder_reads_every_recording_and_names_the_set(tmp_path):
  folder = _synthetic_set(tmp_path / "DS99-GCaMPx-test")
  (tmp_path / "README.md").write_text(
      "| folder | indicator | preparation |\n|---|---|---|\n"
      "| `DS99-GCaMPx-test` | GCaMPx | synthetic cells |\n")
  recs = data.load_folder(folder)
  assert [r.name for r in recs] == ["neuron0#0", "neuron1#0", "neuron1#1", "neuron2#0"]
  assert data.data_set_name(folder) == "DS99-GCaMPx-test"
  assert data.data_set_description(folder) == "DS99-GCaMPx-test (GCaMPx, synthetic cells)"
  assert data.data_set_description(tmp_path) == tmp_path.name  # No README row: the bare name.
  assert data.ground_truth_folder(tmp_path, "DS99-GCaMPx-test") == folder
  assert data.ground_truth_folder(folder) == folder  # No DS14 subfolder: the folder itself.
  with pytest.raises(ValueError, match="no .mat files in"):
    data.load_folder(tmp_path / "empty")


def test_select_recordings_uses_all_unless_limited_and_logs_drops(tmp_path, caplog):
  recs = data.load_folder(_synthetic_set(tmp_path / "set", recordings_per_file=(2, 2, 1)))
  with caplog.at_level("WARNING"):
    assert data.select_recordings(recs) == recs
    assert data.select_recordings(recs, 0) == recs
    assert data.select_recordings(recs, 5) == recs
    assert len(data.select_recordings(recs, None, seed=3)) == 5
  assert "dropped" not in caplog.text
  shuffled = data.select_recordings(recs, seed=3)
  order = np.random.default_rng(3).permutation(5)
  assert [r.name for r in shuffled] == [recs[i].name for i in order]
  with caplog.at_level("WARNING"):
    kept = data.select_recordings(recs, 2, seed=3, name="DS99")
  assert [r.name for r in kept] == [recs[i].name for i in order[:2]]
  assert caplog.text.count("dropped") == 1
  assert "DS99: max_recordings = 2 keeps 2 of 5 recordings; 3 dropped." in caplog.text
  with pytest.raises(ValueError, match="max_recordings must be >= 0"):
    data.select_recordings(recs, -1)


def test_nan_frame_time_is_named(tmp_path):
  t = np.arange(10) / 50.0
  t[4] = np.nan
  path = _write(tmp_path / "nant.mat", fluo_time=t, fluo_mean=np.ones(10), events_AP=np.ones(1))
  with pytest.raises(ValueError, match="1 non-finite \\(NaN or inf\\) frame times, first at "
                                       "frame 4"):
    data.load_mat(path)


def test_leading_frames_without_time_or_fluorescence_are_cut(tmp_path, caplog):
  t = np.arange(10) / 50.0
  f = np.arange(10.0)
  t[:3], f[:3] = np.nan, np.nan  # As DS07's Fish1_cell1 #0: no data before the first time.
  path = _write(tmp_path / "lead.mat", fluo_time=t, fluo_mean=f,
                events_AP=np.array([100.0, 700.0, 1500.0]))
  with caplog.at_level("WARNING"):
    (rec,) = data.load_mat(path)
  assert "lead#0: 3 frames without frame time or fluorescence cut (3 leading, 0 trailing)" in (
      caplog.text)
  np.testing.assert_allclose(rec.frame_times, t[3:])
  np.testing.assert_allclose(rec.fluorescence, f[3:])
  np.testing.assert_allclose(rec.spike_times, [0.07, 0.15])  # 0.01 s lies before the cut.
  f[0] = 1.0  # A fluorescence value without a time: refused.
  path = _write(tmp_path / "lead2.mat", fluo_time=t, fluo_mean=f, events_AP=np.ones(1))
  with pytest.raises(ValueError, match="3 non-finite \\(NaN or inf\\) frame times"):
    data.load_mat(path)
