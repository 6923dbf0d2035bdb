"""benchmarks/quote.py: the numbers README and the guides quote resolve from the results JSON, and do match it."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import quote  # noqa: E402


def test_every_quoted_number_matches_its_json():
    spans = sum(len(quote.SPAN.findall(p.read_text())) for p in quote.documents())
    assert spans >= 10  # README and the guides do quote
    assert quote.requote(check=True) == []
    for doc in quote.documents():  # a code block would show the comment as it is written
        fenced = doc.read_text().split("```")[1::2]
        assert not [b for b in fenced if "<!-- q " in b], f"{doc.name}: a quoted number inside a code block"


@pytest.fixture
def results(tmp_path):
    rows = [{"row": "real", "seed": s, "dice": 0.7 + 0.1 * s} for s in range(3)] + [
        {"row": "syn", "seed": 0, "dice": 0.2}
    ]
    (tmp_path / "demo.json").write_text(
        json.dumps({"seconds": 150.0, "rows": rows, "curve": [0.1, 0.5, 0.9]})
    )
    return tmp_path


def test_paths_filters_and_operations(results):
    v = lambda spec: quote.value_of(spec, results=results)  # noqa: E731
    assert v("demo:seconds /60 .1f") == "2.5"
    assert v("demo:rows.row=real.dice mean .3f") == "0.800"
    assert v("demo:rows.row=real.dice std .4f") == f"{(0.02 / 3) ** 0.5:.4f}"
    assert v("demo:rows.row=real.seed=2.dice max .2f") == "0.90"
    assert v("demo:curve.-1 .1f") == "0.9"
    data = json.loads((results / "demo.json").read_text())
    assert (
        quote.select(data, "rows[dice=0.2].row") == "syn"
    )  # a filter value with a dot: one entry, its value
    assert v("demo:rows[row=real].seed=1.dice mean .1f") == "0.8"
    assert v("demo:rows.row=syn.dice mean -rows.row=real.dice *100 +.1f") == "-60.0"


def test_requote_rewrites_only_the_span_text(results, tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text("took <!-- q demo:seconds /60 .1f -->9.9<!-- /q --> min; 9.9 typed stays\n")
    assert quote.requote([doc], check=True, results=results) == [
        "guide.md: demo:seconds /60 .1f: '9.9' -> '2.5'"
    ]
    assert "9.9<!-- /q -->" in doc.read_text()  # check changes nothing
    quote.requote([doc], results=results)
    assert doc.read_text() == "took <!-- q demo:seconds /60 .1f -->2.5<!-- /q --> min; 9.9 typed stays\n"


@pytest.mark.parametrize(
    "spec,match",
    [
        ("nope:seconds .1f", r"nope.json does not exist"),
        ("demo:secs .1f", r"no 'secs' \(there: \['curve', 'rows', 'seconds'\]\)"),
        ("demo:rows.row=fake.dice mean .1f", r"no entry with row=fake"),
        ("demo:rows.row=real.dice .1f", r"a list of 3; add mean"),
        ("demo:curve.7 .1f", r"index 7 of a list of 3"),
        ("demo:seconds sqrt .1f", r"unknown operation 'sqrt'"),
        ("demo:seconds", r"expected <!-- q NAME:PATH"),
    ],
)
def test_bad_spans_are_named(results, spec, match):
    with pytest.raises(quote.QuoteError, match=match):
        quote.value_of(spec, results=results)
