from .lip_resnet import LIPResNet
from .lr_net import LRNet
from .plugin_resnet import PluginResNet

__all__ = ['LIPResNet', 'LRNet', 'PluginResNet']
