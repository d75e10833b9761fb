"""What goes wrong with images, in one line that names the image and the reason."""
from __future__ import annotations

from proto.errors import FailedPrecondition


class ImageError(FailedPrecondition):
    """An image could not be pulled, unpacked, read or removed.

    A FailedPrecondition: the request was well formed, but the image (or its
    registry) is not in a state that allows it; the message says why.
    """
