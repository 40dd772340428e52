"""A camera frame under its lens, the weather and its sensor model (the episode-side glue of
:mod:`simgen.effects` and :mod:`simgen.sensors.lens`).

Order (docs/weather.md): render (on the lens canvas when the camera has ``distortion``) ->
resample every image to the distorted image (RGB bilinear, labels nearest) -> labels -> in
linear RGB: fog and precipitation extinction (Koschmieder) -> rain / snow particles -> motion
blur -> vignetting -> chromatic aberration -> exposure, gain, noise -> 8-bit -> JPEG.
``rgb_clean`` is the image before the weather and sensor effects (after the lens geometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from simgen.effects import camera as fx
from simgen.effects.color import decode, display_decode, encode
from simgen.effects.particles import MARGIN, composite, far_distance, rasterize, sample_particles
from simgen.render.renderer import CameraImages, Renderer
from simgen.scene.sensors import CameraSensor
from simgen.scene.types import value
from simgen.sensors.lens import Lens, pixel_rays, project_distorted

#: Motion blur vectors are computed on every BLUR_STRIDE-th pixel and upsampled.
BLUR_STRIDE = 2
#: Reflectance of snowflakes in visible light (fresh snow, Warren 1982).
SNOW_ALBEDO = 0.9


@dataclass
class CameraOptics:
    """Per camera and episode: the lens and the per-pixel rays (cached in the context)."""

    k: np.ndarray
    size: tuple[int, int]
    lens: Lens | None
    rays: np.ndarray  # (H, W, 2) float32 normalized ray of every output pixel
    ray_norm: np.ndarray  # (H, W) float32 sqrt(1 + x^2 + y^2)
    cache: dict[str, Any]


def camera_optics(spec: CameraSensor, ctx: Any, k: np.ndarray) -> CameraOptics:
    key = ("camera_optics", spec.name)
    got: CameraOptics | None = ctx.cache.get(key)
    if got is None:
        w, h = int(spec.resolution[0]), int(spec.resolution[1])
        lens = None
        if spec.distortion is not None:
            d = spec.distortion
            dist = np.array([value(d.k1), value(d.k2), value(d.p1), value(d.p2), value(d.k3)])
            if np.any(dist != 0):
                lens = _lens(tuple(k.ravel()), tuple(dist), w, h)
        rays = (lens.rays if lens is not None else pixel_rays(k, None, w, h)).astype(np.float32)
        norm = np.sqrt(1.0 + (rays * rays).sum(-1)).astype(np.float32)
        got = CameraOptics(k, (w, h), lens, rays, norm, {})
        ctx.cache[key] = got
    return got


@lru_cache(maxsize=8)
def _lens(k: tuple[float, ...], dist: tuple[float, ...], width: int, height: int) -> Lens:
    """Lens maps, kept across episodes (building them inverts the distortion at every pixel)."""
    return Lens.build(np.array(k).reshape(3, 3), np.array(dist), width, height)


def render_camera(
    r: Renderer,
    spec: CameraSensor,
    optics: CameraOptics,
    pose_w_c: np.ndarray,
) -> CameraImages:
    """Render one frame; through the lens when the camera has one."""
    kw = {
        "rgb": "rgb" in spec.outputs,
        "antialias": int(spec.antialias),
        "normals": "normals" in spec.labels,
    }
    near, far = value(spec.near), value(spec.far)
    lens = optics.lens
    if lens is None:
        return r.render(optics.k, optics.size, near, far, pose_w_c, **kw)  # type: ignore[arg-type]
    c = r.render(lens.canvas_k, lens.canvas_size, near, far, pose_w_c, **kw)  # type: ignore[arg-type]
    return CameraImages(
        rgb=lens.bilinear(c.rgb) if c.rgb is not None else None,
        depth_m=lens.nearest(c.depth_m),
        instance=lens.nearest(c.instance),
        part=lens.nearest(c.part) if c.part is not None else None,
        normals_c=lens.nearest(c.normals_c) if c.normals_c is not None else None,
    )


def effects_apply(spec: CameraSensor, ctx: Any) -> bool:
    """Whether the camera stores ``rgb_clean`` next to an effected ``rgb``."""
    return "rgb" in spec.outputs and (
        spec.effects is not None or ctx.params.scene.weather is not None
    )


# -- velocities ---------------------------------------------------------------------------------


def _body_motion(
    world: Any, instance_id: int, link: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(linear velocity of the center of mass, angular velocity, center of mass) in the world,
    of an object's base (link -1) or one of its URDF links."""
    body = world.bodies[instance_id - 1]
    c = world.client
    if link < 0:
        com, _ = c.getBasePositionAndOrientation(body.body_id)
        v, w = c.getBaseVelocity(body.body_id)
    else:
        s = c.getLinkState(body.body_id, link, computeLinkVelocity=1)
        com, v, w = s[0], s[6], s[7]
    return np.asarray(v, float), np.asarray(w, float), np.asarray(com, float)


def _motion(v: np.ndarray, w: np.ndarray, com: np.ndarray, dt: float) -> np.ndarray:
    """4x4 world motion over ``dt`` of a rigid body: rotation ``w dt`` about its center of mass
    (Rodrigues' formula) plus the translation ``v dt``."""
    m = np.eye(4)
    phi = w * dt
    angle = float(np.linalg.norm(phi))
    rot = np.eye(3)
    if angle > 1e-12:
        k = phi / angle
        kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
        rot += math.sin(angle) * kx + (1.0 - math.cos(angle)) * (kx @ kx)
    m[:3, :3] = rot
    m[:3, 3] = com + v * dt - rot @ com
    return m


def camera_velocity_w(spec: CameraSensor, ctx: Any, pose_w_c: np.ndarray) -> np.ndarray:
    """World velocity of the camera center (zero unless it rides on an object)."""
    att = spec.attach_to
    if att is None:
        return np.zeros(3)
    body = ctx.world.body(att.object)
    link = -1 if att.link is None else body.link_index_by_name.get(att.link, -1)
    v, w, com = _body_motion(ctx.world, body.instance_id, link)
    return v + np.cross(w, pose_w_c[:3, 3] - com)


def blur_vectors(
    spec: CameraSensor,
    ctx: Any,
    imgs: CameraImages,
    optics: CameraOptics,
    pose_w_c: np.ndarray,
    dt: float,
) -> np.ndarray:
    """(H, W, 2) image displacement of every pixel's surface point over ``dt`` (half the
    exposure), from the true velocities of the parts and of the camera (pixels without a
    surface: the camera's rotation only). Computed every ``BLUR_STRIDE`` pixels."""
    world = ctx.world
    parts = world.visual_parts
    motions = {}
    for key in {(p.instance_id, p.link_index) for p in parts}:
        motions[key] = _motion(*_body_motion(world, *key), dt)
    cam = np.eye(4)
    att = spec.attach_to
    if att is not None:
        body = world.body(att.object)
        link = -1 if att.link is None else body.link_index_by_name.get(att.link, -1)
        cam = _motion(*_body_motion(world, body.instance_id, link), dt)
    t_c1_w = np.linalg.inv(cam @ pose_w_c)
    per_part = np.stack(
        [t_c1_w @ np.eye(4) @ pose_w_c]
        + [t_c1_w @ motions[(p.instance_id, p.link_index)] @ pose_w_c for p in parts]
    )  # (P + 1, 4, 4): camera-0 point -> camera-1 point; index 0: no surface
    s = BLUR_STRIDE
    z = imgs.depth_m[::s, ::s].astype(np.float64).ravel()
    rays = optics.rays[::s, ::s].reshape(-1, 2).astype(np.float64)
    sky = z <= 0
    pid = np.zeros(z.shape, np.intp) if imgs.part is None else imgs.part[::s, ::s].ravel()
    pid = np.where(sky, 0, pid)
    z = np.where(sky, 1.0, z)
    x0, y0 = rays[:, 0] * z, rays[:, 1] * z
    moved = np.where(sky, 0.0, 1.0)  # the sky is infinitely far: directions only
    # one 1-D gather per matrix entry (no per-pixel 4x4 matrices)
    x1 = np.stack(
        [
            per_part[:, i, 0][pid] * x0
            + per_part[:, i, 1][pid] * y0
            + per_part[:, i, 2][pid] * z
            + per_part[:, i, 3][pid] * moved
            for i in range(3)
        ],
        -1,
    )
    lens = optics.lens
    uv1, _ = project_distorted(optics.k, lens.dist if lens is not None else None, x1)
    h, w = optics.size[1], optics.size[0]
    v, u = np.mgrid[0:h:s, 0:w:s].astype(np.float64)
    flow = np.stack([uv1[:, 0] - u.ravel(), uv1[:, 1] - v.ravel()], -1)
    flow = np.nan_to_num(flow).astype(np.float32).reshape(*u.shape, 2)
    import cv2

    return cv2.resize(flow, (w, h), interpolation=cv2.INTER_NEAREST)


# -- the effect chain ---------------------------------------------------------------------------


def _lighting(ctx: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sky linear RGB, ambient linear RGB, directional irradiance linear RGB) of the episode."""
    got = ctx.cache.get("weather_lighting")
    if got is None:
        from simgen.effects.state import render_setup
        from simgen.scene.lights import AmbientLight, DirectionalLight

        bg, lights, _ = render_setup(ctx.params.scene, [])
        amb = np.zeros(3)
        sun = np.zeros(3)
        for light in lights:
            c = np.array([value(x) for x in light.color[:3]])
            if isinstance(light, AmbientLight):
                amb += value(light.intensity) * c
            elif isinstance(light, DirectionalLight):
                sun += value(light.intensity) * c
        got = (display_decode(np.array(bg[:3])), amb, sun)
        ctx.cache["weather_lighting"] = got
    return got


def apply_camera_effects(
    spec: CameraSensor,
    ctx: Any,
    imgs: CameraImages,
    optics: CameraOptics,
    pose_w_c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(effected uint8 RGB, particle mask uint8 or None) of one rendered frame."""
    assert imgs.rgb is not None
    weather = ctx.weather
    eff = spec.effects
    step = int(ctx.world.step_index)
    exposure = value(eff.exposure.time_s) if eff is not None else fx.REFERENCE_EXPOSURE_S
    has_weather = ctx.params.scene.weather is not None
    h, w = imgs.depth_m.shape
    mask = np.zeros((h, w), np.uint8) if has_weather else None
    if not (weather is not None and weather.changes_images) and eff is None:
        return imgs.rgb, mask
    lin = decode(imgs.rgb)
    if weather is not None and weather.changes_images:
        sky, ambient, sun = _lighting(ctx)
        airlight = display_decode(np.array(weather.fog_color)) if weather.fog_color else sky
        beta = weather.extinction_per_m
        if beta > 0:
            dist = fx.distance_from_depth(imgs.depth_m, optics.ray_norm)
            fx.koschmieder(lin, dist, beta, airlight)
        if weather.has_particles:
            cover = _particles(spec, ctx, imgs, optics, pose_w_c, exposure, step)
            clear = np.ones((h, w), np.float32)  # share of each pixel no particle covers
            for kind, c in cover.items():
                radiance = sky if kind == "rain" else SNOW_ALBEDO * (ambient + sun / (4 * np.pi))
                clear *= 1.0 - composite(lin, c, radiance)
            mask = np.round((1.0 - clear) * 255.0).astype(np.uint8)
    if eff is not None:
        lin = _sensor(spec, ctx, imgs, optics, pose_w_c, lin, exposure, step)
    out = encode(lin)
    if eff is not None and eff.jpeg is not None:
        out = fx.jpeg(out, eff.jpeg.quality)
    return out, mask


def _particles(
    spec: CameraSensor,
    ctx: Any,
    imgs: CameraImages,
    optics: CameraOptics,
    pose_w_c: np.ndarray,
    exposure: float,
    step: int,
) -> dict[str, np.ndarray]:
    """Coverage maps of rain and snow particles in front of the surfaces."""
    weather = ctx.weather
    k = optics.k
    rays = optics.rays
    x0, x1 = float(rays[..., 0].min()), float(rays[..., 0].max())
    y0, y1 = float(rays[..., 1].min()), float(rays[..., 1].max())
    mx, my = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
    bounds = (x0 - mx, x1 + mx, y0 - my, y1 + my)
    r_c_w = pose_w_c[:3, :3].T
    v_cam = camera_velocity_w(spec, ctx, pose_w_c)
    lens = optics.lens
    dist = lens.dist if lens is not None else None

    def project(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return project_distorted(k, dist, p)

    out = {}
    for dsd in (weather.rain, weather.snow):
        if dsd.empty:
            continue

        def velocity(d_mm: np.ndarray, dsd: Any = dsd) -> np.ndarray:
            v_w = np.zeros((len(d_mm), 3))
            v_w[:, 2] = -dsd.fall_speed(d_mm)
            return (v_w - v_cam) @ r_c_w.T

        edges, _ = dsd.bins()
        mid = np.sqrt(edges[1:] * edges[:-1])
        z_far = np.minimum(
            far_distance(
                dsd.geometric_diameter(mid), dsd.fall_speed(mid), float(k[0, 0]), exposure
            ),
            value(spec.far),
        )
        rng = ctx.params.rng("weather", spec.name, step, dsd.kind)
        parts = sample_particles(dsd, rng, bounds_n=bounds, z_far=z_far, velocity_c_of=velocity)
        out[dsd.kind] = rasterize(parts, project, float(k[0, 0]), exposure, imgs.depth_m)
    return out


def _sensor(
    spec: CameraSensor,
    ctx: Any,
    imgs: CameraImages,
    optics: CameraOptics,
    pose_w_c: np.ndarray,
    lin: np.ndarray,
    exposure: float,
    step: int,
) -> np.ndarray:
    eff = spec.effects
    assert eff is not None
    if eff.motion_blur:
        lin = fx.motion_blur(lin, blur_vectors(spec, ctx, imgs, optics, pose_w_c, exposure / 2))
    if eff.vignetting is not None:
        key = "vignetting"
        if key not in optics.cache:
            optics.cache[key] = fx.vignetting_gain(optics.ray_norm, value(eff.vignetting.strength))
        lin *= optics.cache[key][..., None]
    if eff.chromatic_aberration is not None:
        key = "chromatic"
        if key not in optics.cache:
            w, h = optics.size
            optics.cache[key] = fx.chromatic_maps(
                optics.k, w, h, value(eff.chromatic_aberration.shift_px)
            )
        lin = fx.chromatic_aberration(lin, optics.cache[key])
    ex = eff.exposure
    gain = value(ex.gain)
    if ex.auto:  # the scale that brings the exposed image to the target
        gain *= fx.auto_exposure_scale(lin * np.float32(exposure / fx.REFERENCE_EXPOSURE_S))
    noise = eff.noise
    rng = ctx.params.rng("camera", spec.name, step, "noise") if noise is not None else None
    return fx.sensor_response(
        lin,
        exposure,
        gain,
        rng,
        value(noise.full_well_e) if noise is not None else None,
        value(noise.read_noise_e) if noise is not None else 0.0,
    )
