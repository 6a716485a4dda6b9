"""The "paper vs this run" table: verdict rules on synthetic results, and the data file's checks."""

from __future__ import annotations

import re

import pytest
import yaml

from sweeplab.analysis.reproduction import (
    Claim,
    Measured,
    load_paper_values,
    reproduction_rows,
    verdict,
)
from sweeplab.errors import ConfigError


def m(value, direction=False):
    return Measured(value, seeds=3, scale="tiny", direction=direction)


@pytest.mark.parametrize("claim,measured,expect", [
    (Claim("a", "acc", "Fig. 1", 0.82, "close", 0.1), m(0.78), "reproduced"),
    (Claim("a", "acc", "Fig. 1", 0.82, "close", 0.1), m(0.30), "direction only"),
    (Claim("a", "gap", "Fig. 1", 0.5, "close", 0.1), m(-0.3), "not reproduced"),
    (Claim("b", "test", "Fig. 9a", 0.9, "at_least", 0.0), m(0.96), "reproduced"),
    (Claim("b", "test", "Fig. 9a", 0.9, "at_least", 0.0), m(0.52), "not reproduced"),
    (Claim("b", "test", "Fig. 9a", 0.9, "at_least", 0.0), m(0.52, True), "direction only"),
    (Claim("c", "ood", "Fig. 9a", 0.4, "at_most", 0.05), m(0.44), "reproduced"),
    (Claim("c", "ood", "Fig. 9a", 0.4, "at_most", 0.05), m(0.9), "not reproduced"),
    (Claim("d", "slope", "Fig. 3", -1.0, "sign"), m(-0.02), "reproduced"),
    (Claim("d", "slope", "Fig. 3", -1.0, "sign"), m(0.3), "not reproduced"),
    (Claim("e", "rank", "Tab. 2", ["sam", "adam", "sgd"], "order"),
     m(["sam", "adam", "sgd"]), "reproduced"),
    (Claim("e", "rank", "Tab. 2", ["sam", "adam", "sgd"], "order"),
     m(["sam", "sgd", "adam"]), "direction only"),
    (Claim("e", "rank", "Tab. 2", ["sam", "adam", "sgd"], "order"),
     m(["sgd", "sam", "adam"]), "not reproduced"),
    (Claim("f", "acc", "Fig. 1", 0.82), None, "not run"),
    (Claim("f", "acc", "Fig. 1", 0.82), m(float("nan")), "not run"),
])
def test_verdicts(claim, measured, expect):
    assert verdict(claim, measured) == expect


def test_rows_follow_the_file_and_refuse_unknown_claims(tmp_path):
    path = tmp_path / "paper_values.yaml"
    path.write_text(yaml.safe_dump({"paper": "A & B (2025)", "claims": [
        {"id": "x", "claim": "x rises", "source": "Fig. 2", "paper": 1.0, "compare": "sign"},
        {"id": "y", "claim": "y is 0.5", "source": "Tab. 1", "paper": 0.5, "tolerance": 0.05},
    ]}))
    values = load_paper_values(path)
    rows = reproduction_rows(values, {"x": m(2.0)})
    assert [(r.claim.id, r.verdict) for r in rows] == [("x", "reproduced"), ("y", "not run")]
    assert rows[0].cells() == ("x rises", "Fig. 2", "1", "2", "3", "tiny", "reproduced")
    with pytest.raises(KeyError, match="z"):
        reproduction_rows(values, {"z": m(1.0)})


@pytest.mark.parametrize("claims,key", [
    ([{"id": "x", "claim": "c", "source": "s"}], "claims[0].paper"),
    ([{"id": "x", "claim": "c", "source": "s", "paper": 1, "compare": "about"}],
     "claims[0].compare"),
    ([{"id": "x", "claim": "c", "source": "s", "paper": 1, "tol": 0.1}], "claims[0].tol"),
    ([{"id": "x", "claim": "c", "source": "s", "paper": 1}] * 2, "claims"),
])
def test_a_malformed_data_file_names_the_key(tmp_path, claims, key):
    path = tmp_path / "paper_values.yaml"
    path.write_text(yaml.safe_dump({"paper": "p", "claims": claims}))
    with pytest.raises(ConfigError, match="invalid " + re.escape(key)):
        load_paper_values(path)
