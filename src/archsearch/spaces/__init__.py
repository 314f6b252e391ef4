"""Search spaces, one file each; importing this package registers them."""

from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.spaces.nb201 import NB201Cell, NB201Space

__all__ = ["Architecture", "SearchSpace", "NB201Cell", "NB201Space"]
