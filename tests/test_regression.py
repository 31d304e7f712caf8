"""Every application's fixed-seed output on a tiny clip is bit-identical to the recorded one
(``regression_cases.py``): restructuring the loop must not change results unless intended."""

import numpy as np
import pytest
from regression_cases import RECORD, cases, fingerprint

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def recorded():
    if not RECORD.exists():
        pytest.skip(f"no record at {RECORD}; run tests/regression_cases.py")
    data = np.load(RECORD)
    if str(data["fingerprint"]) != fingerprint():
        pytest.skip(f"recorded on another platform ({data['fingerprint']}); here: {fingerprint()}")
    return data


@pytest.mark.parametrize("name", sorted(cases()))
def test_output_matches_the_record(recorded, name):
    output = cases()[name]()
    expected = recorded[name]
    assert output.shape == expected.shape
    differing = int((output != expected).any(axis=-1).sum())
    assert differing == 0, f"{name}: {differing} pixels differ from the record"
