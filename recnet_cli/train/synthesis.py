"""Synthetic mixed exposure: how a camera turns a well-exposed scene into a badly exposed photo.

The clean photo stands for the scene (decoded to linear light). A scene's dynamic range exceeds the
sensor's, and a bad exposure pushes bright regions (sky, lamps, windows) further up and dark regions
further down, so the exposure change is local and spatially smooth, not a global gain:

    EV(x) = base + contrast · L(x) + gradient · t(x) + Σ light pools (Gaussian blobs)

where L is the heavily blurred log2 luminance relative to its median and t a linear ramp in a random
direction (sky to ground, window to room). The sensor then clips at its white point, adds
signal-dependent shot noise and Gaussian read noise, the camera applies its tone curve (sRGB, or a
gamma with a random S-curve), quantises to 8 bits and may JPEG-compress (quality 60-95).

``sample_exposure`` draws one of four regimes (under only, over only, mixed, and mild: a photo that was
already nearly right, so that the model learns to leave good photos alone) with random strengths;
all randomness comes from the caller's ``np.random.Generator`` (parameters) and a torch generator
seeded from it (noise), so a seed gives the same pair on the same device type. Everything but the JPEG
step runs in torch on the images' device; JPEG goes through OpenCV on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from recnet_cli.model.recnet import gaussian_1d

MODES = ("under", "over", "mixed", "mild")
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)
SMOOTH_SIDE = 32
SMOOTH_SIGMA = 1.5
LUMINANCE_FLOOR = 1e-3


@dataclass(frozen=True)
class DegradationConfig:
    """How often each regime and the JPEG step occur."""

    mode_probabilities: tuple[float, float, float, float] = (0.225, 0.225, 0.45, 0.1)
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 95)

    @classmethod
    def only(cls, mode: str) -> DegradationConfig:
        """Every pair in one regime of MODES (the scores per kind of exposure error)."""
        return cls(mode_probabilities=tuple(float(m == mode) for m in MODES))

    def describe(self) -> str:
        regimes = ", ".join(
            f"{mode} {share:.3g}" for mode, share in zip(MODES, self.mode_probabilities, strict=True)
        )
        return (
            f"camera-model exposure synthesis (linear light, local smooth EV map from blurred luminance, "
            f"ramps and light pools; sensor clipping; shot and read noise; sRGB or gamma+S tone curve; "
            f"8-bit; JPEG q{self.jpeg_quality[0]}-{self.jpeg_quality[1]} with p={self.jpeg_probability}); "
            f"regimes {regimes}"
        )


def parse_regimes(text: str) -> tuple[float, float, float, float]:
    """``under=1,mild=1`` as the four regimes' shares (those not named: 0), scaled to sum to 1; a regime
    named twice is refused."""
    shares = dict.fromkeys(MODES, 0.0)
    named: set[str] = set()
    for item in text.split(","):
        name, _, value = (part.strip() for part in item.partition("="))
        if name not in shares:
            raise ValueError(f"unknown regime {name!r} in {text!r} (regimes: {', '.join(MODES)})")
        if name in named:
            raise ValueError(f"{name} is given twice in {text!r}")
        named.add(name)
        try:
            shares[name] = float(value)
        except ValueError:
            given = item.strip() if value else f"{name} has no share"
            raise ValueError(f"{given}: the share must be a number (as in {name}=0.25)") from None
        if not math.isfinite(shares[name]):
            raise ValueError(f"{name}={value}: the share must be a finite number (as in {name}=0.25)")
        if shares[name] < 0:
            raise ValueError(f"{name}={value}: the share must be 0 or more")
    largest = max(shares.values())
    if largest == 0:
        raise ValueError(f"{text!r}: at least one regime needs a share above 0")
    relative = {mode: share / largest for mode, share in shares.items()}  # 1e308 twice sums to infinity
    total = sum(relative.values())
    under, over, mixed, mild = (relative[mode] / total for mode in MODES)
    return under, over, mixed, mild


@dataclass(frozen=True)
class LightPool:
    """A Gaussian blob of extra (or less) exposure; centre and radius as fractions of the image."""

    y: float
    x: float
    radius: float
    ev: float


@dataclass(frozen=True)
class Exposure:
    """Every random choice behind one degraded photo."""

    mode: str
    base_ev: float
    contrast: float
    gradient_ev: float
    gradient_angle: float
    pools: tuple[LightPool, ...]
    shot_noise: float
    read_noise: float
    gamma: float | None
    s_curve: float
    jpeg_quality: int | None
    noise_seed: int


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_pools(
    rng: np.random.Generator, count: int, ev_range: tuple[float, float]
) -> tuple[LightPool, ...]:
    """``count`` light pools (or shadows: the sign is random) of random place and size."""
    return tuple(
        LightPool(
            y=float(rng.uniform(0, 1)),
            x=float(rng.uniform(0, 1)),
            radius=float(rng.uniform(0.08, 0.35)),
            ev=float(rng.choice([-1, 1]) * rng.uniform(*ev_range)),
        )
        for _ in range(count)
    )


def sample_exposure(rng: np.random.Generator, config: DegradationConfig = DegradationConfig()) -> Exposure:
    """Draws a regime and its strengths, the noise, the tone curve and the JPEG quality."""
    mode = MODES[
        rng.choice(len(MODES), p=np.asarray(config.mode_probabilities) / sum(config.mode_probabilities))
    ]
    if mode == "mixed":
        base_ev = rng.uniform(-1.6, 0.6)
        contrast = rng.uniform(1.0, 2.2)
        gradient_ev = rng.uniform(0.5, 3.0)
        pools = sample_pools(rng, int(rng.integers(0, 4)), (1.0, 3.0))
    elif mode == "mild":
        base_ev = rng.uniform(-0.5, 0.3)
        contrast = rng.uniform(0.0, 0.3)
        gradient_ev = rng.uniform(0.0, 0.5)
        pools = ()
    else:
        base_ev = rng.uniform(-4.0, -1.5) if mode == "under" else rng.uniform(0.9, 2.5)
        contrast = rng.uniform(0.0, 0.4)
        gradient_ev = rng.uniform(0.0, 1.0)
        pools = sample_pools(rng, int(rng.integers(0, 2)), (0.3, 1.0))
    use_jpeg = rng.uniform() < config.jpeg_probability
    return Exposure(
        mode=mode,
        base_ev=float(base_ev),
        contrast=float(contrast),
        gradient_ev=float(gradient_ev),
        gradient_angle=float(rng.uniform(0, 2 * math.pi)),
        pools=pools,
        shot_noise=log_uniform(rng, 1e-4, 3e-3),
        read_noise=log_uniform(rng, 2e-4, 3e-3),
        gamma=None if rng.uniform() < 0.5 else float(rng.uniform(1.8, 2.6)),
        s_curve=float(rng.uniform(0.0, 0.3)),
        jpeg_quality=int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        if use_jpeg
        else None,
        noise_seed=int(rng.integers(0, 2**62)),
    )


def srgb_to_linear(x: Tensor) -> Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a (1, 1, H, W) map, reflecting at the borders."""
    radius = math.ceil(3 * sigma)
    g = gaussian_1d(2 * radius + 1, sigma, device=x.device, dtype=x.dtype)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), g.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), g.view(1, 1, -1, 1))


def relative_log_luminance(linear: Tensor) -> Tensor:
    """Heavily blurred log2 luminance of a (3, H, W) linear image minus its median: (H, W) in EV."""
    height, width = linear.shape[-2:]
    weights = torch.tensor(LUMA_WEIGHTS, dtype=linear.dtype, device=linear.device)
    luminance = (linear * weights.view(3, 1, 1)).sum(0)[None, None]
    scale = SMOOTH_SIDE / max(height, width)
    shortest = math.ceil(3 * SMOOTH_SIGMA) + 1  # gaussian_blur reflects its radius: panoramas need this
    small_size = (max(shortest, round(height * scale)), max(shortest, round(width * scale)))
    # Apple's MPS averages by area only between sizes that divide evenly (a --crop of 200): the CPU does it
    on_cpu = luminance.cpu() if luminance.device.type == "mps" else luminance
    small = F.interpolate(on_cpu, size=small_size, mode="area").to(luminance.device)
    small = gaussian_blur(small, SMOOTH_SIGMA)
    log_luminance = torch.log2(small + LUMINANCE_FLOOR)
    log_luminance = log_luminance - log_luminance.median()
    return F.interpolate(log_luminance, size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def exposure_map(linear: Tensor, exposure: Exposure) -> Tensor:
    """The per-pixel exposure change in EV, (H, W)."""
    height, width = linear.shape[-2:]
    y = torch.linspace(0, 1, height, dtype=linear.dtype, device=linear.device).view(-1, 1)
    x = torch.linspace(0, 1, width, dtype=linear.dtype, device=linear.device).view(1, -1)
    ramp = (x - 0.5) * math.cos(exposure.gradient_angle) + (y - 0.5) * math.sin(exposure.gradient_angle)
    ev = exposure.base_ev + exposure.contrast * relative_log_luminance(linear) + exposure.gradient_ev * ramp
    aspect = width / max(height, width), height / max(height, width)
    for pool in exposure.pools:
        distance2 = ((x - pool.x) * aspect[0]) ** 2 + ((y - pool.y) * aspect[1]) ** 2
        ev = ev + pool.ev * torch.exp(-distance2 / (2 * pool.radius**2))
    return ev


def sensor_noise(signal: Tensor, exposure: Exposure) -> Tensor:
    """Shot noise (variance proportional to the signal) plus read noise, as a Gaussian approximation."""
    generator = torch.Generator(device=signal.device).manual_seed(exposure.noise_seed)
    normal = torch.randn(signal.shape, generator=generator, device=signal.device, dtype=signal.dtype)
    return torch.sqrt(exposure.shot_noise * signal + exposure.read_noise**2) * normal


def tone_curve(linear: Tensor, exposure: Exposure) -> Tensor:
    """The camera's rendering: sRGB or a plain gamma, then a blend toward a smoothstep S-curve."""
    encoded = (
        linear_to_srgb(linear) if exposure.gamma is None else linear.clamp(min=0) ** (1 / exposure.gamma)
    )
    s_shaped = encoded * encoded * (3 - 2 * encoded)
    return encoded + exposure.s_curve * (s_shaped - encoded)


def expose(clean: Tensor, exposure: Exposure) -> Tensor:
    """One (3, H, W) clean sRGB image in [0, 1] as the camera would have captured it (before JPEG)."""
    linear = srgb_to_linear(clean)
    scene = linear * torch.exp2(exposure_map(linear, exposure))
    captured = scene.clamp(0, 1)
    captured = (captured + sensor_noise(captured, exposure)).clamp(0, 1)
    return torch.round(tone_curve(captured, exposure).clamp(0, 1) * 255) / 255


def jpeg_roundtrip(image: Tensor, quality: int) -> Tensor:
    """JPEG-compresses an 8-bit-valued (3, H, W) image on the CPU and decodes it again."""
    pixels = (image * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a training image")
    decoded = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(decoded).permute(2, 0, 1).to(image.device, image.dtype) / 255


def degrade(clean: Tensor, exposures: list[Exposure]) -> Tensor:
    """Degrades a (B, 3, H, W) batch of clean images, one ``Exposure`` per image."""
    degraded = []
    for image, exposure in zip(clean, exposures, strict=True):
        captured = expose(image, exposure)
        degraded.append(
            captured if exposure.jpeg_quality is None else jpeg_roundtrip(captured, exposure.jpeg_quality)
        )
    return torch.stack(degraded)
