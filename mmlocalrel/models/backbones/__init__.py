from .lr_net import LRNet
from .plugin_resnet import PluginResNet

__all__ = ['LRNet', 'PluginResNet']
