"""Running a loaded model on one photo: numpy in, numpy out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recnet_cli.model import RECNet


@dataclass
class Correction:
    """A corrected photo (H, W, 3 float32 in [0, 1]) and the under-exposure mask (H, W float32)."""

    image: np.ndarray
    mask: np.ndarray


class Corrector:
    """Owns a model on a device and corrects whole photos. ``tile`` 0 means whole image."""

    def __init__(
        self, model: RECNet, device: torch.device, dtype: torch.dtype = torch.float32, tile: int = 0
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = dtype
        self.tile = tile

    @torch.inference_mode()
    def correct(self, rgb: np.ndarray) -> Correction:
        image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(self.device)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            result = self.model.forward_with_intermediates(image)
        output = result["output"].float()[0].permute(1, 2, 0).cpu().numpy()
        return Correction(image=output, mask=result["mask"].float()[0, 0].cpu().numpy())
