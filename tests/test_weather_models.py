"""Weather, lighting and sensor models as pure functions, checked against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from simgen.effects import camera as fx
from simgen.effects.color import color_temperature_rgb, decode, encode, planckian_xy
from simgen.effects.lidar_weather import (
    C_LIGHT,
    CROSSOVER_R1_M,
    CROSSOVER_R2_M,
    PULSE_TAU_H_S,
    BeamOptics,
    ParticleReturns,
    fog_response,
    sample_particle_returns,
    strongest_returns,
)
from simgen.effects.particles import Particles, rasterize, sample_particles
from simgen.effects.precipitation import SizeDistribution
from simgen.effects.state import WeatherState, beta_from_visibility, weather_state
from simgen.effects.wet import diffuse_reflectance, fresnel_unpolarized, wet_albedo
from simgen.errors import SceneError
from simgen.sensors.lens import Lens, LensError, project_distorted, undistort_normalized
from tests.conftest import scene_from

K = np.array([[400.0, 0.0, 319.5], [0.0, 400.0, 239.5], [0.0, 0.0, 1.0]])


# -- fog (Koschmieder) --------------------------------------------------------------------------


def test_fog_contrast_falls_as_exp_minus_beta_d_and_is_5_percent_at_the_visibility() -> None:
    rng = np.random.default_rng(0)
    visibility = 120.0
    beta = beta_from_visibility(visibility)
    assert beta == pytest.approx(-math.log(0.05) / visibility)
    d = np.array([[0.0, 10.0, 60.0, visibility, 300.0]], np.float32)
    j = rng.random((1, 5, 3)).astype(np.float32)
    a = np.array([0.7, 0.75, 0.8], np.float32)
    out = fx.koschmieder(j.copy(), d, beta, a)
    contrast = (out - a) / (j - a)
    want = np.exp(-beta * d)[..., None] * np.ones(3)
    np.testing.assert_allclose(contrast, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(contrast[0, 3], 0.05, rtol=1e-5)


def test_pixel_distance_is_the_euclidean_distance_from_the_camera_center() -> None:
    from simgen.sensors.lens import pixel_rays

    rays = pixel_rays(K, None, 640, 480)
    norm = np.sqrt(1 + (rays**2).sum(-1)).astype(np.float32)
    depth = np.full((480, 640), 5.0, np.float32)
    depth[0, 0] = 0.0
    d = fx.distance_from_depth(depth, norm)
    v, u = 100, 600
    p = np.array([(u - K[0, 2]) / K[0, 0] * 5.0, (v - K[1, 2]) / K[1, 1] * 5.0, 5.0])
    assert d[v, u] == pytest.approx(np.linalg.norm(p), rel=1e-6)
    assert np.isinf(d[0, 0])  # the sky is infinitely far: pure airlight


# -- color ----------------------------------------------------------------------------------------


def test_display_encoding_round_trips_every_code_and_matches_the_renderer_gamma() -> None:
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(encode(decode(codes)), codes)
    assert decode(np.array([[128]], np.uint8))[0, 0] == pytest.approx((128 / 255) ** 2.2, rel=1e-6)


def test_color_temperature_follows_the_planckian_locus() -> None:
    # CIE illuminant A is a Planckian radiator at 2856 K: (x, y) = (0.44757, 0.40745)
    x, y = planckian_xy(2856.0)
    assert (x, y) == pytest.approx((0.44757, 0.40745), abs=1e-3)
    assert planckian_xy(6500.0) == pytest.approx((0.3135, 0.3236), abs=1e-3)
    warm, neutral = color_temperature_rgb(2000.0), color_temperature_rgb(6500.0)
    assert warm[0] == 1.0 and warm[0] > warm[1] > warm[2]
    assert neutral.min() > 0.9  # close to the sRGB white (D65)
    with pytest.raises(ValueError):
        planckian_xy(1000.0)


# -- precipitation ------------------------------------------------------------------------------


def test_rain_extinction_is_the_geometric_cross_section_times_two() -> None:
    dsd = SizeDistribution.rain(10.0)
    assert dsd.lam == pytest.approx(4.1 * 10**-0.21)
    numeric, _ = integrate.quad(
        lambda d: 2 * math.pi / 4 * d * d * 8000.0 * math.exp(-dsd.lam * d), 0, 50
    )
    assert dsd.extinction_per_m == pytest.approx(numeric * 1e-6, rel=1e-6)
    # heavier rain: more extinction; the numbers are those of a 2 km rain visibility
    assert 1e3 < WeatherState(rain_mm_h=10.0).visibility_m < 3e3
    snow = SizeDistribution.snow(1.0)
    assert snow.n0 == pytest.approx(3800.0) and snow.lam == pytest.approx(2.55)


def test_fall_speeds() -> None:
    rain, snow = SizeDistribution.rain(5.0), SizeDistribution.snow(1.0)
    assert rain.fall_speed(np.array([2.0]))[0] == pytest.approx(9.65 - 10.3 * math.exp(-1.2))
    assert 0.8 < snow.fall_speed(np.array([1.0]))[0] < 1.3  # Locatelli & Hobbs aggregates


def _view_volume(bounds, z0, z1) -> float:
    x0, x1, y0, y1 = bounds
    return (x1 - x0) * (y1 - y0) * (z1**3 - z0**3) / 3.0


@pytest.mark.parametrize("kind", ["rain", "snow"])
def test_particle_counts_scale_with_rate_as_the_size_distribution_predicts(kind) -> None:
    bounds, z0, z1 = (-0.5, 0.5, -0.4, 0.4), 0.2, 3.0
    counts = {}
    for rate in (1.0, 8.0):
        dsd = getattr(SizeDistribution, kind)(rate)
        lam, lo, hi = dsd.lam, dsd.d_min, dsd.d_max
        expected = dsd.n0 / lam * (math.exp(-lam * lo) - math.exp(-lam * hi))
        expected *= _view_volume(bounds, z0, z1)
        p = sample_particles(
            dsd,
            np.random.default_rng(5),
            bounds_n=bounds,
            z_far=z1,
            velocity_c_of=lambda d: np.zeros((len(d), 3)),
        )
        assert p.expected == pytest.approx(expected, rel=1e-9)
        assert abs(len(p) - expected) < 4 * math.sqrt(expected)  # Poisson sampling error
        counts[rate] = (len(p), expected)
        # sizes follow the truncated exponential distribution
        d = p.diameter_m * 1e3
        if kind == "snow":  # stored as the flake size: back to the melted diameter
            d = (0.178 * d**2.078) ** (1 / 3)
        norm = np.exp(-lam * lo) - np.exp(-lam * hi)

        def cdf(x, lam=lam, lo=lo, norm=norm):
            return (np.exp(-lam * lo) - np.exp(-lam * x)) / norm

        assert stats.kstest(d, cdf).pvalue > 1e-3
        z = p.position_c[:, 2]
        assert z.min() >= z0 and z.max() <= z1
    (n1, e1), (n8, e8) = counts[1.0], counts[8.0]
    ratio_err = (n8 / n1) * math.sqrt(1 / n8 + 1 / n1)
    assert abs(n8 / n1 - e8 / e1) < 4 * ratio_err


def test_same_seed_same_particles() -> None:
    dsd = SizeDistribution.rain(20.0)
    kw = {
        "bounds_n": (-0.6, 0.6, -0.5, 0.5),
        "z_far": 4.0,
        "velocity_c_of": lambda d: np.tile([0.0, 5.0, 0.0], (len(d), 1)),
    }
    a = sample_particles(dsd, np.random.default_rng(3), **kw)
    b = sample_particles(dsd, np.random.default_rng(3), **kw)
    c = sample_particles(dsd, np.random.default_rng(4), **kw)
    assert np.array_equal(a.position_c, b.position_c) and np.array_equal(a.diameter_m, b.diameter_m)
    assert not np.array_equal(a.position_c[:10], c.position_c[:10])


def test_a_particle_streak_deposits_its_area_and_hides_behind_surfaces() -> None:
    # one 2 mm drop 1 m away falling 5 m/s for 10 ms: a streak of 20 px, 0.8 px wide
    p = Particles(
        "rain",
        np.array([[0.0, 0.0, 1.0]]),
        np.array([2e-3]),
        np.array([[0.0, 5.0, 0.0]]),
        1.0,
    )

    def project(x):
        return project_distorted(K, None, x)

    depth = np.zeros((480, 640), np.float32)
    cover = rasterize(p, project, 400.0, 0.01, depth)
    width = 400.0 * 2e-3 / 1.0
    assert cover.sum() == pytest.approx(math.pi / 4 * width**2, rel=1e-5)
    v = np.nonzero(cover.sum(1))[0]
    assert v.min() >= 239.5 - 10 - 1 and v.max() <= 239.5 + 10 + 1  # along the fall
    depth[:] = 0.5  # a surface in front of the drop
    assert rasterize(p, project, 400.0, 0.01, depth).sum() == 0.0


# -- sensor ---------------------------------------------------------------------------------------


def test_poisson_gaussian_noise_has_the_model_mean_and_variance() -> None:
    rng = np.random.default_rng(1)
    fw, read, gain = 1000.0, 4.0, 2.0
    for x in (0.005, 0.3):  # 5 electrons (exact Poisson) and 300 (Gaussian)
        img = np.full((400, 500, 3), x, np.float32)
        out = fx.sensor_response(img, 0.01, gain, rng, fw, read)
        e = x * fw
        assert out.mean() == pytest.approx(gain * e / fw, rel=0.01)
        assert out.var() == pytest.approx(gain**2 * (e + read**2) / fw**2, rel=0.03)
    img = np.full((4, 4, 3), 0.2, np.float32)
    assert fx.sensor_response(img, 0.02, 1.5, None)[0, 0, 0] == pytest.approx(0.6)


def test_vignetting_is_cos4_of_the_angle_off_axis() -> None:
    from simgen.sensors.lens import pixel_rays

    rays = pixel_rays(K, None, 640, 480)
    g = fx.vignetting_gain(np.sqrt(1 + (rays**2).sum(-1)), 1.0)
    theta = math.atan(math.hypot(0 - K[0, 2], 0 - K[1, 2]) / 400.0)
    assert g[0, 0] == pytest.approx(math.cos(theta) ** 4, rel=1e-5)
    assert g[240, 320] == pytest.approx(1.0, abs=1e-5)


# -- lens -----------------------------------------------------------------------------------------


def test_lens_projection_is_opencvs_and_the_maps_invert_it() -> None:
    import cv2

    dist = np.array([-0.28, 0.09, 0.001, -0.0015, -0.01])
    rng = np.random.default_rng(2)
    pts = np.c_[rng.uniform(-2, 2, (200, 2)), rng.uniform(2, 6, 200)]
    want, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, dist)
    uv, _ = project_distorted(K, dist, pts)
    np.testing.assert_allclose(uv, want[:, 0], atol=1e-9)
    lens = Lens.build(K, dist, 640, 480)
    # every output pixel's ray projects back onto that pixel
    x, y = lens.rays[..., 0], lens.rays[..., 1]
    back, _ = project_distorted(K, dist, np.stack([x, y, np.ones_like(x)], -1))
    v, u = np.mgrid[0:480, 0:640]
    assert np.abs(back - np.stack([u, v], -1)).max() < 1e-6
    assert lens.canvas_size[0] > 640  # barrel distortion sees beyond the pinhole image
    from simgen.sensors.lens import distort_normalized

    xu, yu = np.array([0.31, -0.55]), np.array([-0.2, 0.4])
    back_x, back_y = undistort_normalized(*distort_normalized(xu, yu, dist), dist)
    np.testing.assert_allclose(np.r_[back_x, back_y], np.r_[xu, yu], atol=1e-12)
    with pytest.raises(LensError):
        Lens.build(K, np.array([0.0, -2.0, 0.0, 0.0, 0.0]), 640, 480)  # folds at the corners


# -- LiDAR ----------------------------------------------------------------------------------------


def test_fog_backscatter_integral_matches_direct_integration() -> None:
    alpha = 0.03
    width = C_LIGHT * PULSE_TAU_H_S

    def xi(r):
        return min(max((r - CROSSOVER_R1_M) / (CROSSOVER_R2_M - CROSSOVER_R1_M), 0.0), 1.0)

    def j(big_r, r0):
        lo, hi = max(big_r - width, 1e-6), min(big_r, r0)
        if hi <= lo:
            return 0.0
        f = lambda r: (  # noqa: E731
            math.sin(math.pi * (big_r - r) / width) ** 2 * xi(r) * math.exp(-2 * alpha * r) / r**2
        )
        return integrate.quad(f, lo, hi, points=[0.9, 1.0], limit=200)[0]

    for r0 in (3.0, 10.0, np.inf):
        grid = np.linspace(1.0, min(r0, 30.0) + width, 600)
        vals = [j(r, r0) for r in grid]
        peak, where = fog_response(alpha, np.array([r0]))
        assert peak[0] == pytest.approx(max(vals), rel=5e-3)
        assert where[0] == pytest.approx(grid[int(np.argmax(vals))], abs=0.05)


def test_fog_decides_between_target_and_backscatter_by_the_strongest_return() -> None:
    rng = np.random.default_rng(0)
    hard_range = np.array([5.0, 80.0, np.inf])
    alpha = beta_from_visibility(50.0)
    hard_i = 0.5 * (10.0 / hard_range) ** 2 * np.exp(-2 * alpha * hard_range)
    hard_i[2] = 0.0
    beta = 0.046 / math.log(20.0) * alpha
    out = strongest_returns(
        hard_range,
        hard_i,
        fog_beta=beta,
        alpha=alpha,
        r_ref=10.0,
        threshold=2e-4,
        r_min=0.5,
        r_max=100.0,
        particles=[],
        rng=rng,
    )
    peak, _ = fog_response(alpha, hard_range)
    fog_i = math.pi * 100.0 * beta * peak
    assert hard_i[0] > fog_i[0] and not out.is_weather[0] and out.range_m[0] == 5.0
    assert hard_i[1] < fog_i[1] and out.is_weather[1] and out.range_m[1] < 20.0
    assert out.is_weather[2] and out.intensity[2] == pytest.approx(fog_i[2])


def _brute_force_strongest(dsd, s, n_beams, optics, kw, rng):
    """Every particle of every beam sampled (sizes at the bin centers, as the sampler's bins),
    then the strongest return of each beam: the reference for the order-statistics sampler."""
    from simgen.effects.lidar_weather import PARTICLE_REFLECTANCE, particle_intensity

    edges, density = dsd.bins()
    size_m = dsd.geometric_diameter(np.sqrt(edges[1:] * edges[:-1])) * 1e-3
    r0 = max(kw["r_min"], 1.0)
    v = float(optics.area_integral(s) - optics.area_integral(r0))
    best = np.zeros(n_beams)
    for b in range(len(density)):
        counts = rng.poisson(density[b] * v, n_beams)
        beam = np.repeat(np.arange(n_beams), counts)
        a0 = float(optics.area_integral(r0))
        r = optics.inverse_area_integral(a0 + rng.random(beam.size) * v)
        x = particle_intensity(
            PARTICLE_REFLECTANCE[dsd.kind], size_m[b], r, optics, kw["alpha"], kw["r_ref"]
        )
        np.maximum.at(best, beam, x)
    best[best < kw["threshold"]] = 0.0
    return best


@pytest.mark.parametrize("kind", ["rain", "snow"])
def test_lidar_particle_returns_follow_the_size_distribution(kind) -> None:
    optics = BeamOptics(3e-3, 0.01)
    n = 20000
    end = np.full(n, 12.0)
    kw = {"alpha": 0.0, "r_ref": 10.0, "threshold": 1e-12, "r_min": 1.0, "r_max": 50.0}
    results = {}
    for rate in (2.0, 16.0):
        dsd = getattr(SizeDistribution, kind)(rate)
        p = sample_particle_returns(dsd, end, optics, rng=np.random.default_rng(9), **kw)
        # every particle is detectable: mean count = number density x beam volume to the target
        volume = float(optics.area_integral(12.0) - optics.area_integral(1.0))
        per_beam = dsd.number_density() * volume
        assert p.expected == pytest.approx(per_beam * n, rel=1e-6)
        # a beam has a particle return when it holds at least one particle
        hit = 1.0 - math.exp(-per_beam)
        assert abs(p.count / n - hit) < 4 * math.sqrt(hit * (1 - hit) / n) + 1e-9
        seen = p.intensity > 0
        assert np.all((p.range_m[seen] <= 12.0) & (p.range_m[seen] >= 1.0))
        results[rate] = p
    again = sample_particle_returns(
        getattr(SizeDistribution, kind)(16.0), end, optics, rng=np.random.default_rng(9), **kw
    )
    assert np.array_equal(again.range_m, results[16.0].range_m)


@pytest.mark.parametrize("kind", ["rain", "snow"])
def test_strongest_particle_return_matches_sampling_every_particle(kind) -> None:
    optics = BeamOptics(3e-3, 0.01)
    dsd = getattr(SizeDistribution, kind)(10.0)
    kw = {"alpha": 0.004, "r_ref": 10.0, "threshold": 3e-3, "r_min": 0.9, "r_max": 100.0}
    for s in (4.0, 30.0):
        n = 6000
        fast = sample_particle_returns(
            dsd, np.full(n, s), optics, rng=np.random.default_rng(1), **kw
        ).intensity
        slow = _brute_force_strongest(dsd, s, n, optics, kw, np.random.default_rng(2))
        p_fast, p_slow = np.mean(fast > 0), np.mean(slow > 0)
        assert abs(p_fast - p_slow) < 4 * math.sqrt(p_slow * (1 - p_slow) * 2 / n) + 1e-3
        assert stats.ks_2samp(fast[fast > 0], slow[slow > 0]).pvalue > 1e-3


def test_particles_and_fog_returns_replace_weak_targets_only() -> None:
    parts = ParticleReturns(np.array([0.01, 0.0]), np.array([2.0, 0.0]), 1, 1.0)
    out = strongest_returns(
        np.array([30.0, 30.0]),
        np.array([0.005, 0.005]),
        fog_beta=0.0,
        alpha=0.0,
        r_ref=10.0,
        threshold=2e-4,
        r_min=0.5,
        r_max=100.0,
        particles=[parts],
        rng=np.random.default_rng(0),
    )
    assert out.is_weather.tolist() == [True, False]
    assert out.range_m.tolist() == [2.0, 30.0]


# -- wet ground -----------------------------------------------------------------------------------


def test_wet_surfaces_are_darker_as_lekner_and_dorf_predict() -> None:
    assert fresnel_unpolarized(np.array([1.0]), 1.333)[0] == pytest.approx((0.333 / 2.333) ** 2)
    r = diffuse_reflectance(1.333)
    assert 0.06 < r < 0.07  # the diffuse reflectance of water (~0.066)
    x = 1 - (1 - r) / 1.333**2
    for a in (0.1, 0.3, 0.6):
        wet = wet_albedo(a, 1.0)
        assert wet == pytest.approx((1 - r) * a * (1 - x) / (1 - a * x))
        assert wet < a and wet_albedo(a, 0.0) == pytest.approx(a)
        assert wet_albedo(a, 0.5) == pytest.approx((a + wet) / 2)


# -- scene blocks ---------------------------------------------------------------------------------

SCENE = """
schema_version: 1
objects: [{name: floor, class: road, kind: plane}]
"""


def test_weather_presets_expand_and_explicit_fields_override() -> None:
    s = weather_state(scene_from(SCENE + "weather: {preset: fog_dense}"))
    assert s.fog_extinction_per_m == pytest.approx(-math.log(0.05) / 50.0)
    assert s.visibility_m == pytest.approx(50.0)
    s = weather_state(
        scene_from(SCENE + "weather: {preset: rain_heavy, rain_mm_h: 7, fog: {visibility_m: 900}}")
    )
    assert s.rain_mm_h == 7.0 and s.wet_ground == 1.0
    assert s.fog_extinction_per_m == pytest.approx(beta_from_visibility(900.0))
    assert weather_state(scene_from(SCENE)) == WeatherState()
    assert WeatherState().with_(visibility_m=100.0).fog_extinction_per_m == beta_from_visibility(
        100
    )


def test_weather_class_and_errors() -> None:
    scene = scene_from(SCENE + "weather: {preset: snow}")
    assert scene.class_table() == ["background", "road", "weather"]
    assert scene.class_is_stuff()[-1]
    with pytest.raises(SceneError, match="not both"):
        scene_from(SCENE + "weather: {fog: {visibility_m: 10, extinction_per_m: 0.1}}")
    with pytest.raises(SceneError, match="reserved"):
        scene_from("schema_version: 1\nobjects: [{name: a, class: weather, kind: plane}]")
    with pytest.raises(SceneError, match="preset"):
        scene_from(SCENE + "weather: {preset: drizzle}")


def test_lighting_replaces_the_default_lights_and_adds_listed_ones() -> None:
    from simgen.random.sample import sample_episode
    from simgen.scene.lighting import air_mass, render_lights, sun_intensity

    assert air_mass(90.0) == pytest.approx(1.0, abs=1e-3)
    assert sun_intensity(90.0) == pytest.approx(3.0, rel=1e-3)
    assert sun_intensity(-1.0) == 0.0
    plain = scene_from(SCENE)
    bg, lights = render_lights(plain)
    assert [light.kind for light in lights] == ["ambient", "directional"]
    noon = sample_episode(scene_from(SCENE + "lighting: {time_of_day: noon}"), 0, 0).scene
    bg, lights = render_lights(noon)
    assert [light.name for light in lights] == ["sky", "sun"]
    assert bg == pytest.approx((0.55, 0.65, 0.80))
    sun = lights[1]
    el = math.degrees(math.asin(-sun.direction[2]))
    assert el == pytest.approx(60.0)
    night = scene_from(
        SCENE
        + "lighting: {}\nweather: {preset: night}\n"
        + "lights: [{kind: spot, position: [0, 0, 1], direction: [1, 0, 0]}]"
    )
    _, lights = render_lights(night, "night")
    assert [light.kind for light in lights] == ["ambient", "spot"]  # no sun at night
    cloudy = scene_from(SCENE + "lighting: {sun: {elevation_deg: 30}}")
    _, clear = render_lights(cloudy, None, 0.0)
    _, over = render_lights(cloudy, None, 1.0)
    # overcast: no direct sun; the total on the ground is Kasten & Czeplak's 25% of the clear sky's
    sun_h = clear[1].intensity * math.sin(math.radians(30.0))
    assert len(over) == 1
    total_clear = sun_h + math.pi * clear[0].intensity
    assert math.pi * over[0].intensity == pytest.approx(0.25 * total_clear)


def test_motion_blur_is_a_box_filter_along_the_motion() -> None:
    img = np.zeros((20, 100, 3), np.float32)
    img[:, 50:] = 1.0  # a vertical edge
    half = np.zeros((20, 100, 2), np.float32)
    half[..., 0] = 4.0  # 8 px of horizontal motion during the exposure
    out = fx.motion_blur(img.copy(), half)
    taps = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
    x = np.arange(100)
    want = np.clip(x[:, None] + taps[None, :] - 49.0, 0.0, 1.0).mean(1)
    np.testing.assert_allclose(out[10, :, 0], want, atol=1e-2)  # OpenCV: 1/32 px weights
    still = np.zeros_like(half)
    assert np.array_equal(fx.motion_blur(img, still), img)
