"""Adapters that put recalib's operators into other libraries' models.

* :mod:`recalib.integrations.timm`: ``attn_layer(name, **kwargs)``, a factory timm's ResNet family accepts as
  ``block_args=dict(attn_layer=...)`` (needs the optional extra ``recalib[timm]``).
"""
