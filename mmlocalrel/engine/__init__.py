from .amp import CPUAutocastOptimWrapper
from .cli import build_runner, enable_amp, enable_resume, load_config, set_local_rank

__all__ = ['CPUAutocastOptimWrapper', 'build_runner', 'enable_amp', 'enable_resume', 'load_config', 'set_local_rank']
