"""Random RECNet weights and images for tests that compare two ways of computing the network."""

from __future__ import annotations

import torch

from recnet_cli.model import RECNet


def random_model(seed: int = 0, channels: int = 8) -> RECNet:
    """A RECNet with every weight perturbed, lopsided blur kernels and unusual alpha/temperature."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = RECNet(channels=channels).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
        for block in model.dualprocess.blocks:
            kernel = block.norm.blur.kernel
            kernel.add_(0.003 * torch.rand(kernel.shape, generator=generator))
            block.norm.alpha.uniform_(-0.5, 1.5, generator=generator)
            block.mssa.temperature.uniform_(0.2, 3.0, generator=generator)
    return model


def random_image(batch: int, height: int, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(
        batch, 3, height, width, generator=torch.Generator().manual_seed(height * width), dtype=dtype
    )
