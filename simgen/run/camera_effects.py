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
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from simgen.effects import camera as fx
from simgen.effects.color import decode, display_decode, encode
from simgen.effects.particles import MARGIN, far_distance, rasterize, sample_particles
from simgen.effects.particles import transmittance as particle_transmittance
from simgen.render.renderer import CameraImages, Renderer
from simgen.scene.sensors import CameraSensor
from simgen.scene.types import value
from simgen.sensors.lens import Lens, distort_normalized, pixel_rays, project_distorted

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
    scratch: fx.Scratch = field(default_factory=fx.Scratch)  # the effect chain's work arrays


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
) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) planes (H, W) float32 of the image displacement of every pixel's surface point
    over ``dt`` (half the exposure), from the true velocities of the parts and of the camera
    (pixels without a surface: the camera's rotation only). Computed every ``BLUR_STRIDE``
    pixels (float32): one rigid motion for everything that stands still, then the pixels of
    each moving link."""
    import cv2

    world = ctx.world
    parts = world.visual_parts
    cam = np.eye(4)
    att = spec.attach_to
    if att is not None:
        body = world.body(att.object)
        link = -1 if att.link is None else body.link_index_by_name.get(att.link, -1)
        cam = _motion(*_body_motion(world, body.instance_id, link), dt)
    t_c1_w = np.linalg.inv(cam @ pose_w_c)
    # camera-0 point -> camera-1 point of each moving link, and its part ids
    moving: dict[tuple[int, int], tuple[np.ndarray, list[int]]] = {}
    for i, p in enumerate(parts):
        key = (p.instance_id, p.link_index)
        if key not in moving:
            vel, omega, com = _body_motion(world, *key)
            if not (vel.any() or omega.any()):
                continue
            moving[key] = (t_c1_w @ _motion(vel, omega, com, dt) @ pose_w_c, [])
        moving[key][1].append(i + 1)
    grid = _stride_grid(optics)
    z = np.array(imgs.depth_m[:: grid.stride, :: grid.stride], np.float32)
    surface = (z > 0).astype(np.float32)  # no surface: infinitely far, directions only
    z[z <= 0] = 1.0
    x0, y0 = grid.x * z, grid.y * z
    x1, y1, z1 = _transform(t_c1_w @ pose_w_c, x0, y0, z, surface)
    if moving and imgs.part is not None:
        pid = np.ascontiguousarray(imgs.part[:: grid.stride, :: grid.stride]).ravel()
        for t, ids in moving.values():
            hit = pid == ids[0]
            for i in ids[1:]:
                hit |= pid == i
            idx = np.flatnonzero(hit)
            if idx.size == 0:
                continue
            moved = _transform(t, *(a.reshape(-1)[idx] for a in (x0, y0, z, surface)))
            for out, value_ in zip((x1, y1, z1), moved, strict=True):
                out.reshape(-1)[idx] = value_
    lens = optics.lens
    u1, v1 = _project(optics.k, lens.dist if lens is not None else None, x1, y1, z1)
    w, h = optics.size
    planes: list[np.ndarray] = []
    for moved_px, at in ((u1, grid.u), (v1, grid.v)):
        moved_px -= at
        moved_px[~np.isfinite(moved_px)] = 0.0  # behind the camera: no blur
        dst = optics.scratch(f"motion.{len(planes)}", (h, w))
        planes.append(cv2.resize(moved_px, (w, h), dst=dst, interpolation=cv2.INTER_NEAREST))
    return planes[0], planes[1]


@dataclass(frozen=True)
class _StrideGrid:
    stride: int
    u: np.ndarray  # (h, w) float32 pixel coordinates of every stride-th pixel
    v: np.ndarray
    x: np.ndarray  # (h, w) float32 normalized ray
    y: np.ndarray


def _stride_grid(optics: CameraOptics) -> _StrideGrid:
    got: _StrideGrid | None = optics.cache.get("blur_grid")
    if got is None:
        s = BLUR_STRIDE
        w, h = optics.size
        v, u = np.mgrid[0:h:s, 0:w:s].astype(np.float32)
        rays = optics.rays[::s, ::s]
        x, y = (np.ascontiguousarray(rays[..., i]) for i in (0, 1))
        got = optics.cache["blur_grid"] = _StrideGrid(s, u, v, x, y)
    return got


def _transform(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows 0..2 of the 4x4 ``t`` applied to homogeneous points (x, y, z, w), float32."""
    c = t.astype(np.float32)
    return tuple(  # type: ignore[return-value]
        c[i, 0] * x + c[i, 1] * y + c[i, 2] * z + c[i, 3] * w for i in range(3)
    )


def _project(
    k: np.ndarray, dist: np.ndarray | None, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (u, v) of camera-frame points, through K and the distortion; NaN
    behind the camera."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(z > 0, np.float32(1.0) / z, np.float32(np.nan))
    xn, yn = x * inv, y * inv
    if dist is not None:
        xn, yn = distort_normalized(xn, yn, dist)
    kf = k.astype(np.float32)
    return kf[0, 0] * xn + kf[0, 1] * yn + kf[0, 2], kf[1, 1] * yn + kf[1, 2]


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
    import cv2

    assert imgs.rgb is not None
    weather = ctx.weather
    eff = spec.effects
    step = int(ctx.world.step_index)
    exposure = value(eff.exposure.time_s) if eff is not None else fx.REFERENCE_EXPOSURE_S
    has_weather = ctx.params.scene.weather is not None
    h, w = imgs.depth_m.shape
    mask: np.ndarray | None = np.zeros((h, w), np.uint8) if has_weather else None
    if not (weather is not None and weather.changes_images) and eff is None:
        return imgs.rgb, mask
    scratch = optics.scratch
    lin = decode(imgs.rgb, scratch("linear", (h, w, 3)))
    if weather is not None and weather.changes_images:
        sky, ambient, sun = _lighting(ctx)
        airlight = display_decode(np.array(weather.fog_color)) if weather.fog_color else sky
        layers = []  # (transmittance, radiance), nearest last: fog, then rain and snow
        beta = weather.extinction_per_m
        if beta > 0:
            t = fx.transmittance(imgs.depth_m, optics.ray_norm, beta, scratch("fog", (h, w)))
            layers.append((t, airlight))
        if weather.has_particles:
            clear: np.ndarray | None = None  # share of each pixel no particle covers
            covers = _particles(spec, ctx, imgs, optics, pose_w_c, exposure, step, scratch)
            for kind, c in covers.items():
                radiance = sky if kind == "rain" else SNOW_ALBEDO * (ambient + sun / (4 * np.pi))
                t = particle_transmittance(c, out=c)
                layers.append((t, radiance))
                clear = t if clear is None else cv2.multiply(clear, t, dst=scratch("clear", (h, w)))
            if clear is not None:  # 255 (1 - clear), rounded
                mask = cv2.convertScaleAbs(clear, alpha=-255.0, beta=255.0)
        lin = fx.blend_layers(lin, layers, scratch)
    scale = 1.0
    if eff is not None:
        lin, scale = _sensor(spec, ctx, imgs, optics, pose_w_c, lin, exposure, step)
    out = encode(lin, scale, work=lin)  # lin is scratch memory
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
    scratch: fx.Scratch,
) -> dict[str, np.ndarray]:
    """Coverage maps of rain and snow particles in front of the surfaces (scratch memory)."""
    weather = ctx.weather
    k = optics.k
    bounds = optics.cache.get("particle_bounds")
    if bounds is None:  # the view volume's normalized extent, plus the margin
        rays = optics.rays
        x0, x1 = float(rays[..., 0].min()), float(rays[..., 0].max())
        y0, y1 = float(rays[..., 1].min()), float(rays[..., 1].max())
        mx, my = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
        bounds = optics.cache["particle_bounds"] = (x0 - mx, x1 + mx, y0 - my, y1 + my)
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
        cover = scratch(f"cover.{dsd.kind}", imgs.depth_m.shape)
        out[dsd.kind] = rasterize(parts, project, float(k[0, 0]), exposure, imgs.depth_m, cover)
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
) -> tuple[np.ndarray, float]:
    """The sensor model on linear RGB: (image, scale) with the output ``scale * image``
    (scratch memory)."""
    import cv2

    eff = spec.effects
    assert eff is not None
    scratch = optics.scratch
    h, w = lin.shape[:2]
    image = lin  # (H, W, 3); (H, W, 4) between motion blur and chromatic aberration
    if eff.motion_blur:
        half = blur_vectors(spec, ctx, imgs, optics, pose_w_c, exposure / 2)
        image = fx.motion_blur(fx.rgba(image, scratch("rgba", (h, w, 4))), half, scratch)
    if eff.chromatic_aberration is not None:
        key = "chromatic"
        if key not in optics.cache:
            optics.cache[key] = fx.chromatic_maps(
                optics.k, w, h, value(eff.chromatic_aberration.shift_px)
            )
        image = fx.chromatic_aberration(image, optics.cache[key], scratch)
    image = fx.rgb(image, scratch("rgb", (h, w, 3)))
    vignetting = None
    if eff.vignetting is not None:
        key = "vignetting"
        if key not in optics.cache:  # (H, W, 3): one multiplication with the image
            g = fx.vignetting_gain(optics.ray_norm, value(eff.vignetting.strength))
            optics.cache[key] = fx.channels(g, 3)
        vignetting = optics.cache[key]
    ex = eff.exposure
    gain = value(ex.gain)
    tau = exposure / fx.REFERENCE_EXPOSURE_S
    if ex.auto:  # the scale that brings the exposed image to the target
        gain *= fx.auto_exposure_scale(image, vignetting, tau)
    noise = eff.noise
    if noise is None:
        if vignetting is not None:
            image = cv2.multiply(image, vignetting, dst=scratch("vignetted", image.shape))
        return image, gain * tau
    rng = ctx.params.rng("camera", spec.name, step, "noise")
    fw = value(noise.full_well_e)
    electrons = fx.sensor_electrons(
        image, tau * fw, rng, fw, value(noise.read_noise_e), vignetting, scratch
    )
    return electrons, gain / fw
