"""Real metro locations for generated instances, and distances between them.

Coordinates are city centres (WGS84); ``population`` is the metropolitan statistical area's
population in millions (US Census Bureau 2020 estimates, rounded). Distances are great-circle
distances (haversine) scaled by a road circuity factor of 1.2, a common planning value for the
US road network (Ballou, Rahardja & Sakai 2002).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EARTH_RADIUS_KM = 6371.0
ROAD_CIRCUITY = 1.2

METROS = pd.DataFrame(
    [
        ("new_york", 40.71, -74.01, 19.8), ("los_angeles", 34.05, -118.24, 13.2),
        ("chicago", 41.88, -87.63, 9.5), ("dallas", 32.78, -96.80, 7.6),
        ("houston", 29.76, -95.37, 7.1), ("washington", 38.91, -77.04, 6.3),
        ("philadelphia", 39.95, -75.17, 6.2), ("miami", 25.76, -80.19, 6.1),
        ("atlanta", 33.75, -84.39, 6.1), ("boston", 42.36, -71.06, 4.9),
        ("phoenix", 33.45, -112.07, 4.9), ("san_francisco", 37.77, -122.42, 4.7),
        ("riverside", 33.95, -117.40, 4.6), ("detroit", 42.33, -83.05, 4.4),
        ("seattle", 47.61, -122.33, 4.0), ("minneapolis", 44.98, -93.27, 3.7),
        ("san_diego", 32.72, -117.16, 3.3), ("tampa", 27.95, -82.46, 3.2),
        ("denver", 39.74, -104.99, 3.0), ("st_louis", 38.63, -90.20, 2.8),
        ("baltimore", 39.29, -76.61, 2.8), ("charlotte", 35.23, -80.84, 2.7),
        ("orlando", 28.54, -81.38, 2.7), ("san_antonio", 29.42, -98.49, 2.6),
        ("portland", 45.52, -122.68, 2.5), ("sacramento", 38.58, -121.49, 2.4),
        ("pittsburgh", 40.44, -79.99, 2.4), ("las_vegas", 36.17, -115.14, 2.3),
        ("cincinnati", 39.10, -84.51, 2.3), ("kansas_city", 39.10, -94.58, 2.2),
        ("columbus", 39.96, -83.00, 2.1), ("indianapolis", 39.77, -86.16, 2.1),
        ("cleveland", 41.50, -81.69, 2.1), ("nashville", 36.16, -86.78, 2.0),
        ("salt_lake_city", 40.76, -111.89, 1.3), ("memphis", 35.15, -90.05, 1.3),
        ("louisville", 38.25, -85.76, 1.3),
    ],
    columns=["metro", "lat", "lon", "population"],
)

# Inland logistics hubs used for distribution centers, in order of preference.
DC_HUBS = ["memphis", "louisville", "indianapolis", "dallas", "riverside", "atlanta",
           "columbus", "kansas_city", "salt_lake_city", "philadelphia"]

# Sources of supply: container ports and a domestic manufacturing belt.
VENDOR_SITES = pd.DataFrame(
    [
        ("port_long_beach", 33.77, -118.19), ("port_savannah", 32.08, -81.09),
        ("port_newark", 40.68, -74.15), ("port_houston", 29.73, -95.27),
        ("port_tacoma", 47.27, -122.41), ("mfg_chicago", 41.85, -87.70),
        ("mfg_charlotte", 35.20, -80.90), ("mfg_detroit", 42.30, -83.10),
    ],
    columns=["site", "lat", "lon"],
)


def road_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Road distance in km: haversine great-circle distance times :data:`ROAD_CIRCUITY`.

    >>> round(float(road_km(40.71, -74.01, 34.05, -118.24)) / ROAD_CIRCUITY)  # NYC-LA
    3935
    """
    lat1, lon1, lat2, lon2 = (np.asarray(a, dtype=float) for a in (lat1, lon1, lat2, lon2))
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return ROAD_CIRCUITY * 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))
