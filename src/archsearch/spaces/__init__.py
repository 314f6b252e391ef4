"""Search spaces, one file each; importing this package registers them."""

from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.spaces.darts import DARTSGenotype, DARTSSpace
from archsearch.spaces.enas_macro import ENASMacroSpace, MacroArch
from archsearch.spaces.enas_micro import ENASMicroSpace, MicroCell
from archsearch.spaces.enas_rnn import ENASRNNSpace, RNNCell
from archsearch.spaces.nasnet import NASNetArch, NASNetSpace
from archsearch.spaces.nasrl_cnn import NASRLArch, NASRLSpace
from archsearch.spaces.nb201 import NB201Cell, NB201Space

__all__ = [
    "Architecture", "DARTSGenotype", "DARTSSpace", "ENASMacroSpace", "ENASMicroSpace", "ENASRNNSpace", "MacroArch",
    "MicroCell", "NASNetArch", "NASNetSpace", "NASRLArch", "NASRLSpace", "NB201Cell",
    "NB201Space", "RNNCell", "SearchSpace",
]
