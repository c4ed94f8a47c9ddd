from .lip_resnet import LIPResNet
from .plugin_resnet import PluginResNet

__all__ = ['LIPResNet', 'PluginResNet']
