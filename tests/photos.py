"""Sizes of the small test photos shared by the inference tests (see ``conftest.photo``)."""

#: Odd, and no multiple of the tiny network's 16, so padding and cropping are exercised.
PHOTO_HEIGHT, PHOTO_WIDTH = 45, 67
