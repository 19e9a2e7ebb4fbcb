"""Features, training and scoring on a real LocalCluster over real NOAA data."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlwf import storage
from mlwf.errors import UserError
from workflows.storm import ingest, model_store, prepare, score
from workflows.storm.features import CATEGORICAL, FeatureEncoder, aliased_features
from workflows.storm.model import (
    TrainConfig,
    choose_engine,
    evaluate,
    month_split,
    predict_proba,
    time_split,
    train,
    worker_memory_limit,
)
from workflows.storm.parse import empty_curated
from workflows.storm.scorer import LinearScorer


def _events(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = empty_curated().reindex(range(n))
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_feature_encoder_follows_the_sklearn_contract() -> None:
    encoder = FeatureEncoder(min_frequency=2)
    assert clone(encoder).get_params() == {"min_frequency": 2}
    frame = _events(
        event_type=["Hail", "Hail", "Tornado", "Tornado", "Flood"],
        state=["TEXAS", "TEXAS", "IOWA", "IOWA", "IOWA"],
        cz_type=["C", "C", "C", "C", "C"],
        hail_size_in=[1.0, 1.75, 0.5, np.nan, 2.0],
    )
    assert encoder.fit(frame) is encoder
    assert encoder.categories_["event_type"] == ["Hail", "Tornado"]
    assert "cz_type=C" not in encoder.feature_names_, "a constant column carries no signal"
    assert "hail_size_in_missing" in encoder.feature_names_
    assert encoder.transform(frame).shape == (5, len(encoder.feature_names_))


def test_categories_never_seen_in_training_encode_as_zeros() -> None:
    train_frame = _events(
        event_type=["Hail"] * 3 + ["Tornado"] * 3,
        state=["TEXAS"] * 3 + ["IOWA"] * 3,
        wind_speed_kt=[50.0, 60.0, 70.0, np.nan, np.nan, 55.0],
    )
    encoder = FeatureEncoder(min_frequency=1).fit(train_frame)
    new = _events(event_type=["Blizzard"], state=["GUAM"], wind_speed_kt=[50.0])
    row = dict(zip(encoder.feature_names_, encoder.transform(new)[0], strict=True))
    assert all(row[name] == 0 for name in encoder.feature_names_ if name.split("=")[0] in CATEGORICAL)


def test_features_that_repeat_others_are_found_and_left_out() -> None:
    rng = np.random.default_rng(3)
    types = rng.choice(["Hail", "Tornado", "Flood"], 60)
    lat = rng.uniform(25, 49, 60)
    lat[::7] = np.nan
    frame = _events(
        event_type=list(types),
        state=list(rng.choice(["TEXAS", "IOWA", "OHIO"], 60)),
        wind_speed_kt=list(rng.gamma(2.0, 1.0, 60)),
        tor_f_scale=[f"EF{rng.integers(0, 4)}" if t == "Tornado" else None for t in types],
        begin_lat=list(lat),
        begin_lon=list(np.where(np.isnan(lat), np.nan, rng.uniform(-125, -67, 60))),
    )
    encoder = FeatureEncoder(min_frequency=1).fit(frame)
    X = encoder.encode(frame)
    dropped = aliased_features(len(X), X.sum(axis=0), X.T @ X, encoder.feature_names_)
    # lon is missing exactly when lat is; F-scale is missing exactly when it is not a tornado.
    assert sorted(dropped) == ["begin_lon_missing", "tor_f_scale_missing"]
    smaller = encoder.without(dropped)
    assert smaller.feature_names_ == [n for n in encoder.feature_names_ if n not in dropped]
    assert smaller.encode(frame).shape == (60, len(X[0]) - 2)
    assert np.linalg.matrix_rank(np.hstack([np.ones((60, 1)), smaller.encode(frame)])) == 1 + len(
        smaller.feature_names_
    )
    assert "begin_lon_missing" in encoder.feature_names_, "the original encoder is unchanged"


def test_time_split_trains_on_earlier_years() -> None:
    assert time_split([1995, 1993, 1994], None) == ([1993, 1994], [1995])
    assert time_split([1993, 1994, 1995], 1994) == ([1993], [1994, 1995])
    with pytest.raises(UserError, match="at least two years"):
        time_split([1995], None)
    with pytest.raises(UserError, match="no training years"):
        time_split([1993, 1994], 1990)


def test_a_month_split_trains_on_the_earliest_events_and_evaluates_on_the_rest() -> None:
    year = 2019 * 12
    even = {year + m: 100 for m in range(12)}  # Jan-Dec 2019, 100 events each
    cutoff, line = month_split(even, "1996+") or (0, "")
    assert cutoff == year + 9, "Jan-Sep hold 75%: the first share of 70% or more trains"
    assert line == (
        "Jan 2019-Sep 2019: the evaluation years' earlier months (their era, 1996+, has no earlier years), "
        "evaluated on Oct 2019-Dec 2019: a split within the year mixes seasons"
    )
    seasonal = {year + 4: 700, year + 5: 200, year + 11: 100}  # May heavy: May alone is 70%
    assert (month_split(seasonal, "1996+") or (0, ""))[0] == year + 5
    assert month_split({year + 4: 50, year + 7: 0}, "1996+") is None, "one month with events: no split"
    two_years = {2018 * 12 + 11: 10, year: 10, year + 1: 10}
    assert (month_split(two_years, "1996+", share=0.5) or (0, ""))[1].startswith("Dec 2018-Jan 2019: ")


def test_evaluate_matches_known_values() -> None:
    y = np.array([0, 0, 1, 1])
    metrics = evaluate(y, np.array([0.1, 0.4, 0.35, 0.8]))
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))


@pytest.fixture(scope="module")
def curated_sample(
    sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, dask_client: object
) -> storage.Published:
    root = tmp_path_factory.mktemp("curated-sample")
    for item in ingest.list_source(str(sample_dir)):
        ingest.ingest_file(item, str(root / "raw"))
    return prepare.prepare(ingest.raw_files(str(root / "raw")), str(root / "curated"))


@pytest.fixture(scope="module")
def trained(curated_sample: storage.Published) -> object:
    """The distributed engine, forced: the sample would otherwise train on one worker."""
    return train(prepare.read_curated(curated_sample), TrainConfig(engine="dask-ml"))


@pytest.mark.slow
def test_prepare_writes_curated_parquet_partitioned_by_year(curated_sample: storage.Published) -> None:
    folders = sorted(p.name for p in Path(curated_sample.url).iterdir() if p.is_dir())
    assert folders == ["year=1993", "year=1994", "year=1995"]
    frame = prepare.read_curated(curated_sample).compute()
    assert len(frame) == curated_sample.meta["rows"] == 44_752
    assert frame["event_id"].is_unique
    assert str(frame["begin_utc"].dtype).startswith("datetime64")
    assert "UTC" in str(frame["begin_utc"].dtype)


def test_the_engine_follows_the_data_size_unless_one_is_forced() -> None:
    gib = 2**30
    assert choose_engine("auto", 2_000_000, 130, 12 * gib) == "sklearn"  # 2 GiB matrix, 12 GiB worker
    assert choose_engine("auto", 2_000_000, 130, 4 * gib) == "dask-ml"  # would not fit 4 times over
    assert choose_engine("dask-ml", 1_000, 130, 12 * gib) == "dask-ml"
    assert choose_engine("sklearn", 10**9, 130, gib) == "sklearn"
    with pytest.raises(UserError, match="unknown training engine 'spark': expected one of auto, sklearn, dask-ml"):
        TrainConfig(engine="spark")


@pytest.mark.slow
def test_the_engine_is_chosen_against_the_current_clusters_worker_memory() -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="700MiB", dashboard_address=None) as cluster,
        Client(cluster),
    ):
        limit = worker_memory_limit()
    assert limit == 700 * 2**20
    # 300K rows x 100 features is 229 MiB as float64: four copies do not fit a 700 MiB worker.
    assert choose_engine("auto", 300_000, 100, limit) == "dask-ml"
    assert choose_engine("auto", 200_000, 100, limit) == "sklearn"


@pytest.mark.slow
def test_dask_ml_model_agrees_with_sklearn_and_beats_the_baseline(trained) -> None:  # type: ignore[no-untyped-def]
    metrics = trained.metrics
    assert trained.engine == "dask-ml"
    assert abs(metrics["model"]["roc_auc"] - metrics["sklearn"]["roc_auc"]) < 1e-6, "docs/storm.md: agree to 1e-6 AUC"
    assert metrics["model"]["roc_auc"] > metrics["baseline"]["roc_auc"] + 0.2
    assert metrics["model"]["log_loss"] < metrics["baseline"]["log_loss"]
    assert trained.train_years == [1993, 1994]
    assert trained.test_years == [1995]


@pytest.mark.slow
def test_by_default_the_sample_trains_on_one_worker_to_the_same_quality(
    trained,
    curated_sample: storage.Published,  # type: ignore[no-untyped-def]
) -> None:
    result = train(prepare.read_curated(curated_sample), TrainConfig())
    assert result.engine == "sklearn"
    assert set(result.metrics) == {"model", "baseline"}
    assert abs(result.metrics["model"]["roc_auc"] - trained.metrics["model"]["roc_auc"]) < 1e-6
    assert result.rows == trained.rows
    # The evaluation scored the test years with the production scorer: the same as the pipeline.
    test = prepare.read_curated(curated_sample).compute().query("year == 1995")
    np.testing.assert_allclose(result.test_scores["model"], predict_proba(result.model, test), rtol=1e-9)


@pytest.mark.slow
def test_scoring_handles_unseen_types_and_rerun_is_not_a_second_copy(
    trained,
    curated_sample: storage.Published,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    stored = model_store.save(
        str(tmp_path / "models"), trained, curated_sample.version, TrainConfig(), {"curves.png": b"png"}
    )
    curated = prepare.read_curated(curated_sample)
    odd = curated.map_partitions(lambda p: p.assign(event_type="Volcanic Ash", state="GUAM"))
    first = score.score(odd, "odd", stored, str(tmp_path / "scores"), years=[1995])
    scores = score.read_scores(str(tmp_path / "scores"))
    assert len(scores) == 20_461
    assert scores["p_damage"].between(0, 1).all()
    again = score.score(odd, "odd", stored, str(tmp_path / "scores"), years=[1995])
    assert not again.written
    assert again.version == first.version
    assert len(list((tmp_path / "scores").glob("*/*.parquet"))) == len(list(Path(first.url).glob("*.parquet")))


@pytest.mark.slow
def test_stored_models_round_trip_with_their_metadata(
    trained, curated_sample: storage.Published, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    models = str(tmp_path / "models")
    stored = model_store.save(models, trained, curated_sample.version, TrainConfig(), {"curves.png": b"png"})
    loaded = model_store.load(models)
    assert loaded.version == stored.version
    meta = loaded.metadata
    assert meta["data_version"] == curated_sample.version
    assert {"dask", "distributed", "dask-ml", "scikit-learn"} <= set(meta["library_versions"])
    assert meta["metrics"]["model"]["roc_auc"] == trained.metrics["model"]["roc_auc"]
    sample = prepare.read_curated(curated_sample).head(50)
    np.testing.assert_allclose(
        score.score_partition(sample, LinearScorer.from_pipeline(loaded.model))["p_damage"],
        predict_proba(stored.model, sample),
    )
    assert meta["engine"] == "dask-ml"
    assert model_store.find(models, curated_sample.version, TrainConfig()) is not None
    assert model_store.find(models, curated_sample.version, TrainConfig(C=0.5)) is None


@pytest.mark.reliability
def test_a_model_that_does_not_match_the_data_is_refused(
    trained, curated_sample: storage.Published, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    stored = model_store.save(
        str(tmp_path / "models"), trained, curated_sample.version, TrainConfig(), {"curves.png": b"png"}
    )
    curated = prepare.read_curated(curated_sample).drop(columns=["wind_speed_kt"])
    with pytest.raises(UserError, match=r"does not match the data: missing column\(s\) wind_speed_kt"):
        score.score(curated, "x", stored, str(tmp_path / "scores"))
    assert not (tmp_path / "scores").exists()


@pytest.mark.reliability
def test_a_corrupt_model_file_is_a_clear_error(trained, curated_sample: storage.Published, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    models = tmp_path / "models"
    stored = model_store.save(str(models), trained, curated_sample.version, TrainConfig(), {"curves.png": b"png"})
    (Path(stored.url) / "model.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(UserError, match="is not a storm-damage pipeline"):
        model_store.load(str(models))
    (Path(stored.url) / "model.pkl").write_bytes(b"garbage")
    with pytest.raises(UserError, match="is unreadable"):
        model_store.load(str(models))


LEGACY_MODELS = Path(__file__).parent / "data" / "legacy_models"


@pytest.mark.slow
def test_a_model_stored_before_the_workload_moved_still_loads_and_scores(curated_sample: storage.Published) -> None:
    """Its pickle names mlwf.features (the storm code's old home); it loads and scores 1995 as
    it did when it was stored."""
    assert b"mlwf.features" in next(LEGACY_MODELS.rglob("model.pkl")).read_bytes()
    stored = model_store.load(str(LEGACY_MODELS))
    assert type(stored.model.named_steps["features"]) is FeatureEncoder
    frame = prepare.read_curated(curated_sample).compute()
    test = frame[frame["year"] == 1995]
    from workflows.storm.model import with_target

    labelled = with_target(test)
    metrics = evaluate(labelled["damaged"].to_numpy(), predict_proba(stored.model, test))
    assert metrics["roc_auc"] == pytest.approx(stored.metadata["metrics"]["model"]["roc_auc"], abs=1e-9)


@pytest.mark.slow
def test_a_model_stored_by_older_code_is_the_champion_the_gate_compares_with(
    curated_sample: storage.Published, tmp_path: Path
) -> None:
    """The legacy model reads `magnitude` (one column for knots and inches), which curated data
    still has: it scores the same evaluation rows and the candidate is judged against it."""
    from workflows.storm import stages
    from workflows.storm.zones import Zones

    zones = Zones(str(tmp_path / "data"))
    shutil.copytree(LEGACY_MODELS, zones.models)
    legacy = model_store.load(zones.models)
    assert "magnitude" in legacy.model.named_steps["features"].input_columns()
    training = stages._train(zones, curated_sample, TrainConfig(), force_promote=False)
    metrics = training.candidate.metadata["metrics"]
    assert metrics["champion"]["roc_auc"] == pytest.approx(legacy.metadata["metrics"]["model"]["roc_auc"], abs=1e-9)
    assert training.candidate.metadata["promotion"]["compared_with"] == "the baseline and the champion"
    assert not training.refused
    assert model_store.load(zones.models).version == training.candidate.version


@pytest.mark.slow
def test_a_champion_that_cannot_read_the_data_is_left_out_and_the_report_says_so(
    curated_sample: storage.Published, tmp_path: Path
) -> None:
    """A champion whose input column the curated data no longer has (here: the legacy model
    with its `magnitude` renamed to a column that does not exist)."""
    from workflows.storm import stages
    from workflows.storm.zones import Zones

    zones = Zones(str(tmp_path / "data"))
    shutil.copytree(LEGACY_MODELS, zones.models)
    legacy = model_store.load(zones.models)
    encoder = legacy.model.named_steps["features"]
    encoder.numeric_ = ["retired_column" if c == "magnitude" else c for c in encoder.numeric_]
    encoder.medians_["retired_column"] = encoder.medians_.pop("magnitude")
    (Path(legacy.url) / "model.pkl").write_bytes(pickle.dumps(legacy.model))
    training = stages._train(zones, curated_sample, TrainConfig(), force_promote=False)
    promotion = training.candidate.metadata["promotion"]
    assert "champion" not in training.candidate.metadata["metrics"]
    assert promotion["compared_with"] == "the baseline"
    note, window = promotion["notes"]
    assert note == (
        f"champion {legacy.version} cannot score these events (no column retired_column): "
        "compared with the baseline only"
    )
    assert window == "trained on 1993-1994: the evaluation years' coverage era (1993-1995)", "the gate says which"
    assert f"- note: {note}" in (Path(training.candidate.url) / "report.md").read_text()
