"""`mnist-pipeline serve` for real: uvicorn on a free loopback port, driven over HTTP while the
registry's champion changes under it."""

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.serving.conftest import encoded, get_json

pytestmark = pytest.mark.e2e


def without_id(answer: dict) -> dict:
    """An answer without its prediction_id, which is new at every answer."""
    return {key: value for key, value in answer.items() if key != "prediction_id"}


def post(url: str, data: bytes, content_type: str = "application/octet-stream", **headers: str) -> tuple[int, object]:
    headers = {"Content-Type": content_type, **{name.replace("_", "-"): value for name, value in headers.items()}}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def announce_body(url: str, size: int) -> tuple[int, object]:
    """Headers announcing a body of `size` bytes, and then no body: a limit is checked before reading."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


def multipart(*files: tuple[str, bytes], **fields: str) -> tuple[bytes, str]:
    boundary = "mnist-boundary-0123456789"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, data in files:
        header = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        parts.append(header.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_real_digits_bad_input_and_feedback_over_http(service, subset):
    digits = {index: int(subset.test_labels[index]) for index in range(10)}
    right = 0
    for index, label in digits.items():
        png, jpeg = encoded(subset.test_images[index], "PNG"), encoded(subset.test_images[index], "JPEG")
        status, from_png = post(f"{service.url}/predict", png, "image/png")
        status_jpeg, from_jpeg = post(f"{service.url}/predict", jpeg, "image/jpeg")
        status_form, from_form = post(f"{service.url}/predict", *multipart((f"{index}.png", png)))
        assert (status, status_jpeg, status_form) == (200, 200, 200)
        assert without_id(from_png) == without_id(from_form) and from_png["prediction_id"] != from_form["prediction_id"]
        assert from_png["version"] == "v0001" and len(from_png["probabilities"]) == 10
        right += (from_png["digit"] == label) + (from_jpeg["digit"] == label)
    assert right >= 14, f"{right} of 20 real test digits right"  # a baseline trained 3 epochs on 800 digits
    status, answers = post(
        f"{service.url}/predict", *multipart(*((f"{i}.jpg", encoded(subset.test_images[i], "JPEG")) for i in range(3)))
    )
    assert status == 200 and [answer["version"] for answer in answers] == ["v0001"] * 3

    png = encoded(subset.test_images[0], "PNG")
    bad = [
        (post(f"{service.url}/predict", b""), 400),
        (post(f"{service.url}/predict", b"not an image at all"), 400),
        (post(f"{service.url}/predict", png[:300]), 400),
        (announce_body(service.url, 10_000_001), 413),
        (post(f"{service.url}/feedback?label=ten", png), 422),
        (post(f"{service.url}/predict", *multipart(*((f"{i}.png", png) for i in range(33)))), 413),
        (post(f"{service.url}/feedback?label=7", png, Origin="http://evil.example"), 403),
        (post(f"{service.url}/feedback?label=7", png, Sec_Fetch_Site="cross-site"), 403),
        (post(f"{service.url}/feedback?label=7", png, Host="rebound.example"), 400),
    ]
    for (status, answer), expected in bad:
        assert status == expected and list(answer) == ["error"]
        assert get_json(f"{service.url}/healthz")[0] == 200  # still answering

    five, zero = (encoded(subset.train_images[index], "PNG") for index in (0, 1))  # not test images: storable
    assert post(f"{service.url}/feedback?label=5", five)[1]["examples"] == 1
    assert post(f"{service.url}/feedback", *multipart(("zero.png", zero), label="0"))[1]["outcome"] == "added"
    counted = json.loads(service.cli("data", "--json").stdout)
    assert (counted["examples"], counted["by_source"], counted["by_label"]) == (2, {"feedback": 2}, {"0": 1, "5": 1})


def test_promotion_swaps_the_model_within_5_s_and_no_request_fails(service, subset):
    digit = encoded(subset.test_images[0], "PNG")
    answers: list[tuple[float, int, object]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            answers.append((time.monotonic(), *post(f"{service.url}/predict", digit, "image/png")))

    sender = threading.Thread(target=client)
    sender.start()
    try:
        time.sleep(1)
        promoted = service.cli("promote", "v0002", "--reason", "a test swap")
        promoted_at = time.monotonic()
        assert promoted.returncode == 0, promoted.stderr
        assert "v0002 is the champion (before: v0001)" in promoted.stdout
        while time.monotonic() < promoted_at + 10 and answers[-1][2]["version"] != "v0002":
            time.sleep(0.05)
        damaged = service.cli("promote", "v0003", "--reason", "a damaged file")
        assert damaged.returncode == 0, damaged.stderr
        time.sleep(3)
    finally:
        stop.set()
        sender.join()

    assert [status for _, status, _ in answers].count(200) == len(answers), [a for a in answers if a[1] != 200][:3]
    switched = next(at for at, _, answer in answers if answer["version"] == "v0002")
    assert switched - promoted_at <= 5, f"the new champion answered {switched - promoted_at:.1f} s after promote"
    versions = [answer["version"] for _, _, answer in answers]
    assert versions == sorted(versions) and set(versions) == {"v0001", "v0002"}  # one switch, never back
    status, health = get_json(f"{service.url}/healthz")
    assert (status, health["version"]) == (200, "v0002") and "v0003 could not be loaded" in health["problem"]
    assert "v0003 could not be loaded" in service.log.read_text()
    record = json.loads(service.cli("models", "--json").stdout)
    assert [row["status"] for row in record] == ["archived", "archived", "champion"]
