"""The promotion gate in the pipeline, on synthetic recent-era files whose damage follows a known
relation (tests/synthetic.py), so each outcome is known in advance. Prefect's test harness
server and a real LocalCluster, as in production."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from synthetic import Relation, write_year

from mlwf import storage
from mlwf.errors import RefusedError
from workflows.storm import model_store
from workflows.storm.flows import storm_damage_pipeline
from workflows.storm.zones import Zones

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
GOOD = Relation()
WIND_ONLY = Relation(hail=0.0, tornado=0.0, flood=0.0)  # learns wind only: worse than GOOD on GOOD's data


def _models(root: Path) -> Path:
    return root / "models" / "storm-damage"


def _scores_model(root: Path) -> str:
    current = storage.current(Zones(str(root)).scores)
    assert current is not None
    return str(current.meta["model_version"])


def test_the_gate_promotes_a_good_model_refuses_a_worse_one_and_a_person_can_override(tmp_path: Path) -> None:
    source, root = tmp_path / "source", tmp_path / "data"
    for year in (2010, 2011, 2013):
        write_year(source, year, GOOD)
    write_year(source, 2012, WIND_ONLY)

    first = storm_damage_pipeline(source=str(source), data_root=str(root))
    champion = first["model_version"]
    assert first["train_window"].startswith("2010-2012: the evaluation years' coverage era (1996+)")
    assert first["promotion"].startswith(f"model {champion} promoted")
    assert first["metrics"]["model"]["roc_auc"] > 0.7
    pointer = (_models(root) / "_CURRENT.json").read_bytes()

    state = storm_damage_pipeline(source=str(source), data_root=str(root), train_years="2012-2012", return_state=True)
    assert state.is_failed()
    assert state.name == "Refused", "a state of its own: the refused-model alert fires on it"
    assert "\n" not in state.message
    assert "refused by the promotion gate" in state.message
    assert "below the champion's" in state.message
    assert (_models(root) / "_CURRENT.json").read_bytes() == pointer, "the champion stays current"
    refused = state.result(raise_on_failure=False)  # what the flow raised (in process, it raises it)
    assert isinstance(refused, RefusedError)
    assert refused.details["serving_model"] == champion
    assert refused.details["scored_rows"] == 12_000, "the champion scored every event"
    assert _scores_model(root) == champion
    rejected = storage.current(str(_models(root) / model_store.REJECTED))
    assert rejected is not None
    assert rejected.version != champion
    folder = Path(rejected.url)
    assert {"model.pkl", "metadata.json", "report.md", "curves.png", "drift.png"} <= {p.name for p in folder.iterdir()}
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["promotion"]["decision"] == "rejected"
    assert meta["promotion"]["champion"] == champion
    assert meta["metrics"]["champion"]["roc_auc"] == pytest.approx(first["metrics"]["model"]["roc_auc"])
    assert "**rejected**" in (folder / "report.md").read_text()
    assert Path(refused.details["report"]).read_text().count("**rejected**") == 1

    forced = storm_damage_pipeline(source=str(source), data_root=str(root), train_years="2012-2012", force_promote=True)
    assert forced["model_version"] == rejected.version
    assert model_store.load(str(root / "models")).version == rejected.version
    assert model_store.load(str(root / "models")).metadata["promotion"]["forced"] is True
    assert _scores_model(root) == rejected.version


def test_a_model_worse_than_the_baseline_is_never_published(tmp_path: Path) -> None:
    source, root = tmp_path / "source", tmp_path / "data"
    for year in (2010, 2011, 2012):
        write_year(source, year, GOOD)
    write_year(source, 2013, GOOD.inverted())  # the relation turned around: what trained misleads

    with pytest.raises(
        RefusedError, match=r"ROC AUC 0\.\d+ is not 0\.05 above the baseline's .* \(no model is current\)"
    ):
        storm_damage_pipeline(source=str(source), data_root=str(root))
    assert not (_models(root) / "_CURRENT.json").exists()
    assert storage.current(Zones(str(root)).scores) is None, "nothing scored: there is no model to trust"
    (report,) = (root / "reports" / "storm_damage").glob("*/report.md")
    assert "Nothing scored: no model is current" in report.read_text()


def test_the_report_shows_the_training_windows_effect(tmp_path: Path) -> None:
    """Years of an older era (here: relation turned around) are left out by default, and the
    comparison model trained on them too does worse on the same rows."""
    source, root = tmp_path / "source", tmp_path / "data"
    write_year(source, 1994, GOOD.inverted(), events=6000)  # 1993-1995 era
    for year in (2010, 2011, 2012):
        write_year(source, year, GOOD)
    result = storm_damage_pipeline(source=str(source), data_root=str(root))
    assert result["train_window"].startswith("2010-2011: the evaluation years' coverage era (1996+)")
    metrics = result["metrics"]
    assert metrics["model"]["roc_auc"] > metrics["all_years"]["roc_auc"] + 0.02
    assert "| same model, every earlier year |" in Path(result["report"]).read_text()


def test_a_training_window_that_ends_early_trains_on_exactly_its_years(tmp_path: Path) -> None:
    source, root = tmp_path / "source", tmp_path / "data"
    paths = {year: write_year(source, year, GOOD, events=1000) for year in (2009, 2010, 2011, 2012)}
    result = storm_damage_pipeline(source=str(source), data_root=str(root), train_years="2010-2010")
    meta = model_store.load(str(root / "models")).metadata
    assert meta["train_years"] == [2010]
    assert meta["test_years"] == [2012]
    assert result["train_window"] == "2010, as requested"
    # From 1996 a blank damage estimate is unknown: such events neither train nor evaluate,
    # and they are counted over the years that took part (2010 and 2012), not all four.
    blank = {
        y: int((pd.read_csv(p, dtype=str, keep_default_na=False)["DAMAGE_PROPERTY"] == "").sum())
        for y, p in paths.items()
    }
    assert blank[2010] > 0
    assert meta["rows"]["train"] == 1000 - blank[2010]
    assert meta["rows"]["test"] == 1000 - blank[2012]
    assert meta["rows"]["unknown_label"] == blank[2010] + blank[2012]
    assert result["scored_rows"] == 4000, "every event is scored, known damage or not"


def test_a_new_era_without_earlier_years_trains_on_its_first_months(tmp_path: Path) -> None:
    """The only recent-era year splits by month (about 70% of its events train, the rest
    evaluate); the older era's model is shown beside it on the same rows, and the gate's notes
    say which window it judged."""
    source, root = tmp_path / "source", tmp_path / "data"
    write_year(source, 1994, GOOD.inverted(), events=3000)  # another era, a relation turned around
    write_year(source, 2013, GOOD, events=4000)
    result = storm_damage_pipeline(source=str(source), data_root=str(root))
    window = result["train_window"]
    assert window.startswith("Jan 2013-")
    assert ": the evaluation years' earlier months (their era, 1996+, has no earlier years), evaluated on " in window
    assert window.endswith("-Dec 2013: a split within the year mixes seasons")
    metrics = result["metrics"]
    assert metrics["model"]["roc_auc"] > 0.7
    assert metrics["all_years"]["roc_auc"] < 0.5, "the old era's model ranks these rows backwards"
    assert result["promotion"].startswith(f"model {result['model_version']} promoted")
    report = Path(result["report"]).read_text()
    assert f"- note: trained on {window}" in report
