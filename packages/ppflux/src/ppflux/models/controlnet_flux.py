"""FLUX ControlNet (incl. union mode) and the multi-ControlNet wrapper, diffusers' key names."""

from __future__ import annotations

from dataclasses import dataclass

from .._compat import require_paddle

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
from ppdiffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402

from .loading import FluxLoadingMixin  # noqa: E402
from .transformer_flux import (  # noqa: E402
    CombinedTimestepGuidanceTextProjEmbeddings,
    CombinedTimestepTextProjEmbeddings,
    FluxPosEmbed,
    FluxSingleTransformerBlock,
    FluxTransformerBlock,
    _ids_2d,
)


def _zero_linear(dim_in, dim_out):
    zero = nn.initializer.Constant(0.0)
    return nn.Linear(
        dim_in,
        dim_out,
        weight_attr=paddle.ParamAttr(initializer=zero),
        bias_attr=paddle.ParamAttr(initializer=zero),
    )


class ControlNetConditioningEmbedding(nn.Layer):
    """Pixel-space hint encoder (XLabs/InstantX style ``input_hint_block``)."""

    def __init__(
        self,
        conditioning_embedding_channels: int,
        conditioning_channels: int = 3,
        block_out_channels=(16, 32, 96, 256),
    ):
        super().__init__()
        self.conv_in = nn.Conv2D(conditioning_channels, block_out_channels[0], 3, padding=1)
        self.blocks = nn.LayerList()
        for i in range(len(block_out_channels) - 1):
            c_in, c_out = block_out_channels[i], block_out_channels[i + 1]
            self.blocks.append(nn.Conv2D(c_in, c_in, 3, padding=1))
            self.blocks.append(nn.Conv2D(c_in, c_out, 3, padding=1, stride=2))
        zero = nn.initializer.Constant(0.0)
        self.conv_out = nn.Conv2D(
            block_out_channels[-1],
            conditioning_embedding_channels,
            3,
            padding=1,
            weight_attr=paddle.ParamAttr(initializer=zero),
            bias_attr=paddle.ParamAttr(initializer=zero),
        )

    def forward(self, cond):
        x = F.silu(self.conv_in(cond))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)


@dataclass
class FluxControlNetOutput:
    controlnet_block_samples: tuple
    controlnet_single_block_samples: tuple


class FluxControlNetModel(FluxLoadingMixin, nn.Layer, ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        patch_size: int = 1,
        in_channels: int = 64,
        num_layers: int = 19,
        num_single_layers: int = 38,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        guidance_embeds: bool = False,
        axes_dims_rope=(16, 56, 56),
        num_mode: int | None = None,
        conditioning_embedding_channels: int | None = None,
    ):
        super().__init__()
        self.out_channels = in_channels
        self.inner_dim = num_attention_heads * attention_head_dim
        self.pos_embed = FluxPosEmbed(10000, axes_dims_rope)
        embed_cls = (
            CombinedTimestepGuidanceTextProjEmbeddings
            if guidance_embeds
            else CombinedTimestepTextProjEmbeddings
        )
        self.time_text_embed = embed_cls(self.inner_dim, pooled_projection_dim)
        self.context_embedder = nn.Linear(joint_attention_dim, self.inner_dim)
        self.x_embedder = nn.Linear(in_channels, self.inner_dim)
        self.transformer_blocks = nn.LayerList(
            [
                FluxTransformerBlock(self.inner_dim, num_attention_heads, attention_head_dim)
                for _ in range(num_layers)
            ]
        )
        self.single_transformer_blocks = nn.LayerList(
            [
                FluxSingleTransformerBlock(self.inner_dim, num_attention_heads, attention_head_dim)
                for _ in range(num_single_layers)
            ]
        )
        self.controlnet_blocks = nn.LayerList(
            [_zero_linear(self.inner_dim, self.inner_dim) for _ in range(num_layers)]
        )
        self.controlnet_single_blocks = nn.LayerList(
            [_zero_linear(self.inner_dim, self.inner_dim) for _ in range(num_single_layers)]
        )
        self.union_mode = num_mode is not None
        if self.union_mode:
            self.controlnet_mode_embedder = nn.Embedding(num_mode, self.inner_dim)
        if conditioning_embedding_channels is not None:
            self.input_hint_block = ControlNetConditioningEmbedding(
                conditioning_embedding_channels, block_out_channels=(16, 16, 16, 16)
            )
            self.controlnet_x_embedder = nn.Linear(in_channels, self.inner_dim)
        else:
            self.input_hint_block = None
            self.controlnet_x_embedder = _zero_linear(in_channels, self.inner_dim)

    @classmethod
    def from_transformer(
        cls,
        transformer,
        num_layers: int = 4,
        num_single_layers: int = 10,
        load_weights_from_transformer: bool = True,
        num_mode=None,
    ):
        """A ControlNet initialised from a transformer's first blocks (as diffusers)."""
        config = dict(transformer.config)
        config.update(num_layers=num_layers, num_single_layers=num_single_layers, num_mode=num_mode)
        controlnet = cls.from_config_dict(config)
        if load_weights_from_transformer:
            own = controlnet.state_dict()
            for key, value in transformer.state_dict().items():
                if key in own and list(own[key].shape) == list(value.shape):
                    own[key].set_value(value)
        return controlnet

    def forward(
        self,
        hidden_states,
        controlnet_cond,
        controlnet_mode=None,
        conditioning_scale: float = 1.0,
        encoder_hidden_states=None,
        pooled_projections=None,
        timestep=None,
        img_ids=None,
        txt_ids=None,
        guidance=None,
        joint_attention_kwargs=None,
        return_dict: bool = True,
    ):
        """ControlNet residuals for the transformer's blocks.

        Args:
            hidden_states: packed image tokens ``[B, S, in_channels]``.
            controlnet_cond: packed VAE tokens of the control image ``[B, S, in_channels]``, or
                pixels ``[B, 3, H, W]`` for ControlNets with an input hint block.
            controlnet_mode: union ControlNets: the mode index ``[B, 1]`` (int64).
            conditioning_scale: multiplies every residual.
            encoder_hidden_states, pooled_projections, timestep, img_ids, txt_ids, guidance:
                as ``FluxTransformer2DModel.forward``.
            return_dict: return an output object (else a tuple).

        Returns:
            ``(block_samples, single_block_samples)``: lists of ``[B, S, hidden]`` tensors.
        """
        joint_attention_kwargs = dict(joint_attention_kwargs or {})
        joint_attention_kwargs.pop("scale", None)
        hidden_states = self.x_embedder(hidden_states)
        if self.input_hint_block is not None:
            controlnet_cond = self.input_hint_block(controlnet_cond)
            b, c, h, w = controlnet_cond.shape
            p = self.config.patch_size
            controlnet_cond = controlnet_cond.reshape([b, c, h // p, p, w // p, p])
            controlnet_cond = controlnet_cond.transpose([0, 2, 4, 1, 3, 5]).reshape(
                [b, -1, c * p * p]
            )
        hidden_states = hidden_states + self.controlnet_x_embedder(controlnet_cond)
        timestep = timestep.astype(hidden_states.dtype) * 1000
        if guidance is not None:
            guidance = guidance.astype(hidden_states.dtype) * 1000
            temb = self.time_text_embed(timestep, guidance, pooled_projections)
        else:
            temb = self.time_text_embed(timestep, pooled_projections)
        encoder_hidden_states = self.context_embedder(encoder_hidden_states)
        txt_ids = _ids_2d(txt_ids)
        if self.union_mode:
            if controlnet_mode is None:
                raise ValueError("this is a union ControlNet: pass controlnet_mode")
            mode_emb = self.controlnet_mode_embedder(controlnet_mode)
            encoder_hidden_states = paddle.concat([mode_emb, encoder_hidden_states], axis=1)
            txt_ids = paddle.concat([txt_ids[:1], txt_ids], axis=0)
        ids = paddle.concat([txt_ids, _ids_2d(img_ids)], axis=0)
        rope = self.pos_embed(ids)

        block_samples = []
        for block in self.transformer_blocks:
            encoder_hidden_states, hidden_states = block(
                hidden_states, encoder_hidden_states, temb, rope, joint_attention_kwargs
            )
            block_samples.append(hidden_states)
        single_samples = []
        for block in self.single_transformer_blocks:
            encoder_hidden_states, hidden_states = block(
                hidden_states, encoder_hidden_states, temb, rope, joint_attention_kwargs
            )
            single_samples.append(hidden_states)
        block_samples = [
            cb(s) * conditioning_scale for s, cb in zip(block_samples, self.controlnet_blocks)
        ]
        single_samples = [
            cb(s) * conditioning_scale
            for s, cb in zip(single_samples, self.controlnet_single_blocks)
        ]
        block_samples = tuple(block_samples) or None
        single_samples = tuple(single_samples) or None
        if not return_dict:
            return block_samples, single_samples
        return FluxControlNetOutput(block_samples, single_samples)


def _add(acc, new):
    if acc is None:
        return new
    if new is None:
        return acc
    return tuple(a + b for a, b in zip(acc, new))


class FluxMultiControlNetModel(nn.Layer):
    """Several ControlNets summed; one union ControlNet may take several (image, mode) pairs."""

    def __init__(self, controlnets):
        super().__init__()
        self.nets = nn.LayerList(list(controlnets))

    @property
    def config(self):
        return self.nets[0].config

    def forward(
        self,
        hidden_states,
        controlnet_cond,
        controlnet_mode,
        conditioning_scale,
        encoder_hidden_states=None,
        pooled_projections=None,
        timestep=None,
        img_ids=None,
        txt_ids=None,
        guidance=None,
        joint_attention_kwargs=None,
        return_dict: bool = True,
    ):
        """The summed residuals of every ControlNet (one union ControlNet may take several
        images): ``controlnet_cond``, ``controlnet_mode`` and ``conditioning_scale`` are lists
        with one entry per image; the other arguments are FluxControlNetModel's.

        Returns:
            ``(block_samples, single_block_samples)``.
        """
        blocks = singles = None
        if len(self.nets) == 1 and self.nets[0].union_mode:
            pairs = [
                (self.nets[0], c, m, s)
                for c, m, s in zip(controlnet_cond, controlnet_mode, conditioning_scale)
            ]
        else:
            pairs = list(zip(self.nets, controlnet_cond, controlnet_mode, conditioning_scale))
        for net, cond, mode, scale in pairs:
            if mode is not None and mode.ndim == 1:
                mode = mode[:, None]
            b, s = net(
                hidden_states=hidden_states,
                controlnet_cond=cond,
                controlnet_mode=mode,
                conditioning_scale=scale,
                encoder_hidden_states=encoder_hidden_states,
                pooled_projections=pooled_projections,
                timestep=timestep,
                img_ids=img_ids,
                txt_ids=txt_ids,
                guidance=guidance,
                joint_attention_kwargs=joint_attention_kwargs,
                return_dict=False,
            )
            blocks, singles = _add(blocks, b), _add(singles, s)
        return blocks, singles
