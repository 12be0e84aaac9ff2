"""Loss terms, presets, and the ECR's VGG16 loading (with a seeded stand-in for the ImageNet weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from recnet_cli.metrics import ssim_tensor
from recnet_cli.model import RECNet
from recnet_cli.train.losses import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ExposureContrastiveLoss,
    RecnetLoss,
    VGG16Features,
    VggWeightsError,
    build_loss,
    colour_loss,
    load_vgg16_features,
    mask_target,
)
from recnet_cli.weights import save_model

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-style VGG16 state dict from a seeded init (stand-in for the ImageNet file)."""
    torch.manual_seed(0)
    vgg = VGG16Features()
    for layer in vgg.features:
        if isinstance(layer, torch.nn.Conv2d):  # He init keeps activations O(1) like trained weights
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    state = vgg.state_dict()
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision's file has more than the features
    path = tmp_path_factory.mktemp("hub") / "vgg16-397923af.pth"
    torch.save(state, path)
    return path


def images(seed: int, batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_vgg_layers_use_torchvision_indices() -> None:
    shapes = {k: tuple(v.shape) for k, v in VGG16Features().state_dict().items()}
    assert set(shapes) == {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    assert shapes["features.0.weight"] == (64, 3, 3, 3)
    assert shapes["features.21.weight"] == (512, 512, 3, 3)
    assert len(VGG16Features().features) == 23


def test_vgg_loads_from_a_given_file_and_from_the_hub_cache(
    vgg_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = torch.load(vgg_file, weights_only=True)["features.19.weight"]
    assert torch.equal(load_vgg16_features(vgg_file).features[19].weight, expected)
    cache = tmp_path / "checkpoints"
    cache.mkdir()
    (cache / vgg_file.name).write_bytes(vgg_file.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    vgg = load_vgg16_features(None)
    assert torch.equal(vgg.features[19].weight, expected)
    assert not any(p.requires_grad for p in vgg.parameters())


def vgg_refusal(path: Path) -> str:
    """The one-line error ``--vgg-weights path`` gets."""
    with pytest.raises(VggWeightsError) as caught:
        load_vgg16_features(path)
    return str(caught.value)


def test_missing_or_wrong_vgg_weights_stop_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(VggWeightsError, match=r"no VGG16 weights.*--vgg-weights.*--no-ecr"):
        build_loss("paper", ecr=True, vgg_weights=None)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    assert vgg_refusal(wrong) == (
        f"{wrong}: not a VGG16 state dict: missing keys features.0.bias, features.10.bias, "
        "features.10.weight, and 16 more"
    )
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(
        VggWeightsError, match=r'garbage\.pth: a text file, not weights \(it begins "not a checkpoint"\)'
    ):
        load_vgg16_features(garbage)
    assert "ecr" not in build_loss("paper", ecr=False, vgg_weights=None)(*batch_terms())


def test_weights_of_another_network_say_what_they_hold_and_pickled_code_is_refused_as_for_models(
    vgg_file: Path, tmp_path: Path
) -> None:
    recnet = tmp_path / "final.safetensors"  # a RECNet model given as --vgg-weights by mistake
    save_model(RECNet(channels=4, blocks=2), recnet, {})
    assert vgg_refusal(recnet) == (
        f"{recnet}: not a VGG16 state dict: missing keys features.0.bias, features.0.weight, "
        "features.10.bias, and 17 more; it holds keys dualprocess.cat.bias, dualprocess.cat.weight, "
        f"dualprocess.conv1.fuse1.bias, and {len(RECNet(4, 2).state_dict()) - 3} more"
    )
    grey = tmp_path / "grey.pth"  # VGG16's keys, but a first layer for one channel
    torch.save(
        torch.load(vgg_file, weights_only=True) | {"features.0.weight": torch.zeros(64, 1, 3, 3)}, grey
    )
    assert vgg_refusal(grey) == (
        f"{grey}: not a VGG16 state dict: shape mismatch for features.0.weight: file (64, 1, 3, 3) vs model "
        "(64, 3, 3, 3)"
    )
    pickled = tmp_path / "pickled.pth"
    torch.save({"features.0.weight": torch.zeros(1), "run": RunsCode()}, pickled)
    assert vgg_refusal(pickled) == (
        f"{pickled}: not a VGG16 checkpoint recnet can read safely (a pickle that would run code: "
        "print); recnet reads .safetensors, or a .pth/.pt/.ckpt/.bin/.pth.tar state dict"
    )
    converted = tmp_path / "vgg16.safetensors"  # which that advice makes
    save_file(torch.load(vgg_file, weights_only=True), converted)
    assert torch.equal(
        load_vgg16_features(converted).features[0].weight, load_vgg16_features(vgg_file).features[0].weight
    )


class RunsCode:
    """Pickled as a call: a file holding it would run code when unpickled."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran",))


def batch_terms() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    output = images(1).requires_grad_()
    mask = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(2)).requires_grad_()
    return output, mask, images(3) * 0.3, images(4)


@pytest.mark.parametrize("authors_form", [False, True])
def test_ecr_is_finite_differentiable_and_zero_at_the_ground_truth(
    vgg_file: Path, authors_form: bool
) -> None:
    ecr = ExposureContrastiveLoss(load_vgg16_features(vgg_file), authors_form)
    output, mask, inputs, target = batch_terms()
    loss = ecr(output, target, inputs, mask)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert output.grad is not None and torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0
    assert mask.grad is not None and mask.grad.abs().sum() > 0  # ECR also trains the mask predictor
    assert float(ecr(target, target, inputs, mask.detach())) == pytest.approx(0.0, abs=1e-6)


def test_authors_form_ecr_of_the_unchanged_input_is_two(vgg_file: Path) -> None:
    """Anchor = negative: each feature ratio is D/(D + D) = 1/2, the Gram ratio D/(D + 0) = 1."""
    ecr = ExposureContrastiveLoss(load_vgg16_features(vgg_file), authors_form=True)
    _, mask, inputs, target = batch_terms()
    assert float(ecr(inputs, target, inputs, mask.detach())) == pytest.approx(2.0, abs=1e-5)


@pytest.mark.parametrize("authors_form", [False, True])
def test_vgg_sees_imagenet_normalised_images_in_the_papers_form_and_raw_ones_in_the_authors(
    vgg_file: Path, authors_form: bool
) -> None:
    vgg = load_vgg16_features(vgg_file)
    ecr = ExposureContrastiveLoss(vgg, authors_form)
    image, region = images(3), images(4)[:, :1]
    masked = image * region
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    seen = masked if authors_form else (masked - mean) / std
    assert torch.allclose(ecr.features(image, region), vgg(seen), atol=1e-6)


def test_mask_target_marks_pixels_the_ground_truth_brightens() -> None:
    inputs = torch.tensor([0.2, 0.8]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    target = torch.full((1, 3, 1, 2), 0.5)
    assert mask_target(inputs, target).flatten().tolist() == [1.0, 0.0]


def test_mask_target_leaves_unmarked_pixels_the_ground_truth_keeps_as_they_are() -> None:
    # well exposed already: not to be brightened, so not under-exposed
    inputs = torch.tensor([0.5, 0.5]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    target = torch.tensor([0.5, 0.51]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    assert mask_target(inputs, target).flatten().tolist() == [0.0, 1.0]


def test_papers_form_ecr_is_the_sum_of_its_three_ratios_on_images_pooled_by_four(vgg_file: Path) -> None:
    vgg = load_vgg16_features(vgg_file)
    output, mask, inputs, target = (t.detach() for t in batch_terms())
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    under = F.max_pool2d(mask, 4)
    over = 1 - under

    def features(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        return vgg((F.max_pool2d(image, 4) * region - mean) / std)

    def ratio(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(anchor, positive) / (F.l1_loss(anchor, negative) + 1e-8)

    def gram(u: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        return u.flatten(2).transpose(1, 2) @ o.flatten(2)

    a_u, p_u, n_u = (features(t, under) for t in (output, target, inputs))
    a_o, p_o, n_o = (features(t, over) for t in (output, target, inputs))
    expected = (
        ratio(a_u, p_u, n_u) + ratio(a_o, p_o, n_o) + ratio(gram(a_u, a_o), gram(p_u, p_o), gram(n_u, n_o))
    )
    ecr = ExposureContrastiveLoss(vgg, authors_form=False)
    assert float(ecr(output, target, inputs, mask)) == pytest.approx(float(expected), rel=1e-4)


def test_colour_loss_ignores_brightness_but_not_hue() -> None:
    target = images(5)
    assert float(colour_loss(target * 0.5, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(colour_loss(target[:, [1, 2, 0]], target)) > 0.05


def test_presets_combine_the_documented_terms() -> None:
    output, mask, inputs, target = (t.detach() for t in batch_terms())
    bce = F.binary_cross_entropy(mask, mask_target(inputs, target))
    paper = RecnetLoss("paper", None)(output, mask, inputs, target)
    assert set(paper) == {"pixel", "colour", "mask", "total"}
    assert float(paper["pixel"]) == pytest.approx(float(F.mse_loss(output, target)))
    assert float(paper["mask"]) == pytest.approx(0.25 * float(bce))
    assert float(paper["total"]) == pytest.approx(float(paper["pixel"] + paper["colour"] + paper["mask"]))
    authors = RecnetLoss("authors-code", None)(output, mask, inputs, target)
    assert float(authors["pixel"]) == pytest.approx(float(F.l1_loss(output, target)))
    assert float(authors["ssim"]) == pytest.approx(0.1 * (1 - float(ssim_tensor(output, target).mean())))
    with pytest.raises(ValueError, match="unknown loss preset"):
        RecnetLoss("fancy", None)


def test_ecr_enters_the_total_with_weight_a_tenth(vgg_file: Path) -> None:
    output, mask, inputs, target = (t.detach() for t in batch_terms())
    loss = build_loss("paper", ecr=True, vgg_weights=vgg_file)
    terms = loss(output, mask, inputs, target)
    assert float(terms["ecr"]) == pytest.approx(0.1 * float(loss.ecr(output, target, inputs, mask)))
    assert float(terms["total"]) == pytest.approx(sum(float(v) for k, v in terms.items() if k != "total"))
