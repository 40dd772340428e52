"""Color: display encoding and color temperature (numpy; OpenCV for whole images).

Every radiometric effect works on *linear* RGB (proportional to radiance), never on the 8-bit
values the renderer stores. The renderer (pyrender's shader) encodes linear radiance with a pure
power law, ``v = L^(1/2.2)``; :func:`decode` (a lookup table) and :func:`encode` invert and redo
exactly that (close to, but not exactly, the piecewise sRGB curve of IEC 61966-2-1).
Primaries are those of sRGB / Rec. 709 (D65 white).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: The renderer's display gamma (pyrender's ``mesh.frag``: ``pow(color, 1 / 2.2)``).
DISPLAY_GAMMA = 2.2

#: Linear sRGB (D65) from CIE XYZ, IEC 61966-2-1.
XYZ_TO_SRGB = np.array(
    [
        [3.2406, -1.5372, -0.4986],
        [-0.9689, 1.8758, 0.0415],
        [0.0557, -0.2040, 1.0570],
    ]
)
#: Relative luminance of linear sRGB (the Y row of the inverse matrix).
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])


def display_decode(v: np.ndarray) -> np.ndarray:
    """Encoded values in [0, 1] (colors as written in scene files and images) -> linear."""
    return np.clip(np.asarray(v, np.float64), 0.0, None) ** DISPLAY_GAMMA


def display_encode(v: np.ndarray) -> np.ndarray:
    """Linear values -> encoded values in [0, 1]."""
    return np.clip(np.asarray(v, np.float64), 0.0, 1.0) ** (1.0 / DISPLAY_GAMMA)


@lru_cache(maxsize=1)
def _decode_lut() -> np.ndarray:
    return display_decode(np.arange(256) / 255.0).astype(np.float32)


def decode(image_u8: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 image (any shape) -> float32 linear in [0, 1] (a lookup table); into ``out``
    (float32, the image's shape) when given."""
    import cv2

    image = np.ascontiguousarray(image_u8)
    dst = None if out is None else _plane(out)
    return cv2.LUT(_plane(image), _decode_lut(), dst=dst).reshape(image.shape)


def _plane(x: np.ndarray) -> np.ndarray:
    """A contiguous array as one 2-D plane (OpenCV's elementwise functions keep its shape)."""
    return x.reshape(x.shape[0] if x.ndim > 1 else 1, -1)


def encode(linear: np.ndarray, scale: float = 1.0, work: np.ndarray | None = None) -> np.ndarray:
    """float linear image (times ``scale``) -> uint8 ``round(255 (scale x)^(1 / 2.2))``
    (values outside [0, 1] clip). Computed as ``exp(log(x) / 2.2)`` with
    OpenCV's vectorized float32 functions (relative error below 1e-5, so the 8-bit result is
    the exact formula's but within 1e-3 of a rounding tie). ``work``: a float32 array of the
    image's shape to compute in (else one is allocated; ``linear`` itself is fine)."""
    import cv2

    linear = np.ascontiguousarray(linear, np.float32)
    dst = None if work is None else _plane(work)
    _, x = cv2.threshold(_plane(linear), 0.0, 0.0, cv2.THRESH_TOZERO, dst=dst)  # x < 0 -> 0
    cv2.log(x, dst=x)  # log(0) = -inf, exp(-inf) = 0
    x *= np.float32(1.0 / DISPLAY_GAMMA)
    cv2.exp(x, dst=x)
    alpha = 255.0 * float(scale) ** (1.0 / DISPLAY_GAMMA)
    return cv2.convertScaleAbs(x, alpha=alpha).reshape(linear.shape)


def planckian_xy(kelvin: float) -> tuple[float, float]:
    """CIE 1931 chromaticity (x, y) of a black body at ``kelvin`` (1667..25000 K), from the
    cubic-spline approximation of the Planckian locus by Kim et al. (2002), as given in
    US patent 7,024,034 and on the CIE-cited Wikipedia page "Planckian locus"."""
    t = float(kelvin)
    if not 1667.0 <= t <= 25000.0:
        raise ValueError(f"color temperature {t} K outside 1667..25000 K")
    if t <= 4000.0:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222.0:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000.0:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def color_temperature_rgb(kelvin: float) -> np.ndarray:
    """(3,) linear sRGB color of a black body at ``kelvin``, scaled so its largest component is
    1 (xyY with Y = 1 -> XYZ -> linear sRGB; negative components, outside the sRGB gamut below
    about 1900 K, are clipped to 0)."""
    x, y = planckian_xy(kelvin)
    xyz = np.array([x / y, 1.0, (1.0 - x - y) / y])
    rgb = np.maximum(XYZ_TO_SRGB @ xyz, 0.0)
    return rgb / rgb.max()
