"""A camera's lens distortion and sensor effects (``distortion`` and ``effects`` of a camera).

docs/weather.md gives every formula. Each effect is optional; a camera without ``effects`` and
without weather in the scene stores exactly the rendered image.
"""

from __future__ import annotations

from pydantic import Field

from simgen.scene.types import NonNegNum, Num, PosNum, Strict_, UnitNum


class Distortion(Strict_):
    """Brown–Conrady lens distortion, OpenCV's model and coefficient order (k1, k2, p1, p2, k3).
    Every image of the camera (RGB and every label map) is distorted; K stays the pinhole part."""

    k1: Num = 0.0
    k2: Num = 0.0
    p1: Num = 0.0
    p2: Num = 0.0
    k3: Num = 0.0


class Exposure(Strict_):
    """Exposure: the render is the image of a ``reference`` exposure at gain 1."""

    time_s: PosNum = Field(
        default=0.01, description="exposure time, s (rain streak length and motion blur)"
    )
    gain: PosNum = Field(default=1.0, description="analog gain (ISO / 100)")
    auto: bool = Field(
        default=False,
        description="scale the image so its log-average luminance is 0.18 (within 1/16..16 x)",
    )


class Noise(Strict_):
    """Poisson-Gaussian sensor noise: shot noise of the collected electrons plus read noise."""

    full_well_e: PosNum = Field(
        default=10000.0, description="electrons collected at full scale (value 1 at gain 1)"
    )
    read_noise_e: NonNegNum = Field(default=3.0, description="read noise, electrons RMS")


class Vignetting(Strict_):
    """Natural vignetting: brightness falls as cos^4 of the angle off the optical axis."""

    strength: UnitNum = Field(default=1.0, description="exponent scale: 1 = cos^4, 0 = none")


class ChromaticAberration(Strict_):
    """Lateral chromatic aberration: red and blue magnified differently from green."""

    shift_px: Num = Field(
        default=1.0, description="red moves out (blue in) by this many pixels at the image corner"
    )


class Jpeg(Strict_):
    quality: int = Field(default=90, ge=1, le=100)


class CameraEffects(Strict_):
    """The sensor model, applied in this order after weather: motion blur, vignetting,
    chromatic aberration, exposure and gain, noise, 8-bit encoding, JPEG."""

    exposure: Exposure = Exposure()
    motion_blur: bool = Field(
        default=False, description="blur along each pixel's true motion during the exposure"
    )
    vignetting: Vignetting | None = None
    chromatic_aberration: ChromaticAberration | None = None
    noise: Noise | None = None
    jpeg: Jpeg | None = None
