"""Click simulation and distance maps on tiny inputs with hand-checked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weakseg.interactive import Click, euclidean_distance, geodesic_distance, next_click, simulate_clicks


def test_click_goes_to_the_centre_of_the_largest_error():
    truth = np.zeros((9, 9), bool)
    truth[1:6, 1:6] = True  # a 5x5 object
    pred = np.zeros((9, 9), bool)
    pred[7:9, 7:9] = True  # a 2x2 false positive, smaller than the 25-pixel miss
    assert next_click(pred, truth) == Click(3, 3, True)  # centre of the missed object
    pred = truth.copy()
    pred[7:9, 0:9] = True  # now an 18-pixel false positive strip is the largest error
    click = next_click(pred, truth)
    assert click.foreground is False and click.y in (7, 8)
    assert next_click(truth, truth) is None


def test_simulation_stops_when_perfect():
    truth = np.zeros((8, 8), bool)
    truth[2:5, 2:5] = True
    clicks, results = simulate_clicks(np.zeros_like(truth), truth, 5, lambda cs: truth)
    assert clicks == [Click(3, 3, True)] and len(results) == 2 and results[-1].sum() == 9


def test_euclidean_distance_hand_values():
    seeds = np.zeros((3, 4), bool)
    seeds[0, 0] = True
    d = euclidean_distance(seeds)
    assert d[0, 0] == 0 and d[0, 3] == 3 and d[2, 2] == pytest.approx(math.sqrt(8))
    assert torch.isinf(euclidean_distance(np.zeros((2, 2), bool))).all()


def test_geodesic_distance_hand_values():
    image = torch.zeros(1, 3, 5)
    seeds = torch.zeros(3, 5, dtype=torch.bool)
    seeds[1, 0] = True
    flat = geodesic_distance(image, seeds, lamb=1.0)
    assert flat[1, 4] == pytest.approx(4.0) and flat[0, 1] == pytest.approx(
        math.sqrt(2)
    )  # chamfer on a flat image
    image[0, :, 2] = 10.0  # a bright wall in column 2: crossing it costs two steps of intensity 10
    wall = geodesic_distance(image, seeds, lamb=1.0)
    assert wall[1, 1] == pytest.approx(1.0)
    assert wall[1, 4] == pytest.approx(2 + 2 * math.sqrt(1 + 100), rel=1e-5)  # in and out of the wall
    assert geodesic_distance(image, seeds, lamb=0.0)[1, 4] == pytest.approx(4.0)  # lamb 0: spatial only
    with pytest.raises(ValueError, match="expects image"):
        geodesic_distance(image[0], seeds)
    batch = geodesic_distance(torch.stack([torch.zeros(1, 3, 5), image]), torch.stack([seeds, seeds]))
    assert torch.equal(batch[0], flat) and torch.equal(batch[1], wall)  # a batch = its maps one by one


def test_click_curves_noc_and_grabcut():
    from weakseg.interactive.evaluate import click_curves, grabcut_refine, noc

    image = np.zeros((1, 24, 24), np.float32)
    image[0, 6:18, 6:18] = 1.0  # a bright square on black
    truth = image[0] > 0.5
    prob = np.zeros((24, 24), np.float32)  # the first result missed everything
    perfect = lambda im, p, clicks, target: truth  # noqa: E731
    curves = click_curves(
        [(image, prob, truth)], {"perfect": perfect, "none": lambda im, p, c, t: p > 0.5}, 3
    )
    assert curves["perfect"].tolist() == [[0.0, 1.0, 1.0, 1.0]] and curves["none"].tolist() == [[0.0] * 4]
    assert noc(curves["perfect"], 0.9) == 1 and noc(curves["none"], 0.9) == 4
    cut = grabcut_refine(image, np.zeros((24, 24), bool), [Click(12, 12, True), Click(1, 1, False)])
    assert cut.shape == (24, 24) and cut[12, 12] and not cut[1, 1]
    assert (cut & truth).sum() >= 0.8 * truth.sum()  # GrabCut grows the click over the bright square


def test_enforce_clicks_sets_discs_to_the_clicks_labels():
    from weakseg.interactive.clicks import enforce_clicks

    mask = np.zeros((7, 7), bool)
    mask[0, :] = True
    out = enforce_clicks(mask, [Click(3, 3, True), Click(0, 0, False)], radius=1)
    expected = mask.copy()
    expected[[2, 3, 3, 3, 4], [3, 2, 3, 4, 3]] = True  # the plus-shaped disc of radius 1
    expected[[0, 0, 1], [0, 1, 0]] = False
    assert np.array_equal(out, expected) and not mask[3, 3]  # the input is not modified
    assert np.array_equal(enforce_clicks(mask, []), mask)
    # overlapping discs: background wins (as in GrabCut's mask), but each clicked pixel keeps its own label
    out = enforce_clicks(np.zeros((5, 5), bool), [Click(2, 1, True), Click(2, 2, False)], radius=1)
    assert out[2, 1] and not out[2, 2] and out[1, 1] and out[2, 0] and not out[1, 2] and not out[2, 3]
