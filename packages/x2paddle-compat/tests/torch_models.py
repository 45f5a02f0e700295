"""Tiny PyTorch models with random weights, one builder per family.

Each builder returns ``(module, example_inputs)``; weights are random (norm statistics and
constant-initialised parameters are perturbed so that no layer is an identity and the ONNX
exporter does not fold them away).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
        for name, b in module.named_buffers():
            if "running_var" in name:
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif "running_mean" in name:
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return module.eval()


class SmallCNN(nn.Module):
    """conv + bn + relu + maxpool + linear (AlexNet/VGG family topology)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + idt)


class TinyResNet(nn.Module):
    """ResNet18 topology at width 8: stem, maxpool, basic blocks, global pool."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.layers = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2), BasicBlock(16, 32, 2))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c, expand=4, se=False, act=nn.ReLU6):
        super().__init__()
        h = c * expand
        layers = [nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), act(),
                  nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), act()]
        self.body = nn.Sequential(*layers)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(h, h // 4, 1), nn.ReLU(),
                                nn.Conv2d(h // 4, h, 1), nn.Hardsigmoid()) if se else None
        self.proj = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.body(x)
        if self.se is not None:
            y = y * self.se(y)
        return x + self.proj(y)


class TinyMobileNet(nn.Module):
    """MobileNetV2/V3 topology: depthwise convs, relu6 / hardswish, squeeze-excite."""

    def __init__(self, v3=False):
        super().__init__()
        act = nn.Hardswish if v3 else nn.ReLU6
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), act())
        self.blocks = nn.Sequential(InvertedResidual(8, se=v3, act=act),
                                    InvertedResidual(8, se=v3, act=act))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(x.mean((2, 3)))


class ChannelShuffleNet(nn.Module):
    """ShuffleNetV2 channel shuffle: integer shape arithmetic (x.size(1) // groups)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.size()
        g = 2
        x = x.view(b, g, c // g, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
        return self.conv2(x)


class UpsampleNet(nn.Module):
    """Segmentation head: bilinear upsampling by scale factor (DeepLab/BASNet family)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, 2, 1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = self.head(F.relu(self.down(x)))
        return F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y)


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16, num_layers=1, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y)


class EncoderNet(nn.Module):
    """nn.TransformerEncoderLayer (MultiheadAttention): fails torch's trace check (R19)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(8, 16)
        self.enc = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        return self.out(self.enc(self.emb(x)))


class PatchEmbedViT(nn.Module):
    """ViT-style: patch embed, cls token via new_zeros + fill_, unflatten (R19)."""

    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.pos = nn.Parameter(torch.randn(1, 5, dim) * 0.02)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)  # B, N, D
        cls = x.new_zeros(x.shape[0], 1, x.shape[2])
        cls.fill_(0.5)
        x = torch.cat([cls, x], 1) + self.pos
        b, n, d = x.shape
        qkv = self.qkv(self.norm(x)).unflatten(-1, (3, self.heads, d // self.heads))
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(y)[:, 0]


class SDPAttention(nn.Module):
    """F.scaled_dot_product_attention with grouped KV heads and an explicit scale (R21)."""

    def __init__(self, dim=32, heads=4, kv_heads=2):
        super().__init__()
        self.h, self.kvh, self.hd = heads, kv_heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, kv_heads * self.hd)
        self.v = nn.Linear(dim, kv_heads * self.hd)
        self.o = nn.Linear(dim, dim)

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.h, self.hd).transpose(1, 2)
        k = self.k(x).view(b, s, self.kvh, self.hd).transpose(1, 2)
        v = self.v(x).view(b, s, self.kvh, self.hd).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3, enable_gqa=True)
        return self.o(y.transpose(1, 2).reshape(b, s, -1))


class ScalarShapeNet(nn.Module):
    """Window partition with sizes computed from tensor shapes (Swin family, R4)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.shape
        ws = int(h // 2)
        x = x.view(b, c, h // ws, ws, w // ws, ws).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, -1, c * ws * ws).mean(1)


class GatherIndex(nn.Module):
    """torch.gather with an int64 index (BERT-family token_type_ids buffers, R7)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("ids", torch.arange(6).repeat(2, 1).flip(1).contiguous())
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return self.fc(torch.gather(x, 1, self.ids[:, :6]))


class IntOfShape(nn.Module):
    """``int()`` of a traced shape expression (window counts in Swin, R4)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        b, n, c = x.shape
        windows = int(b * n / 2)
        return self.fc(x.reshape(windows, 2, c)).sum(1)


def build(name: str):
    """(module, inputs) for a family name of :data:`TORCH_FAMILIES`."""
    torch.manual_seed(0)
    factory, shape = TORCH_FAMILIES[name]
    module = randomize(factory())
    g = torch.Generator().manual_seed(1)
    if isinstance(shape[0], tuple):
        inputs = [torch.randn(s, generator=g) for s in shape]
    else:
        inputs = [torch.randn(shape, generator=g)]
    return module, inputs


TORCH_FAMILIES = {
    "small_cnn": (SmallCNN, (1, 3, 16, 16)),
    "resnet": (TinyResNet, (1, 3, 32, 32)),
    "mobilenet_v2": (lambda: TinyMobileNet(False), (1, 3, 16, 16)),
    "mobilenet_v3": (lambda: TinyMobileNet(True), (1, 3, 16, 16)),
    "shufflenet": (ChannelShuffleNet, (1, 3, 8, 8)),
    "upsample_seg": (UpsampleNet, (1, 3, 16, 16)),
    "lstm": (LSTMNet, (1, 5, 8)),
    "gru": (GRUNet, (1, 5, 8)),
    "transformer_encoder": (EncoderNet, (1, 6, 8)),
    "vit": (PatchEmbedViT, (1, 3, 8, 8)),
    "sdpa_gqa": (SDPAttention, (1, 6, 32)),
    "swin_window": (ScalarShapeNet, (1, 3, 8, 8)),
    "gather_index": (GatherIndex, (2, 6)),
    "int_of_shape": (IntOfShape, (2, 6, 4)),
}
