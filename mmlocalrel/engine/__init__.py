from .amp import CPUAutocastOptimWrapper
from .hooks import RNGStateHook
from .preflight import ConfigError, preflight
from .cli import add_rng_state_hook, build_runner, enable_amp, enable_resume, load_config, set_local_rank

__all__ = ['CPUAutocastOptimWrapper', 'ConfigError', 'RNGStateHook', 'preflight', 'add_rng_state_hook', 'build_runner', 'enable_amp', 'enable_resume', 'load_config', 'set_local_rank']
