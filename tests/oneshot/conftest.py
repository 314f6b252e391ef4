"""The one-shot tests' shared fixture: test_darts' tiny learnable image set (``images``)."""

from tests.oneshot.test_darts import images  # noqa: F401
