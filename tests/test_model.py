"""Features, training and scoring on a real LocalCluster over real NOAA data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlwf import ingest, model_store, prepare, score, storage
from mlwf.errors import UserError
from mlwf.features import CATEGORICAL, FeatureEncoder
from mlwf.model import TrainConfig, evaluate, time_split, train
from mlwf.storm.parse import empty_curated


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
        magnitude=[1.0, 1.75, 0.0, np.nan, 2.0],
    )
    assert encoder.fit(frame) is encoder
    assert encoder.categories_["event_type"] == ["Hail", "Tornado"]
    assert "cz_type=C" not in encoder.feature_names_, "a constant column carries no signal"
    assert "magnitude_missing" in encoder.feature_names_
    assert encoder.transform(frame).shape == (5, len(encoder.feature_names_))


def test_categories_never_seen_in_training_encode_as_zeros() -> None:
    train_frame = _events(
        event_type=["Hail"] * 3 + ["Tornado"] * 3,
        state=["TEXAS"] * 3 + ["IOWA"] * 3,
        magnitude=[1.0, 2.0, 3.0, 0.0, 0.0, 1.0],
    )
    encoder = FeatureEncoder(min_frequency=1).fit(train_frame)
    new = _events(event_type=["Blizzard"], state=["GUAM"], magnitude=[1.0])
    row = dict(zip(encoder.feature_names_, encoder.transform(new)[0], strict=True))
    assert all(row[name] == 0 for name in encoder.feature_names_ if name.split("=")[0] in CATEGORICAL)


def test_time_split_trains_on_earlier_years() -> None:
    assert time_split([1995, 1993, 1994], None) == ([1993, 1994], [1995])
    assert time_split([1993, 1994, 1995], 1994) == ([1993], [1994, 1995])
    with pytest.raises(UserError, match="at least two years"):
        time_split([1995], None)
    with pytest.raises(UserError, match="no training years"):
        time_split([1993, 1994], 1990)


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
    return train(prepare.read_curated(curated_sample), TrainConfig())


@pytest.mark.slow
def test_prepare_writes_curated_parquet_partitioned_by_year(curated_sample: storage.Published) -> None:
    folders = sorted(p.name for p in Path(curated_sample.url).iterdir() if p.is_dir())
    assert folders == ["year=1993", "year=1994", "year=1995"]
    frame = prepare.read_curated(curated_sample).compute()
    assert len(frame) == curated_sample.meta["rows"] == 44_752
    assert frame["event_id"].is_unique
    assert str(frame["begin_utc"].dtype).startswith("datetime64")
    assert "UTC" in str(frame["begin_utc"].dtype)


@pytest.mark.slow
def test_dask_ml_model_agrees_with_sklearn_and_beats_the_baseline(trained) -> None:  # type: ignore[no-untyped-def]
    metrics = trained.metrics
    assert abs(metrics["model"]["roc_auc"] - metrics["sklearn"]["roc_auc"]) < 0.02
    assert metrics["model"]["roc_auc"] > metrics["baseline"]["roc_auc"] + 0.2
    assert metrics["model"]["log_loss"] < metrics["baseline"]["log_loss"]
    assert trained.train_years == [1993, 1994]
    assert trained.test_years == [1995]


@pytest.mark.slow
def test_scoring_handles_unseen_types_and_rerun_is_not_a_second_copy(
    trained,
    curated_sample: storage.Published,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    stored = model_store.save(str(tmp_path / "models"), trained, curated_sample.version, TrainConfig(), b"png")
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
    stored = model_store.save(models, trained, curated_sample.version, TrainConfig(), b"png")
    loaded = model_store.load(models)
    assert loaded.version == stored.version
    meta = loaded.metadata
    assert meta["data_version"] == curated_sample.version
    assert {"dask", "distributed", "dask-ml", "scikit-learn"} <= set(meta["library_versions"])
    assert meta["metrics"]["model"]["roc_auc"] == trained.metrics["model"]["roc_auc"]
    sample = prepare.read_curated(curated_sample).head(50)
    np.testing.assert_allclose(
        score.score_partition(sample, loaded)["p_damage"], score.score_partition(sample, stored)["p_damage"]
    )
    assert model_store.find(models, curated_sample.version, TrainConfig()) is not None
    assert model_store.find(models, curated_sample.version, TrainConfig(C=0.5)) is None


@pytest.mark.reliability
def test_a_model_that_does_not_match_the_data_is_refused(
    trained, curated_sample: storage.Published, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    stored = model_store.save(str(tmp_path / "models"), trained, curated_sample.version, TrainConfig(), b"png")
    curated = prepare.read_curated(curated_sample).drop(columns=["magnitude"])
    with pytest.raises(UserError, match=r"does not match the data: missing column\(s\) magnitude"):
        score.score(curated, "x", stored, str(tmp_path / "scores"))
    assert not (tmp_path / "scores").exists()


@pytest.mark.reliability
def test_a_corrupt_model_file_is_a_clear_error(trained, curated_sample: storage.Published, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    models = tmp_path / "models"
    stored = model_store.save(str(models), trained, curated_sample.version, TrainConfig(), b"png")
    (Path(stored.url) / "model.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(UserError, match="is not a storm-damage pipeline"):
        model_store.load(str(models))
    (Path(stored.url) / "model.pkl").write_bytes(b"garbage")
    with pytest.raises(UserError, match="is unreadable"):
        model_store.load(str(models))
