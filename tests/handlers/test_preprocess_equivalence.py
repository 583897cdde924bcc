"""The served preprocessing (torchvision.io decode, uint8 antialias resize, fused normalisation)
against training's eval transform (training/data.py: PIL decode, ``convert("RGB")``, PIL bilinear
resize, uint8, then ``normalizer``), on real images: the photos bundled with scikit-learn and
matplotlib and scikit-learn's handwritten digits, as PNG and JPEG, RGB, grayscale, RGBA and
palette, at several sizes (down- and upsampling), plus GIF and BMP (PIL's path in both).

Tolerance, and why: decoding is identical (PNG is lossless; torchvision and PIL use the same
libjpeg-turbo IDCT here, measured 0 difference at the image's own size), and the two resizes
implement the same filter (bilinear with antialias, PIL's algorithm) with different fixed-point
rounding, so a pixel may come out one level apart on the 0..255 scale: we allow
``MAX_UINT8_DIFF`` = 1 level per pixel, i.e. 1 / (255 * min(std)) ≈ 0.0175 on the normalised
tensor, and a mean difference of at most 0.25 levels (measured 0.04-0.19 on these images: most
pixels are identical). A network amplifies such input noise only mildly: the logits may differ by
``LOGIT_ATOL`` = 0.01 (measured ≤ 0.001 on logits of magnitude 0.2-0.9, both models below) and the
top-1 class must be the same for every image.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from handlers import inference
from training.data import decode_image as training_decode_image
from training.data import normalizer
from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model

MAX_UINT8_DIFF = 1
MEAN_UINT8_DIFF = 0.25
LOGIT_ATOL = 0.01
NORMALIZED_ATOL = MAX_UINT8_DIFF / (255 * min(IMAGENET_STD)) + 1e-5


def _photos() -> dict[str, Image.Image]:
    import matplotlib
    import sklearn

    found = {
        "china": Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
        "flower": Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
        "hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    }
    return {name: Image.open(path).convert("RGB") for name, path in found.items() if path.is_file()}


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def real_images() -> dict[str, bytes]:
    """name -> encoded bytes; every (format, mode) the fast path takes, and the PIL-only formats."""
    from sklearn.datasets import load_digits

    photos = _photos()
    assert photos, "no bundled photos found (scikit-learn's china.jpg / flower.jpg)"
    images: dict[str, bytes] = {}
    for name, photo in photos.items():
        small = photo.resize((photo.width // 3, photo.height // 3), Image.BILINEAR)
        crop = photo.crop((40, 30, 40 + 301, 30 + 187))  # odd sizes, not square
        images[f"{name}-jpeg-rgb"] = _encode(photo, "JPEG", quality=90)
        images[f"{name}-jpeg-gray"] = _encode(small.convert("L"), "JPEG", quality=85)
        images[f"{name}-png-rgb"] = _encode(crop, "PNG")
        images[f"{name}-png-gray"] = _encode(crop.convert("L"), "PNG")
        rgba = crop.copy()
        rgba.putalpha(Image.linear_gradient("L").resize(crop.size))
        images[f"{name}-png-rgba"] = _encode(rgba, "PNG")
        images[f"{name}-png-gray-alpha"] = _encode(rgba.convert("LA"), "PNG")
        images[f"{name}-png-palette"] = _encode(small.quantize(64), "PNG")
        images[f"{name}-gif"] = _encode(small, "GIF")
        images[f"{name}-bmp"] = _encode(crop, "BMP")
    digits = load_digits().images
    for i in (0, 7):
        pixels = (digits[i] * 255 / 16).astype(np.uint8)
        images[f"digit{i}-png-8px"] = _encode(Image.fromarray(pixels), "PNG")  # upsampled
        big = Image.fromarray(pixels).resize((224, 224), Image.BILINEAR).convert("RGB")
        images[f"digit{i}-png-224"] = _encode(big, "PNG")  # the benchmark's inputs
        images[f"digit{i}-jpeg-224"] = _encode(big, "JPEG", quality=95)
    return images


IMAGES = real_images()


def reference(data: bytes, size: int) -> torch.Tensor:
    """Training's eval transform: uint8 1×3×S×S."""
    return training_decode_image(io.BytesIO(data), size).unsqueeze(0)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [32, 224])
def test_resized_pixels_match_training_within_one_level(size):
    transform = inference.EvalTransform(size, IMAGENET_MEAN, IMAGENET_STD)
    for name, data in IMAGES.items():
        served = transform.resize(inference.decode_image(data))
        expected = reference(data, size)
        assert served.dtype == torch.uint8 and tuple(served.shape) == (1, 3, size, size), name
        diff = (served.int() - expected.int()).abs()
        assert int(diff.max()) <= MAX_UINT8_DIFF, f"{name}: max diff {int(diff.max())}"
        assert float(diff.float().mean()) <= MEAN_UINT8_DIFF, f"{name}: mean diff {float(diff.float().mean())}"


def test_decoding_is_exact_where_no_resize_happens():
    """PNG decoding is lossless in both libraries: identical pixels at the image's own size."""
    for name, data in IMAGES.items():
        if "-png-" not in name:
            continue
        with Image.open(io.BytesIO(data)) as image:
            expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        assert torch.equal(inference.decode_image(data), expected), name


def test_normalisation_equals_trainings_normalizer():
    transform = inference.EvalTransform(224, IMAGENET_MEAN, IMAGENET_STD)
    batch = reference(IMAGES["china-jpeg-rgb"], 224)
    served = transform.normalize(batch)
    assert served.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(served, normalizer(IMAGENET_MEAN, IMAGENET_STD)(batch), atol=1e-5)


def _models(loaded_model):
    torch.manual_seed(1)
    at224 = build_model("resnet18", 10, 32).eval()
    return [(loaded_model.image_size, loaded_model.net), (224, at224)]


def test_predictions_match_the_reference_preprocessing(loaded_model):
    """Same top-1 for every image, logits within LOGIT_ATOL, the normalised inputs within
    NORMALIZED_ATOL: on the test artifact (@32) and on a ResNet at the benchmark's 224 px."""
    to_input = normalizer(IMAGENET_MEAN, IMAGENET_STD)
    names = list(IMAGES)
    for size, net in _models(loaded_model):
        transform = inference.EvalTransform(size, IMAGENET_MEAN, IMAGENET_STD)
        served = torch.cat([transform.normalize(transform.resize(inference.decode_image(IMAGES[n]))) for n in names])
        expected = to_input(torch.cat([reference(IMAGES[n], size) for n in names]))
        assert float((served - expected).abs().max()) <= NORMALIZED_ATOL
        with torch.inference_mode():
            logits = net(served.contiguous(memory_format=torch.channels_last))
            logits_ref = net(expected.contiguous(memory_format=torch.channels_last))
        worst = float((logits - logits_ref).abs().max())
        assert worst <= LOGIT_ATOL, f"@{size}: logits differ by {worst}"
        mismatched = [n for n, a, b in zip(names, logits.argmax(1), logits_ref.argmax(1), strict=True) if a != b]
        assert not mismatched, f"@{size}: top-1 differs for {mismatched}"


def test_served_predictions_use_the_fast_path_and_match(loaded_model):
    """predict_fn end to end on the fast path gives the reference's top-1."""
    size = loaded_model.image_size
    for name in ("china-png-rgb", "flower-jpeg-rgb", "hopper-png-rgba", "digit7-png-8px"):
        data = IMAGES.get(name)
        if data is None:
            continue
        request = inference.input_fn(data, "image/png")
        served = inference.predict_fn(request, loaded_model).probabilities
        expected = inference.forward_probabilities(
            loaded_model, normalizer(IMAGENET_MEAN, IMAGENET_STD)(reference(data, size))
        )
        assert int(served.argmax()) == int(expected.argmax()), name
        assert torch.allclose(served, expected, atol=1e-2), name
