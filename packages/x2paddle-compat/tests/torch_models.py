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
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
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
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + idt)


class TinyResNet(nn.Module):
    """ResNet18 topology at width 8: stem, maxpool, basic blocks, global pool."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 7, 2, 3, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        self.layers = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2), BasicBlock(16, 32, 2))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c, expand=4, se=False, act=nn.ReLU6):
        super().__init__()
        h = c * expand
        layers = [
            nn.Conv2d(c, h, 1, bias=False),
            nn.BatchNorm2d(h),
            act(),
            nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False),
            nn.BatchNorm2d(h),
            act(),
        ]
        self.body = nn.Sequential(*layers)
        self.se = (
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(h, h // 4, 1),
                nn.ReLU(),
                nn.Conv2d(h // 4, h, 1),
                nn.Hardsigmoid(),
            )
            if se
            else None
        )
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
        self.blocks = nn.Sequential(
            InvertedResidual(8, se=v3, act=act), InvertedResidual(8, se=v3, act=act)
        )
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


# ---- families of X2Paddle's test_benchmark, depth-faithful and width-reduced (zoo) ----


class VGG(nn.Module):
    # X2Paddle emits invalid code (names starting with a digit) for a top-level nn.Sequential
    def __init__(self, cfg, bn):
        super().__init__()
        self.net = _vgg_layers(cfg, bn)

    def forward(self, x):
        return self.net(x)


def _vgg(cfg, bn):
    return VGG(cfg, bn)


def _vgg_layers(cfg, bn):
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if bn else [])
            layers.append(nn.ReLU())
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin, 16), nn.ReLU(), nn.Linear(16, 10))


_VGG = {
    11: [4, "M", 8, "M", 8, 8, "M", 16, 16, "M", 16, 16, "M"],
    16: [4, 4, "M", 8, 8, "M", 8, 8, 8, "M", 16, 16, 16, "M", 16, 16, 16, "M"],
    19: [4, 4, "M", 8, 8, "M", 8, 8, 8, 8, "M", 16, 16, 16, 16, "M", 16, 16, 16, 16, "M"],
}


class Bottleneck(nn.Module):
    def __init__(self, cin, mid, stride=1):
        super().__init__()
        cout = mid * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.down = (
            None
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return F.relu(self.body(x) + (x if self.down is None else self.down(x)))


class ResNetN(nn.Module):
    """ResNet-18/34 (basic) or -50/101/152 (bottleneck) block counts at width 4."""

    def __init__(self, depth):
        super().__init__()
        blocks = {
            18: [2, 2, 2, 2],
            34: [3, 4, 6, 3],
            50: [3, 4, 6, 3],
            101: [3, 4, 23, 3],
            152: [3, 8, 36, 3],
        }[depth]
        self.stem = nn.Sequential(
            nn.Conv2d(3, 4, 7, 2, 3, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        layers, cin = [], 4
        for i, n in enumerate(blocks):
            width = 4 * 2**i
            for j in range(n):
                stride = 2 if j == 0 and i > 0 else 1
                if depth >= 50:
                    layers.append(Bottleneck(cin, width, stride))
                    cin = width * 4
                else:
                    layers.append(BasicBlock(cin, width, stride))
                    cin = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1))


class Fire(nn.Module):
    def __init__(self, cin, s, e):
        super().__init__()
        self.s = nn.Conv2d(cin, s, 1)
        self.e1 = nn.Conv2d(s, e, 1)
        self.e3 = nn.Conv2d(s, e, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.s(x))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(8, 4, 8),
            Fire(16, 4, 8),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 8, 16),
            nn.Dropout(),
            nn.Conv2d(32, 10, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x):
        return self.net(x)


class AlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 11, 4, 2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class DenseNet(nn.Module):
    """Dense blocks (BN-ReLU-Conv, concatenation) with transitions."""

    def __init__(self, growth=4, blocks=(2, 3)):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        layers, c = [], 8
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(
                    nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, growth, 3, padding=1))
                )
                c += growth
            if i < len(blocks) - 1:
                layers.append(
                    nn.Sequential(nn.BatchNorm2d(c), nn.Conv2d(c, c // 2, 1), nn.AvgPool2d(2))
                )
                c //= 2
        self.layers = nn.ModuleList(layers)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            if isinstance(layer[-1], nn.AvgPool2d):
                x = layer(x)
            else:
                x = torch.cat([x, layer(x)], 1)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class InceptionBlockNet(nn.Module):
    """Inception-style parallel branches (1x1, 3x3, 5x5, pool-proj) concatenated."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 4, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)
        return self.fc(F.adaptive_avg_pool2d(F.relu(y), 1).flatten(1))


class EfficientNetLike(nn.Module):
    """MBConv blocks with SiLU and squeeze-excite (EfficientNet / MnasNet family)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU()
        )
        self.block = InvertedResidual(8, se=True, act=nn.SiLU)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.block(self.stem(x)), 1).flatten(1))


class UNetLike(nn.Module):
    """Encoder-decoder with transposed convolution and skip concatenation."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.dec = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        e = self.enc(x)
        return torch.sigmoid(self.dec(torch.cat([self.up(self.down(e)), e], 1)))


class CRNNLike(nn.Module):
    """CNN features -> sequence -> bidirectional LSTM -> per-step classifier (OCR)."""

    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d((2, 1)),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, None)),
        )
        self.rnn = nn.LSTM(8, 8, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        f = self.cnn(x).squeeze(2).transpose(1, 2)
        return self.fc(self.rnn(f)[0])


class DetectionHeadNet(nn.Module):
    """FPN-free single-scale detector head: conv features, box/score branches, sigmoid."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1),
            nn.BatchNorm2d(8),
            nn.LeakyReLU(0.1),
            nn.Conv2d(8, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.1),
        )
        self.box = nn.Conv2d(16, 4 * 3, 1)
        self.cls = nn.Conv2d(16, 2 * 3, 1)

    def forward(self, x):
        f = self.body(x)
        b = self.box(f).flatten(2).transpose(1, 2)
        c = torch.sigmoid(self.cls(f)).flatten(2).transpose(1, 2)
        return torch.cat([b.reshape(1, -1, 4), c.reshape(1, -1, 2)], 2)


class GeneratorNet(nn.Module):
    """Image-to-image generator (CycleGAN / GPEN / pix2pix style): instance norm, residual,
    transposed conv, tanh."""

    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.InstanceNorm2d(8, affine=True), nn.ReLU()
        )
        self.res = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(8, 8, 3), nn.InstanceNorm2d(8, affine=True)
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1), nn.Tanh()
        )

    def forward(self, x):
        d = self.down(x)
        return self.up(d + self.res(d))


class BertTiny(nn.Module):
    """transformers 5 encoder (BertModel/RoBERTa/ELECTRA/...) with a padding attention mask."""

    def __init__(self, arch="bert", attn="sdpa"):
        super().__init__()
        import transformers

        kinds = {
            "bert": ("BertConfig", "BertModel"),
            "roberta": ("RobertaConfig", "RobertaModel"),
            "electra": ("ElectraConfig", "ElectraModel"),
            "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel"),
            "camembert": ("CamembertConfig", "CamembertModel"),
            "flaubert": ("FlaubertConfig", "FlaubertModel"),
            "dpr": ("DPRConfig", "DPRContextEncoder"),
        }
        cfg_name, model_name = kinds[arch]
        kwargs = dict(
            vocab_size=60,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=40,
        )
        if arch == "flaubert":
            kwargs = dict(
                vocab_size=60, emb_dim=32, n_layers=2, n_heads=4, max_position_embeddings=40
            )
        config = getattr(transformers, cfg_name)(**kwargs)
        # torch's ONNX exporter needs eager attention below opset 14; Flaubert has no SDPA
        config._attn_implementation = "eager" if arch == "flaubert" else attn
        self.model = getattr(transformers, model_name)(config).eval()
        self.arch = arch

    def forward(self, ids, mask):
        out = self.model(input_ids=ids, attention_mask=mask)
        return out[0]


def build_transformer(arch, attn="sdpa"):
    torch.manual_seed(0)
    module = randomize(BertTiny(arch, attn))
    ids = torch.randint(3, 60, (1, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(1, 8, dtype=torch.int64)
    mask[0, 6:] = 0
    return module, [ids, mask]


TORCH_FAMILIES.update(
    {
        "alexnet": (AlexNet, (1, 3, 96, 96)),
        "vgg11": (lambda: _vgg(_VGG[11], False), (1, 3, 32, 32)),
        "vgg11_bn": (lambda: _vgg(_VGG[11], True), (1, 3, 32, 32)),
        "vgg16": (lambda: _vgg(_VGG[16], False), (1, 3, 32, 32)),
        "vgg16_bn": (lambda: _vgg(_VGG[16], True), (1, 3, 32, 32)),
        "vgg19": (lambda: _vgg(_VGG[19], False), (1, 3, 32, 32)),
        "vgg19_bn": (lambda: _vgg(_VGG[19], True), (1, 3, 32, 32)),
        "resnet18": (lambda: ResNetN(18), (1, 3, 32, 32)),
        "resnet34": (lambda: ResNetN(34), (1, 3, 32, 32)),
        "resnet50": (lambda: ResNetN(50), (1, 3, 32, 32)),
        "resnet101": (lambda: ResNetN(101), (1, 3, 32, 32)),
        "resnet152": (lambda: ResNetN(152), (1, 3, 32, 32)),
        "squeezenet": (SqueezeNet, (1, 3, 32, 32)),
        "densenet": (DenseNet, (1, 3, 16, 16)),
        "inception": (InceptionBlockNet, (1, 3, 16, 16)),
        "efficientnet": (EfficientNetLike, (1, 3, 16, 16)),
        "unet": (UNetLike, (1, 3, 16, 16)),
        "crnn": (CRNNLike, (1, 1, 16, 24)),
        "detector": (DetectionHeadNet, (1, 3, 16, 16)),
        "generator": (GeneratorNet, (1, 3, 16, 16)),
    }
)


# ---- families rebuilt from their published structure (the upstream code is not here) ----


class EDSR(nn.Module):
    """EDSR (Lim et al. 2017): mean shift, head conv, residual blocks without BN scaled by
    ``res_scale``, body skip, sub-pixel (PixelShuffle) upsampler, tail conv."""

    def __init__(self, feats=16, blocks=4, scale=2, res_scale=0.1):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1))
        self.head = nn.Conv2d(3, feats, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(feats, feats, 3, padding=1),
                nn.ReLU(True),
                nn.Conv2d(feats, feats, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.body_tail = nn.Conv2d(feats, feats, 3, padding=1)
        self.up = nn.Sequential(
            nn.Conv2d(feats, feats * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )
        self.tail = nn.Conv2d(feats, 3, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x):
        x = self.head(x * 255.0 - self.mean * 255.0)
        res = x
        for block in self.body:
            res = res + block(res) * self.res_scale
        x = x + self.body_tail(res)
        return self.tail(self.up(x)) / 255.0 + self.mean


class TemporalModel(nn.Module):
    """VideoPose3D TemporalModel (test_benchmark's ACG BasicTemporalModel): 2-D keypoint
    sequence -> Conv1d with dilation 3^k, BN, ReLU, residuals on centre-sliced inputs."""

    def __init__(self, joints=17, channels=32, filter_widths=(3, 3, 3)):
        super().__init__()
        self.expand = nn.Conv1d(joints * 2, channels, filter_widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels)
        self.pad, self.layers = [], nn.ModuleList()
        dilation = filter_widths[0]
        for w in filter_widths[1:]:
            self.pad.append((w - 1) * dilation // 2)
            self.layers.append(
                nn.ModuleList(
                    [
                        nn.Conv1d(channels, channels, w, dilation=dilation, bias=False),
                        nn.BatchNorm1d(channels),
                        nn.Conv1d(channels, channels, 1, bias=False),
                        nn.BatchNorm1d(channels),
                    ]
                )
            )
            dilation *= w
        self.shrink = nn.Conv1d(channels, joints * 3, 1)

    def forward(self, x):  # x: [B, T, J, 2]
        b, t = x.shape[:2]
        x = x.view(b, t, -1).permute(0, 2, 1)
        x = F.relu(self.expand_bn(self.expand(x)))
        for pad, (c1, b1, c2, b2) in zip(self.pad, self.layers):
            res = x[:, :, pad : x.shape[2] - pad]
            x = F.relu(b1(c1(x)))
            x = res + F.relu(b2(c2(x)))
        x = self.shrink(x).permute(0, 2, 1)
        return x.reshape(b, -1, 17, 3)


class OpAdd(nn.Module):
    """test_benchmark 'opadd': the forms of addition torch code uses (tensor + tensor,
    broadcast, scalar, torch.add with alpha, in-place add_, sum of a list)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bias = nn.Parameter(torch.randn(1, 4, 1, 1))

    def forward(self, x, y):
        a = self.conv(x) + y
        b = torch.add(a, self.bias, alpha=0.5) + 1.5
        c = a.clone()
        c.add_(b)
        return sum([a, b, c]) + torch.add(x.mean(1, keepdim=True), 2.0)


class StereoNet(nn.Module):
    """MobileStereoNet (Shamsafar et al. 2022): shared 2-D feature extractor, group-wise
    correlation cost volume over disparities, 3-D conv hourglass with transposed 3-D convs,
    soft-argmin disparity regression."""

    def __init__(self, feats=8, groups=4, max_disp=4):
        super().__init__()
        self.feature = nn.Sequential(
            nn.Conv2d(3, feats, 3, 2, 1, bias=False),
            nn.BatchNorm2d(feats),
            nn.ReLU(),
            nn.Conv2d(feats, feats, 3, 1, 1, groups=feats, bias=False),
            nn.Conv2d(feats, feats, 1, bias=False),
            nn.BatchNorm2d(feats),
            nn.ReLU(),
        )
        self.groups, self.max_disp = groups, max_disp
        self.agg = nn.Sequential(
            nn.Conv3d(groups, 8, 3, 1, 1, bias=False), nn.BatchNorm3d(8), nn.ReLU()
        )
        self.down = nn.Sequential(
            nn.Conv3d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm3d(16), nn.ReLU()
        )
        self.up = nn.Sequential(
            nn.ConvTranspose3d(16, 8, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm3d(8)
        )
        self.classify = nn.Conv3d(8, 1, 3, 1, 1)

    def forward(self, left, right):
        fl, fr = self.feature(left), self.feature(right)
        b, c, h, w = fl.shape
        vols = []
        for d in range(self.max_disp):
            shifted = F.pad(fr[:, :, :, : w - d], (d, 0, 0, 0)) if d else fr
            corr = (fl * shifted).view(b, self.groups, c // self.groups, h, w).mean(2)
            vols.append(corr)
        cost = torch.stack(vols, 2)  # [B, G, D, H, W]
        x = self.agg(cost)
        x = F.relu(self.up(self.down(x)) + x)
        prob = F.softmax(self.classify(x).squeeze(1), 1)
        disp = torch.arange(self.max_disp, dtype=prob.dtype).view(1, -1, 1, 1)
        return (prob * disp).sum(1)


class SpeakerEncoder(nn.Module):
    """MockingBird's speaker encoder (GE2E, Wan et al. 2018): 3-layer LSTM over mel frames,
    linear projection + ReLU of the last hidden state, L2-normalized embedding."""

    def __init__(self, mels=16, hidden=32, emb=24):
        super().__init__()
        self.lstm = nn.LSTM(mels, hidden, num_layers=3, batch_first=True)
        self.linear = nn.Linear(hidden, emb)

    def forward(self, mels):
        _, (hidden, _) = self.lstm(mels)
        raw = F.relu(self.linear(hidden[-1]))
        return raw / (torch.norm(raw, dim=1, keepdim=True) + 1e-5)


class FourierUnit(nn.Module):
    """LaMa's FFC spectral transform: rfft2 -> (real, imag) as channels -> 1x1 conv, BN,
    ReLU -> irfft2."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(2 * c, 2 * c, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * c)

    def forward(self, x):
        b, c, h, w = x.shape
        f = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        f = torch.stack((f.real, f.imag), dim=-1).permute(0, 1, 4, 2, 3).reshape(b, 2 * c, h, -1)
        f = F.relu(self.bn(self.conv(f)))
        f = f.view(b, c, 2, h, -1).permute(0, 1, 3, 4, 2).contiguous()
        return torch.fft.irfftn(
            torch.complex(f[..., 0], f[..., 1]), s=(h, w), dim=(-2, -1), norm="ortho"
        )


class LaMaFFC(nn.Module):
    """LaMa (Suvorov et al. 2022) generator core: downsampling convs, fast Fourier convolution
    residual blocks (local conv branch + global FourierUnit branch), upsampling."""

    def __init__(self, c=8):
        super().__init__()
        self.down = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(4, c, 3),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, 2, 1),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
        )
        self.local = nn.Conv2d(c, c, 3, padding=1)
        self.l2g = nn.Conv2d(c, c, 3, padding=1)
        self.g2l = nn.Conv2d(c, c, 3, padding=1)
        self.fu = FourierUnit(c)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 3, 2, 1, output_padding=1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, 3, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, img, mask):
        x = self.down(torch.cat([img * (1 - mask), mask], 1))
        xl, xg = x.chunk(2, 1)
        yl = F.relu(self.local(xl) + self.g2l(xg))
        yg = F.relu(self.l2g(xl) + self.fu(xg))
        return self.up(torch.cat([yl + xl, yg + xg], 1))


TORCH_FAMILIES.update(
    {
        "edsr": (EDSR, (1, 3, 12, 12)),
        "temporal_conv": (TemporalModel, (1, 27, 17, 2)),
        "opadd": (OpAdd, ((1, 3, 8, 8), (1, 4, 8, 8))),
        "stereo": (StereoNet, ((1, 3, 16, 16), (1, 3, 16, 16))),
        "speaker_encoder": (SpeakerEncoder, (1, 10, 16)),
        "lama_ffc": (LaMaFFC, ((1, 3, 16, 16), (1, 1, 16, 16))),
    }
)


class ConstantPad(nn.Module):
    """F.pad with 4 values (W left/right, H top/bottom) on a 4-D tensor (N6)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(F.pad(x, (2, 0, 1, 0), value=0.5))


TORCH_FAMILIES["constant_pad"] = (ConstantPad, (1, 3, 8, 6))


class LegacyEmptyCat(nn.Module):
    """torch.cat with a legacy empty 1-D tensor (Flaubert/XLM key-value cache start, N7)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("cache", torch.zeros(0))
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.cat([self.cache, self.lin(x)], dim=-2)


TORCH_FAMILIES["legacy_empty_cat"] = (LegacyEmptyCat, (1, 3, 4))
