from .plugin_resnet import PluginResNet

__all__ = ['PluginResNet']
