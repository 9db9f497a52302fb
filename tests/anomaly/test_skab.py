"""The detectors on one real SKAB recording, when the data is present (it stays out of the repository)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sentinel.engine.anomaly import FitSettings, fit_model
from sentinel.testing.datasets import shared_data

SKAB = shared_data(__file__) / "skab"
FAST_METRICS = ("Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Voltage", "Volume Flow RateRMS")

pytestmark = pytest.mark.skipif(not SKAB.is_dir(), reason=f"SKAB data not found at {SKAB}")


# Two of the 11 valve1 files (of 16) on which the default PCA with these six metrics has recall > 0.6 and FAR < 0.15;
# on files 0, 2, 8, 9 and 12 it misses one bound or the other. bench/skab.py gives the figures over all files.
@pytest.mark.parametrize("number", [3, 13])
def test_default_pca_finds_the_valve_anomaly_with_few_false_alarms(number: int) -> None:
    frame = pl.read_csv(SKAB / "valve1" / f"{number}.csv", separator=";")
    values = frame.select(FAST_METRICS).to_numpy().astype(np.float64)
    truth = frame["anomaly"].to_numpy()[400:] > 0.5
    model = fit_model(values[:400], FAST_METRICS, FitSettings())
    alarm = model.score(values).alarm[400:]
    # Recall and false-alarm rate on this file; "always alarm" would give 1.0 and 1.0.
    assert alarm[truth].mean() > 0.6
    assert alarm[~truth].mean() < 0.15
