"""What an image costs to decode before it is a digit: CPU seconds per megapixel for PNG and JPEG, a large
JPEG decoded reduced, and a PNG bomb refused from its header. `python bench/image_decoding.py`; a few seconds.

Each figure is the best of a few runs of `decode_ink` on bytes in memory (the service's path), in CPU time
of this process, beside the time of a fixed numpy matmul on the same machine (machine speed drifts).
"""

import io
import time

import numpy as np
from measure import matmul_reference
from PIL import Image

from mnist_pipeline.images import ImageError, decode_ink

REPEATS = 3
OLD_CEILING = 40_000_000


def cpu_seconds(call, repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
    return best


def photo(size: tuple[int, int], format: str) -> bytes:
    """A gray paper with noise and a dark bar: content like a photographed digit, which compresses like one."""
    rng = np.random.default_rng(0)
    gray = 200 + rng.normal(0, 4, (size[1], size[0]))
    gray[size[1] // 3 : 2 * size[1] // 3, size[0] // 2 : size[0] // 2 + size[0] // 20] = 50
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(np.clip(gray, 0, 255))).convert("RGB").save(buffer, format=format)
    return buffer.getvalue()


def decoding(data: bytes, max_pixels: int | None = None):
    return lambda: decode_ink(io.BytesIO(data), max_pixels)


def refusing(data: bytes):
    def call():
        try:
            decode_ink(io.BytesIO(data))
        except ImageError:
            return
        raise AssertionError("not refused")

    return call


def main() -> None:
    print(f"reference: 1024x1024 float64 matmul {1000 * matmul_reference():.1f} ms CPU")
    print("| image | file | decoded at | CPU ms | CPU ms per decoded MP |")
    print("|---|---|---|---|---|")
    for format, sizes in [("PNG", [(1000, 1000), (2000, 2000)]), ("JPEG", [(1000, 1000), (2000, 2000)])]:
        for size in sizes:
            data = photo(size, format)
            seconds = cpu_seconds(decoding(data))
            megapixels = size[0] * size[1] / 1e6
            row = f"{format} {size[0]}x{size[1]} | {len(data) / 1e6:.1f} MB | {megapixels:.0f} MP"
            print(f"| {row} | {1000 * seconds:.0f} | {1000 * seconds / megapixels:.0f} |")
    for size in [(4000, 3000), (8000, 6000)]:
        data = photo(size, "JPEG")
        decoded = decode_ink(io.BytesIO(data)).shape
        megapixels = decoded[0] * decoded[1] / 1e6
        reduced = cpu_seconds(decoding(data))
        whole = cpu_seconds(lambda data=data: Image.open(io.BytesIO(data)).load(), 1)
        print(
            f"| JPEG {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP) | {len(data) / 1e6:.1f} MB | "
            f"{decoded[1]}x{decoded[0]} | {1000 * reduced:.0f} (Pillow's decoding alone at full size: "
            f"{1000 * whole:.0f}) | {1000 * reduced / megapixels:.0f} |"
        )
    buffer = io.BytesIO()
    Image.new("RGB", (6300, 6300), "white").save(buffer, format="PNG")
    bomb = buffer.getvalue()
    refused = cpu_seconds(refusing(bomb), 20)
    decoded = cpu_seconds(decoding(bomb, OLD_CEILING), 1)
    print(
        f"| PNG bomb 6300x6300 | {len(bomb) / 1e3:.0f} KB | refused | {1000 * refused:.2f} "
        f"(decoded under the old 40 MP ceiling: {1000 * decoded:.0f}) | |"
    )


if __name__ == "__main__":
    main()
