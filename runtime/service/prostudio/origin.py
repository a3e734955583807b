"""The origin: work worth caching. A track's waveform overview is rendered from its samples.

The samples are synthesised deterministically from the track id, so the same request always
returns the same body and the cost (a few milliseconds of CPU) is real and repeatable.
"""

from __future__ import annotations

import json
import math
import zlib

SAMPLE_RATE = 8_000
SAMPLE_COUNT = 8_192
MIN_POINTS = 1
MAX_POINTS = 1_024
DEFAULT_POINTS = 64


def _track_parameters(track_id: str) -> tuple[float, float, float, int]:
    seed = zlib.crc32(track_id.encode())
    base = 55.0 + (seed % 880)
    tremolo = 0.5 + ((seed >> 10) % 40) / 10
    harmonic = 2.0 + ((seed >> 16) % 5)
    return base, tremolo, harmonic, seed


def render_waveform(track_id: str, points: int) -> dict[str, object]:
    """Peak amplitude per window of the track's synthesised samples, ``points`` windows."""
    base, tremolo, harmonic, seed = _track_parameters(track_id)
    step = 2 * math.pi / SAMPLE_RATE
    window = SAMPLE_COUNT // points
    noise = seed or 1
    peaks: list[float] = []
    peak = 0.0
    sin = math.sin
    for index in range(window * points):
        phase = index * step
        noise = (noise * 1103515245 + 12345) & 0x7FFFFFFF
        sample = (
            0.6 * sin(base * phase) * (0.5 + 0.5 * sin(tremolo * phase))
            + 0.3 * sin(base * harmonic * phase)
            + 0.1 * (noise / 0x7FFFFFFF - 0.5)
        )
        peak = max(peak, abs(sample))
        if (index + 1) % window == 0:
            peaks.append(round(peak, 4))
            peak = 0.0
    return {
        "track_id": track_id,
        "points": points,
        "sample_rate": SAMPLE_RATE,
        "samples": window * points,
        "peaks": peaks,
    }


def render_waveform_json(track_id: str, points: int) -> bytes:
    """The API response body for a track's waveform."""
    return json.dumps(render_waveform(track_id, points), separators=(",", ":")).encode()
