"""Interactive segmentation (survey section III-C): simulated clicks and their distance maps, and the ``refine``
method, a network that corrects a first segmentation from clicks (DeepIGeoS)."""

from weakseg.interactive.clicks import Click, next_click, simulate_clicks
from weakseg.interactive.distances import euclidean_distance, geodesic_distance

__all__ = ["Click", "euclidean_distance", "geodesic_distance", "next_click", "simulate_clicks"]
