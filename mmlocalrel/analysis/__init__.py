from .flops import HANDLES, flop_analyzer

__all__ = ['HANDLES', 'flop_analyzer']
