from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.images import ImageError, decode_ink, digit_from_bytes, find_images, ink_of, load_digit, to_mnist
from mnist_pipeline.mnist import read_directory

SUBSET = Path(__file__).parents[1] / "data" / "mnist-first-1000"
SCALE = 8
CANVAS = (400, 320)  # width, height: paper much larger than the digit
OFFSET = (40, 70)  # the digit sits up and to the left, far from the center

# Thresholds on the Pearson correlation of a loaded render with its original digit. Among the subset's
# 200 test digits, two different digits correlate 0.27 on average (0.45 when they are the same class);
# fewer than 1% of pairs of different classes exceed 0.6 and 3% of pairs of the same class exceed 0.8.
# The renders below correlate 0.93-0.99 with their originals without noise (0.82 at worst with noise),
# so these bounds hold a render to its own digit, not to any digit-like blob.
MEAN_CORRELATION = 0.8
EACH_CORRELATION = 0.6


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Eight real MNIST test digits (7 2 1 0 4 1 4 9): white ink on black, uint8 28x28."""
    return read_directory(SUBSET).test_images[:8]


def ink_on_paper(digit: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] on a large canvas: the digit scaled up SCALE times, off center."""
    size = 28 * SCALE
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float64) / 255
    canvas = np.zeros((CANVAS[1], CANVAS[0]))
    canvas[OFFSET[1] : OFFSET[1] + size, OFFSET[0] : OFFSET[0] + size] = ink
    return canvas


def paper_gray(ink: np.ndarray) -> np.ndarray:
    """Dark ink on white paper, 8-bit."""
    return np.uint8(np.round(255 * (1 - ink)))


def render_rgb_jpeg(ink, path, rng):
    Image.fromarray(paper_gray(ink)).convert("RGB").save(path := path.with_suffix(".jpg"), quality=85)
    return path


def render_rgba_png_transparent(ink, path, rng):
    pixels = np.zeros(ink.shape + (4,), np.uint8)
    pixels[..., :3] = (30, 60, 200)  # blue ink; the background is fully transparent
    pixels[..., 3] = np.round(255 * ink)
    Image.fromarray(pixels, "RGBA").save(path := path.with_suffix(".png"))
    return path


def render_rgba_png_opaque(ink, path, rng):
    Image.fromarray(paper_gray(ink)).convert("RGBA").save(path := path.with_suffix(".png"))
    return path


def render_palette_gif(ink, path, rng):
    image = Image.fromarray(paper_gray(ink)).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    image.save(path := path.with_suffix(".gif"))
    return path


def render_bmp(ink, path, rng):
    Image.fromarray(paper_gray(ink)).save(path := path.with_suffix(".bmp"))
    return path


def render_16_bit_png(ink, path, rng):
    image = Image.fromarray(np.uint16(np.round(65535 * (1 - ink))))
    assert image.mode == "I;16"
    image.save(path := path.with_suffix(".png"))
    return path


def render_photo(ink, path, rng):
    """Light-gray paper (200), gray ink (50) and a little sensor noise (sigma 4 gray levels), as JPEG."""
    gray = 200 - 150 * ink + rng.normal(0, 4, ink.shape)
    Image.fromarray(np.uint8(np.clip(np.round(gray), 0, 255))).convert("RGB").save(path := path.with_suffix(".jpg"))
    return path


def render_rotated_phone_photo(ink, path, rng):
    """Pixels stored sideways with EXIF orientation 6 (display rotated 90 degrees clockwise), as phones do."""
    image = Image.fromarray(paper_gray(ink)).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path := path.with_suffix(".jpg"), exif=exif)
    return path


RENDERS = [
    render_rgb_jpeg,
    render_rgba_png_transparent,
    render_rgba_png_opaque,
    render_palette_gif,
    render_bmp,
    render_16_bit_png,
    render_photo,
    render_rotated_phone_photo,
]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def assert_mnist_style(digit: np.ndarray):
    assert digit.dtype == np.uint8 and digit.shape == (28, 28)
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    larger_side = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    assert 19 <= larger_side <= 21, f"bounding box's larger side is {larger_side}, expected about 20"
    y, x = np.indices(digit.shape)
    mass = digit.astype(np.float64).sum()
    center = ((y * digit).sum() / mass, (x * digit).sum() / mass)
    assert np.hypot(center[0] - 14, center[1] - 14) <= 1, f"center of mass {center}, expected (14, 14)"
    assert digit.max() >= 200, "the strongest stroke should be near full intensity"


@pytest.mark.parametrize("render", RENDERS, ids=lambda render: render.__name__.removeprefix("render_"))
def test_load_digit_recovers_the_mnist_digit(render, digits, tmp_path):
    rng = np.random.default_rng(0)
    loaded = [load_digit(render(ink_on_paper(digit), tmp_path / f"digit{i}", rng)) for i, digit in enumerate(digits)]
    for digit in loaded:
        assert_mnist_style(digit)
    correlations = np.array([[correlation(a, b) for b in digits] for a in loaded])
    own = np.diag(correlations)
    assert own.mean() > MEAN_CORRELATION, own
    assert own.min() > EACH_CORRELATION, own
    # each render is closest to its own original among the eight
    assert list(correlations.argmax(axis=1)) == list(range(len(digits))), correlations.round(2)


@pytest.mark.parametrize("render", RENDERS, ids=lambda render: render.__name__.removeprefix("render_"))
def test_bytes_are_prepared_exactly_as_files_are(render, digits, tmp_path):
    """The service's uploads and predict's files take the same path through the preparation."""
    rng = np.random.default_rng(0)
    for index, digit in enumerate(digits[:3]):
        path = render(ink_on_paper(digit), tmp_path / f"digit{index}", rng)
        assert (digit_from_bytes(path.read_bytes()) == load_digit(path)).all()


def test_bad_bytes_raise_the_same_errors_as_bad_files(tmp_path):
    whole = write_png(tmp_path / "whole.png").read_bytes()
    huge = tmp_path / "huge.png"
    Image.new("1", (8000, settings.DEFAULT_MAX_IMAGE_PIXELS // 8000 + 1), 1).save(huge)
    for data, message in [
        (b"", "empty image"),
        (b"plain text", "not an image file"),
        (whole[: len(whole) // 2], "truncated or corrupt image"),
        (huge.read_bytes(), "pixels is too large for a digit image"),
        (blank_white_image(tmp_path).read_bytes(), "blank image: no digit found"),
    ]:
        with pytest.raises(ImageError, match=message):
            digit_from_bytes(data)


def test_load_digit_ignores_moderate_sensor_noise(digits, tmp_path):
    """Noise of sigma 8 gray levels against an ink contrast of 150 (a dim indoor phone photo) leaves
    the digit plainly readable; isolated noisy pixels must not stretch the crop."""
    rng = np.random.default_rng(0)
    loaded = []
    for i, digit in enumerate(digits):
        gray = 200 - 150 * ink_on_paper(digit) + rng.normal(0, 8, (CANVAS[1], CANVAS[0]))
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(np.uint8(np.clip(np.round(gray), 0, 255))).save(path)
        loaded.append(load_digit(path))
    own = np.array([correlation(a, b) for a, b in zip(loaded, digits)])
    assert own.mean() > MEAN_CORRELATION and own.min() > EACH_CORRELATION, own.round(2)


@pytest.mark.parametrize("shape", [(10, 200), (200, 10), (3, 3), (60, 60)])
def test_to_mnist_fits_any_blob_in_20_pixels_and_centers_it(shape):
    ink = np.zeros((300, 300))
    ink[17 : 17 + shape[0], 250 - shape[1] : 250] = 1.0
    digit = to_mnist(ink)
    assert_mnist_style(digit)
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
    # the aspect ratio is kept: a 10x200 bar becomes 1x20 (plus at most a pixel of resampling halo each side)
    expected = (20 * shape[0] / max(shape), 20 * shape[1] / max(shape))
    assert abs(height - expected[0]) <= 2 and abs(width - expected[1]) <= 2, (height, width)


def test_to_mnist_removes_faint_paper_texture():
    ink = np.full((100, 100), 0.15)  # texture below NOISE_FLOOR of the strongest stroke
    ink[40:60, 45:55] = 1.0
    digit = to_mnist(ink)
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    assert rows[-1] - rows[0] + 1 <= 21 and columns[-1] - columns[0] + 1 <= 12


def write_png(path: Path) -> Path:
    pixels = np.full((64, 64), 255, np.uint8)
    pixels[10:50, 28:36] = 0
    Image.fromarray(pixels).save(path)
    return path


def missing_file(tmp: Path) -> Path:
    return tmp / "missing.png"


def folder_without_images(tmp: Path) -> Path:
    (tmp / "notes").mkdir()
    (tmp / "notes" / "readme.txt").write_text("no digits here")
    return tmp / "notes"


def text_file(tmp: Path) -> Path:
    (tmp / "digit.png").write_text("a seven")
    return tmp / "digit.png"


def empty_file(tmp: Path) -> Path:
    (tmp / "digit.png").touch()
    return tmp / "digit.png"


def blank_white_image(tmp: Path) -> Path:
    Image.new("RGB", (64, 48), "white").save(tmp / "blank.jpg")
    return tmp / "blank.jpg"


BAD_INPUTS = [
    (missing_file, "no such file"),
    (folder_without_images, "a folder without PNG, JPEG, BMP or GIF files"),
    (text_file, "not an image file"),
    (empty_file, "empty file"),
    (blank_white_image, "blank image: no digit found"),
]


@pytest.mark.parametrize("make, message", BAD_INPUTS, ids=[make.__name__ for make, _ in BAD_INPUTS])
def test_bad_input_raises_image_error(make, message, tmp_path):
    path = make(tmp_path)
    with pytest.raises(ImageError, match=message) as error:
        load_digit(path)
    assert "\n" not in str(error.value)


def test_truncated_png_raises_image_error(tmp_path):
    whole = write_png(tmp_path / "whole.png").read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt image"):
        load_digit(truncated)


def test_a_png_bomb_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch):
    """52 KB of PNG that would decode to 6300x6300 pixels (40 MP, 0.5 GB as RGB)."""
    path = tmp_path / "bomb.png"
    Image.new("RGB", (6300, 6300), "white").save(path)
    assert path.stat().st_size < 200_000

    def decoding(*args):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoding)
    with pytest.raises(ImageError) as error:
        load_digit(path)
    assert str(error.value) == (
        "6300x6300 pixels is too large for a digit image (at most 4,000,000 pixels, MNIST_MAX_IMAGE_PIXELS); "
        "crop or downscale it"
    )


def test_the_pixel_ceiling_is_a_setting(tmp_path, monkeypatch):
    path = write_png(tmp_path / "digit.png")  # 64x64
    monkeypatch.setenv("MNIST_MAX_IMAGE_PIXELS", "4000")
    with pytest.raises(ImageError, match="64x64 pixels is too large for a digit image .at most 4,000 pixels"):
        load_digit(path)
    monkeypatch.setenv("MNIST_MAX_IMAGE_PIXELS", "4_096")
    assert load_digit(path).shape == (28, 28)
    monkeypatch.setenv("MNIST_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(PipelineError, match="MNIST_MAX_IMAGE_PIXELS 'lots': not a number of pixels"):
        load_digit(path)


def large_photo(digit: np.ndarray, path: Path, size: tuple[int, int]) -> Path:
    """The digit drawn dark on light paper filling a third of a photo of `size` (width, height), as JPEG."""
    side = size[1] // 3
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float64) / 255
    paper = np.zeros((size[1], size[0]))
    paper[side : 2 * side, size[0] // 2 : size[0] // 2 + side] = ink
    Image.fromarray(paper_gray(paper)).convert("RGB").save(path, quality=90)
    return path


@pytest.mark.parametrize("size, scale", [((3000, 2000), 2), ((4000, 3000), 2), ((9000, 6000), 4)])
def test_a_large_jpeg_is_decoded_reduced_to_the_same_digit(size, scale, digits, tmp_path):
    """A 6, 12 and 54 megapixel photo of a digit, over the 4 MP ceiling, decode at 1/2 or 1/4 scale."""
    large = large_photo(digits[0], tmp_path / "large.jpg", size)
    small = large_photo(digits[0], tmp_path / "small.jpg", (size[0] // scale, size[1] // scale))
    assert decode_ink(large).shape == (size[1] // scale, size[0] // scale)
    assert correlation(load_digit(large), load_digit(small)) > 0.97
    assert correlation(load_digit(large), digits[0]) > MEAN_CORRELATION


def test_a_jpeg_too_large_even_at_an_eighth_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    Image.new("L", (2000, 1500), 255).save(path)
    monkeypatch.setenv("MNIST_MAX_IMAGE_PIXELS", "40000")  # an eighth is 250x188 = 47,000 pixels
    with pytest.raises(ImageError, match="2000x1500 pixels is too large for a digit image"):
        load_digit(path)
    monkeypatch.setenv("MNIST_MAX_IMAGE_PIXELS", "50000")
    assert decode_ink(path).shape == (188, 250)


@pytest.mark.parametrize("format, name", [("TIFF", "TIFF"), ("WEBP", "WebP")])
def test_other_formats_are_refused_naming_the_formats_read(format, name, tmp_path):
    path = tmp_path / "digit.img"
    Image.fromarray(paper_gray(ink_on_paper(np.full((28, 28), 255, np.uint8)))).save(path, format=format)
    message = f"a {name} image: only PNG, JPEG, BMP and GIF are read; save it as PNG or JPEG"
    with pytest.raises(ImageError) as from_file:
        load_digit(path)
    with pytest.raises(ImageError) as from_bytes:
        digit_from_bytes(path.read_bytes())
    assert str(from_file.value) == str(from_bytes.value) == message


def test_an_animated_gif_is_read_from_its_first_frame(digits, tmp_path):
    frames = [Image.fromarray(paper_gray(ink_on_paper(digit))).convert("P") for digit in digits[:2]]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as image:
        assert image.n_frames == 2
    loaded = load_digit(path)
    assert correlation(loaded, digits[0]) > 0.9 > correlation(loaded, digits[1])


def test_pixel_values_that_are_not_numbers_are_an_image_error():
    values = np.zeros((40, 40), np.float32)
    values[10:30, 18:22] = np.nan
    with pytest.raises(ImageError, match="pixel values that are not numbers"):
        ink_of(Image.fromarray(values, "F"))


def test_a_decoder_error_of_any_kind_is_an_image_error(tmp_path, monkeypatch):
    path = write_png(tmp_path / "digit.png")

    def failing(*args):
        raise ValueError("unexpected end of data\nmore")

    monkeypatch.setattr(ImageFile.ImageFile, "load", failing)
    with pytest.raises(ImageError) as error:
        load_digit(path)
    assert str(error.value) == "truncated or corrupt image (unexpected end of data)"


def test_find_images_expands_folders_sorted_and_keeps_files_and_empty_folders(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    for name in ["b.png", "a.jpg", "c.JPEG", "d.bmp", "e.gif", "notes.txt", "model.keras"]:
        (folder / name).touch()
    (folder / "sub.png").mkdir()  # a folder, even with an image's suffix, is not an image file
    empty = tmp_path / "empty"
    empty.mkdir()
    only_text = tmp_path / "only-text"
    only_text.mkdir()
    (only_text / "readme.txt").touch()
    single = tmp_path / "single.txt"  # a file given by name is kept, to be reported if it is no image

    found = find_images([str(folder), str(empty), str(single), str(only_text)])

    assert found == [
        folder / "a.jpg",
        folder / "b.png",
        folder / "c.JPEG",
        folder / "d.bmp",
        folder / "e.gif",
        empty,
        single,
        only_text,
    ]
    assert find_images([]) == []
