"""The same guarantees on a CUDA GPU: fast path, exact tiling, half precision, training, device lanes.

Skipped where PyTorch sees no CUDA GPU (CI and this project's development machines); run on a lent GPU
with `python -m pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from random_models import random_image, random_model

from recnet_cli import engine
from recnet_cli.engine import Corrector, correctors_for
from recnet_cli.imaging.pixels import quantise
from recnet_cli.model import RECNet
from recnet_cli.model.fast import fast_forward
from recnet_cli.tiling import Progress, TiledRunner
from recnet_cli.train.loop import ForwardWithMask
from recnet_cli.train.synthesis import degrade, sample_exposure

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.usefixtures("exact_float32"),
]
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def model() -> RECNet:
    return random_model(seed=5)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (37, 53), (777, 1001)])
def test_fast_path_on_the_gpu_computes_the_reference(model: RECNet, height: int, width: int) -> None:
    """Against the float64 reference: within 1e-4, or at least as close as the float32 reference is
    (random weights can be ill-conditioned enough at a megapixel that float32 itself strays further)."""
    image = random_image(1, height, width)
    with torch.inference_mode():
        exact = copy.deepcopy(model).double().forward_with_intermediates(image.double())
        plain = model.forward_with_intermediates(image)
        output, mask = fast_forward(copy.deepcopy(model).to(CUDA), image.to(CUDA))
    for name, fast in (("output", output), ("mask", mask)):
        plain_error = float((plain[name].double() - exact[name]).abs().max())
        assert float((fast.cpu().double() - exact[name]).abs().max()) <= max(1e-4, 2 * plain_error)


@pytest.mark.parametrize(("height", "width", "tile"), [(601, 457, 128), (1000, 1500, 512), (129, 2049, 256)])
def test_tiling_on_the_gpu_matches_the_whole_image(model: RECNet, height: int, width: int, tile: int) -> None:
    image = random_image(1, height, width)
    gpu_model = copy.deepcopy(model).to(CUDA)
    with torch.inference_mode():
        expected, expected_mask = fast_forward(gpu_model, image.to(CUDA))
        for storage in (torch.device("cpu"), CUDA):  # full-size maps in host memory, then on the GPU
            runner = TiledRunner(gpu_model, CUDA, torch.float32, tile, storage)
            output, mask = runner.run(image)
            assert output.device.type == mask.device.type == storage.type
            on_host = storage.type == "cpu"  # then pinned full-width strips
            assert runner.strips == on_host and output.is_pinned() == on_host
            assert all(w.right - w.left == width for w in runner.windows) == on_host
            assert (output.cpu() - expected.cpu()).abs().max() <= 1e-4
            assert (mask.cpu() - expected_mask.cpu()).abs().max() <= 1e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs_whole_and_tiled_and_stays_close(model: RECNet, dtype: torch.dtype) -> None:
    rgb = random_image(1, 500, 700)[0].permute(1, 2, 0).numpy()
    reference = Corrector(random_model(seed=5), CUDA, torch.float32, tile=0).correct(rgb).image
    for tile in (0, 256):
        half = Corrector(random_model(seed=5), CUDA, dtype, tile=tile).correct(rgb).image
        assert np.isfinite(half).all()
        assert np.abs(half - reference).mean() <= 0.02


@pytest.mark.parametrize("tile", [0, 256])
def test_fused_kernels_give_the_eager_pictures(model: RECNet, tile: int) -> None:
    rgb = random_image(1, 600, 700)[0].permute(1, 2, 0).numpy()
    eager = Corrector(copy.deepcopy(model), CUDA, torch.float32, tile=tile).correct(rgb)
    fused = Corrector(copy.deepcopy(model), CUDA, torch.float32, tile=tile, fused=True).correct(rgb)
    assert np.abs(fused.image - eager.image).max() <= 1e-4
    # The mask's convolutions are the fused path's own kernels too: float32 sums in another order.
    assert np.abs(fused.mask - eager.mask).max() <= 1e-5


def test_auto_tile_runs_a_large_photo_in_one_piece_when_it_fits() -> None:
    corrector = Corrector(RECNet(), CUDA, torch.float32, tile="auto")
    assert corrector.tile_for(3000, 4000) == 0  # 12 MP fits in an H100's memory


def test_auto_tiles_keep_their_maps_on_the_gpu(model: RECNet, monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = random_image(1, 700, 900)[0].permute(1, 2, 0).numpy()
    whole = Corrector(copy.deepcopy(model), CUDA, torch.float32, tile=0).correct(rgb)
    storages = []
    run = TiledRunner.run

    def recording_run(
        self: TiledRunner, image: torch.Tensor, progress: Progress | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        storages.append(self.storage)
        return run(self, image, progress)

    monkeypatch.setattr(engine, "auto_tile", lambda *args: 256)  # as if the whole image did not fit
    monkeypatch.setattr(TiledRunner, "run", recording_run)
    tiled = Corrector(copy.deepcopy(model), CUDA, torch.float32, tile="auto").correct(rgb)
    assert storages == [CUDA]
    assert np.abs(tiled.image - whole.image).max() <= 1e-4


def test_training_step_on_the_gpu_gives_the_cpu_gradients() -> None:
    image = random_image(2, 96, 80)
    grads = []
    for device in (torch.device("cpu"), CUDA):
        model = random_model(seed=6).to(device)
        output, mask = ForwardWithMask(model)(image.to(device))
        (output.square().mean() + mask.mean()).backward()
        grads.append(torch.cat([p.grad.flatten().cpu() for p in model.parameters()]))
    assert (grads[0] - grads[1]).abs().max() <= 1e-4 * grads[0].abs().max()


def test_bf16_autocast_training_step_is_finite() -> None:
    model = random_model(seed=7).to(CUDA).to(memory_format=torch.channels_last)
    image = random_image(4, 128, 128).to(CUDA).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        output, mask = ForwardWithMask(model)(image)
    (output.float().square().mean() + mask.float().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_synthesis_on_the_gpu_is_deterministic_and_like_the_cpu() -> None:
    clean = random_image(1, 96, 128)
    exposure = sample_exposure(np.random.default_rng(11))
    first, again = (degrade(clean.to(CUDA), [exposure]).cpu() for _ in range(2))
    on_cpu = degrade(clean, [exposure])
    assert torch.equal(first, again)
    assert (first - on_cpu).abs().mean() <= 0.02  # same exposure; only the noise draws differ


def test_two_lanes_on_one_gpu_give_the_same_pictures() -> None:
    rgb = random_image(1, 300, 400)[0].permute(1, 2, 0).numpy()
    lanes = correctors_for(random_model(seed=8), [CUDA, CUDA], [torch.float32] * 2, tile=0)
    first, second = (quantise(lane.correct(rgb).image, 8) for lane in lanes)
    assert np.array_equal(first, second)


def test_keep_colour_on_the_gpu_gives_the_cpu_s_pictures(model: RECNet) -> None:
    # a whole image is put in the photo's colours on the GPU, before the copy back; tiles on the host
    rgb = random_image(1, 300, 500)[0].permute(1, 2, 0).numpy()
    expected = Corrector(copy.deepcopy(model), torch.device("cpu"), keep_colour=True).correct(rgb).image
    for tile in (0, 256):
        pending = Corrector(copy.deepcopy(model), CUDA, tile=tile, keep_colour=True).start(rgb)
        assert pending.colour_kept_on_device == (tile == 0)
        assert np.abs(pending.result().image - expected).max() <= 1e-4


@pytest.mark.filterwarnings("error:The given NumPy array is not writable")  # photos are read-only
@pytest.mark.parametrize("tile", [0, 256])
def test_corrections_queued_ahead_and_finished_in_other_threads_are_the_corrections(
    model: RECNet, tile: int
) -> None:
    # A batch queues the next photos on the GPU (uploads from pinned memory, not waited for) while writer
    # threads copy earlier ones back (whole image: into pinned memory, not waited for either): each copy
    # must land before its data is used or its memory reused, whatever is queued after it.
    corrector = Corrector(model, CUDA, torch.float32, tile=tile, strength=0.7)
    photos = [random_image(1, 300 + 40 * index, 500)[0].permute(1, 2, 0).numpy() for index in range(4)]
    for photo in photos:
        photo.flags.writeable = False  # as read_photo gives them
    expected = [corrector.correct(photo).image for photo in photos]
    pending = [corrector.start(photo) for photo in photos]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda started: started.result().image, reversed(pending)))[::-1]
    for result, wanted in zip(results, expected, strict=True):
        assert np.abs(result - wanted).max() <= 1e-5  # a copy read before it landed is far off


@pytest.mark.parametrize("keep_colour", [False, True])
def test_starting_a_whole_image_correction_never_waits_for_the_gpu(model: RECNet, keep_colour: bool) -> None:
    # The compute thread must queue a photo's work (upload, border, model, colours, copy back) and return, so
    # it can queue the next while the GPU runs this one; anything that synchronises (a copy from pageable
    # memory, .item(), a data-dependent shape) would make the GPU idle while the host queues the next photo.
    corrector = Corrector(copy.deepcopy(model), CUDA, torch.float32, tile="auto", keep_colour=keep_colour)
    photo = random_image(1, 300, 500)[0].permute(1, 2, 0).numpy()
    expected = corrector.correct(photo).image  # warm-up: cuFFT plans, cuDNN choices
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        pending = corrector.start(photo)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert np.array_equal(pending.result().image, expected)
