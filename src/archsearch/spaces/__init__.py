"""Search spaces, one file each; importing this package registers them."""

from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.spaces.enas_macro import ENASMacroSpace, MacroArch
from archsearch.spaces.enas_micro import ENASMicroSpace, MicroCell
from archsearch.spaces.enas_rnn import ENASRNNSpace, RNNCell
from archsearch.spaces.nb201 import NB201Cell, NB201Space

__all__ = [
    "Architecture", "ENASMacroSpace", "ENASMicroSpace", "MacroArch", "ENASRNNSpace", "RNNCell", "MicroCell", "NB201Cell", "NB201Space", "SearchSpace",
]
