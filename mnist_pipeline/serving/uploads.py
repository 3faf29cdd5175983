"""Images out of a request: the raw body, or multipart `file` fields; the body's size and the number of
files limited while they arrive."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive

MEGABYTE = 1_000_000
DEFAULT_MAX_BODY = 10 * MEGABYTE
DEFAULT_MAX_FILES = 32
MAX_TEXT_FIELDS = 16  # `label` is the only one read


class ServiceError(Exception):
    """A request the service refuses: answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def too_large(limit: int) -> ServiceError:
    return ServiceError(413, f"request body over the limit of {limit:,} bytes; send a smaller image")


def limited(receive: Receive, limit: int) -> Receive:
    """`receive` that refuses a body growing past `limit` bytes (a chunked one too) while it arrives."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large(limit)
        return message

    return receive_limited


@dataclass
class Upload:
    images: list[tuple[str, bytes]]  # (name for error messages, encoded bytes)
    fields: dict[str, str]
    several: bool  # several `file` fields: answered with a list, in their order

    def single(self) -> tuple[str, bytes]:
        if len(self.images) != 1:
            raise ServiceError(400, "feedback takes one image per request")
        return self.images[0]


async def read_upload(request: Request, limit: int, max_files: int = DEFAULT_MAX_FILES) -> Upload:
    """The images of a request, or ServiceError: 413 over `limit` bytes or `max_files` files, 400 without
    an image."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    request = Request(request.scope, limited(request.receive, limit))
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return Upload([("body", await request.body())], {}, several=False)
    async with read_form(request, max_files) as form:
        files = form.getlist("file")
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
        if not files:
            raise ServiceError(400, "no image: send it as the request body or as the multipart form field `file`")
        if not all(isinstance(file, UploadFile) for file in files):
            raise ServiceError(400, "the form field `file` must be a file upload, not text")
        images = [(f"file {index + 1} ({file.filename})", await file.read()) for index, file in enumerate(files)]
    return Upload(images, fields, several=len(images) > 1)


@asynccontextmanager
async def read_form(request: Request, max_files: int) -> AsyncIterator[FormData]:
    """The multipart form, its spooled files closed on leaving. Starlette counts files and fields while it
    parses and stops at the first one over the limit, with a 400 in its own words, which become ours."""
    try:
        form = await request.form(max_files=max_files, max_fields=MAX_TEXT_FIELDS)
    except HTTPException as error:
        if str(error.detail).startswith("Too many files"):
            raise ServiceError(
                413, f"more than {max_files} files in one request (at most {max_files}); send the others separately"
            ) from None
        if str(error.detail).startswith("Too many fields"):
            raise ServiceError(
                413, f"more than {MAX_TEXT_FIELDS} text fields in one request; send `file` fields and `label` only"
            ) from None
        raise ServiceError(400, f"not a readable multipart form ({error.detail})") from None
    try:
        yield form
    finally:
        await form.close()
