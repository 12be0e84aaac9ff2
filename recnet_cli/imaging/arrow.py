"""A decoded Pillow image's samples, copied out of Pillow's memory through the Arrow C data interface.

``np.asarray(image)`` copies them with Pillow's ``tobytes``, which holds Python's GIL throughout (about 36 ms
for 12 MP here), and a GPU lane's compute thread needs the GIL for every kernel launch. Pillow 11.2 and later
export an image held in one block of memory as an Arrow array, without copying it, and OpenCV's and NumPy's
copies out of that let go of the GIL. Pillow holds an image in blocks of at most 16 MB by default: importing
this module raises that to ``SINGLE_BLOCK_BYTES`` for the process, one block for photos up to 268 MP.
"""

from __future__ import annotations

import ctypes

import cv2
import numpy as np
from PIL import Image

SINGLE_BLOCK_BYTES = 1 << 30
Image.core.set_block_size(SINGLE_BLOCK_BYTES)

# How Pillow stores each 8-bit mode: a pixel's bytes, and which of them are the mode's bands.
_STORED_BANDS = {"L": (1, slice(1)), "LA": (4, slice(0, 4, 3)), "RGB": (4, slice(3)), "RGBA": (4, slice(4))}


class _ArrowArray(ctypes.Structure):
    """``struct ArrowArray`` of the Arrow C data interface, a stable ABI."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype, _capsule_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]


def image_samples(image: Image.Image) -> np.ndarray:
    """The image's samples as NumPy gives them (``np.asarray(image)``), H x W x bands for a mode of several;
    copied with the GIL let go for 8-bit grey and RGB, with or without alpha, held in one block."""
    image.load()
    stored = _STORED_BANDS.get(image.mode)
    if stored is None or image.width * image.height == 0:
        return np.asarray(image)
    try:
        _, capsule = image.__arrow_c_array__()
    except ValueError:  # held in several blocks: larger than SINGLE_BLOCK_BYTES
        return np.asarray(image)
    pixel_bytes, bands = stored
    array = _ArrowArray.from_address(_capsule_pointer(capsule, b"arrow_array"))
    values = array.children[0].contents if array.n_children else array  # a pixel's bytes, as one list
    if values.length != image.width * image.height * pixel_bytes or values.offset or values.n_buffers != 2:
        return np.asarray(image)  # a layout this module does not know (a later Pillow's)
    memory = (ctypes.c_uint8 * values.length).from_address(values.buffers[1])
    stored_pixels = np.frombuffer(memory, np.uint8).reshape(image.height, image.width, pixel_bytes)
    if image.mode == "RGB":  # OpenCV drops the padding byte 8x as fast as NumPy's copy of a slice
        return cv2.cvtColor(stored_pixels, cv2.COLOR_RGBA2RGB)
    samples = np.array(stored_pixels[..., bands])  # a copy, always: Pillow's memory goes with the capsule
    return samples[..., 0] if image.mode == "L" else samples
