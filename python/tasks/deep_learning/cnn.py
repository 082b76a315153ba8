"""CNN image classification with PyTorch: LeNet-5, a configurable small CNN, ResNet-18, VGG-16,
MobileNetV2 and a CNN with squeeze-and-excitation attention (Rust twins: rust/cnn for tch and
candle, rust/cnn-burn for burn).
The protocol (mlbench.training) owns the epochs, clocks and artifacts; this file holds the networks,
their initialisation and one epoch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import torch
import torch.nn.functional as F
from torch import nn

from mlbench.errors import UsageError
from mlbench.harness import run_task
from mlbench.torch_net import builder, flop_count, initial_weights, kernels, setup
from mlbench.training import NetShape, TrainClassifier

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # PyTorch's convention: running = (1 - m) * running + m * batch statistic
SE_REDUCTION = 8  # squeeze-and-excitation: hidden units = channels / 8
VGG_BLOCK = 32  # VGG-16's five 2x2 pools need sides divisible by 32: smaller inputs are zero-padded to it
# MobileNetV2's inverted residual stages (expansion t, channels c, blocks n, first stride s): the
# paper's table with CIFAR strides (stem stride 1, the 24-channel stage stride 1: 32 px -> 4 px).
MOBILENET_V2_STAGES = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                       [6, 160, 3, 2], [6, 320, 1, 1]]


class LeNet(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling; 28x28 inputs are padded by 2."""

    def __init__(self, shape: NetShape) -> None:
        super().__init__()
        pad = 2 if shape.height == 28 else 0
        self.conv1 = nn.Conv2d(shape.channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = ((shape.height + 2 * pad - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, shape.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SimpleCNN(nn.Module):
    """conv3x3(16)[BN] ReLU pool | conv3x3(16)[BN] ReLU conv3x3(16)[BN] (+skip) ReLU pool |
    dropout, linear 64, ReLU, dropout, linear classes."""

    def __init__(self, shape: NetShape, use_batch_norm: bool, use_residual: bool, dropout_rate: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(shape.channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        norm = (lambda: nn.BatchNorm2d(16, eps=BN_EPS, momentum=BN_MOMENTUM)) if use_batch_norm else nn.Identity
        self.bn1, self.bn2, self.bn3 = norm(), norm(), norm()
        self.use_residual = use_residual
        self.dropout = nn.Dropout(dropout_rate)
        self.fc1 = nn.Linear(16 * (shape.height // 4) * (shape.width // 4), 64)
        self.fc2 = nn.Linear(64, shape.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(x)))))
        x = F.max_pool2d(F.relu(y + x if self.use_residual else y), 2)
        x = self.dropout(x.flatten(1))
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018): x * sigmoid(fc2(ReLU(fc1(global average of x))))."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * weights[:, :, None, None]


class AttentionCNN(nn.Module):
    """[conv3x3 BN ReLU SE maxpool2] x 2 (32, 64 channels), global average pool, linear."""

    def __init__(self, shape: NetShape) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(shape.channels, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.se1 = SqueezeExcitation(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.se2 = SqueezeExcitation(64)
        self.fc = nn.Linear(64, shape.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.se1(F.relu(self.bn1(self.conv1(x)))), 2)
        x = F.max_pool2d(self.se2(F.relu(self.bn2(self.conv2(x)))), 2)
        return self.fc(x.mean(dim=(2, 3)))


def vgg_padding(shape: NetShape) -> int:
    """Zero rows (and columns) added on each side so that the (square) images' side becomes a multiple
    of VGG_BLOCK: 28 -> 32 adds 2, 16 -> 32 adds 8. The same rule in every framework (bench-core)."""
    side = shape.height
    if shape.width != side:
        raise UsageError(f"vgg16: needs square images, not {side}x{shape.width}")
    total = -side % VGG_BLOCK
    if total % 2:
        raise UsageError(f"vgg16: images of side {side} cannot be padded equally on both sides to a "
                         f"multiple of {VGG_BLOCK}")
    return total // 2


def torchvision_init(model: nn.Module) -> None:
    """torchvision's initialisation of VGG and MobileNetV2: Kaiming-normal (fan_out) convolutions, unit
    batch norms, N(0, 0.01) linear layers, zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
        if isinstance(module, nn.Conv2d | nn.BatchNorm2d | nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class VGG16(nn.Module):
    """VGG configuration D (Simonyan and Zisserman 2015; torchvision's `make_layers`, names and
    init): 13 3x3 convolutions [with batch norm] and five 2x2 max-pools, then the CIFAR classifier
    512-512-classes (torchvision's 7x7 average pool and 4096-wide layers are for 224 px inputs).
    Inputs whose side is not a multiple of 32 are zero-padded to it first (vgg_padding)."""

    def __init__(self, shape: NetShape, use_batch_norm: bool, dropout_rate: float) -> None:
        from torchvision.models.vgg import cfgs, make_layers

        super().__init__()
        self.pad = vgg_padding(shape)
        self.features = make_layers(cfgs["D"], batch_norm=use_batch_norm)
        self.features[0] = nn.Conv2d(shape.channels, 64, kernel_size=3, padding=1)  # the dataset's channels
        side = (shape.height + 2 * self.pad) // VGG_BLOCK
        self.classifier = nn.Sequential(nn.Linear(512 * side * side, 512), nn.ReLU(True), nn.Dropout(dropout_rate),
                                        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(dropout_rate),
                                        nn.Linear(512, shape.classes))
        torchvision_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(F.pad(x, [self.pad] * 4)).flatten(1))


def vgg16(params: dict[str, Any], shape: NetShape) -> nn.Module:
    return VGG16(shape, params["use_batch_norm"], params["dropout_rate"])


def mobilenet(params: dict[str, Any], shape: NetShape) -> nn.Module:
    """torchvision's MobileNetV2 (width 1.0, ReLU6, 1280-wide last layer) with CIFAR strides: the stem
    is a stride-1 3x3 convolution taking the dataset's channels, MOBILENET_V2_STAGES the blocks."""
    from torchvision.models import MobileNetV2

    model = MobileNetV2(num_classes=shape.classes, width_mult=1.0, inverted_residual_setting=MOBILENET_V2_STAGES,
                        dropout=params["dropout_rate"])
    model.features[0][0] = nn.Conv2d(shape.channels, 32, kernel_size=3, stride=1, padding=1, bias=False)
    torchvision_init(model)
    return model


def attention_cnn(params: dict[str, Any], shape: NetShape) -> nn.Module:
    return AttentionCNN(shape)


def resnet18(params: dict[str, Any], shape: NetShape) -> nn.Module:
    """torchvision's ResNet-18 with the first convolution taking the dataset's channels; the `cifar`
    stem is a 3x3 stride-1 convolution without the max-pool (the usual change for 28-32 px inputs)."""
    from torchvision.models import resnet18 as torchvision_resnet18

    model = torchvision_resnet18(weights=None, num_classes=shape.classes)
    if params["stem"] == "cifar":
        model.conv1 = nn.Conv2d(shape.channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(shape.channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's rule
    return model


def lenet(params: dict[str, Any], shape: NetShape) -> nn.Module:
    return LeNet(shape)


def simple_cnn(params: dict[str, Any], shape: NetShape) -> nn.Module:
    return SimpleCNN(shape, params["use_batch_norm"], params["use_residual"], params["dropout_rate"])


ALGORITHMS = {
    "lenet": TrainClassifier(init=initial_weights(lenet), build=builder(lenet), flops=flop_count(lenet)),
    "simple_cnn": TrainClassifier(init=initial_weights(simple_cnn), build=builder(simple_cnn),
                                  flops=flop_count(simple_cnn)),
    "resnet18": TrainClassifier(init=initial_weights(resnet18), build=builder(resnet18), flops=flop_count(resnet18)),
    "attention_cnn": TrainClassifier(init=initial_weights(attention_cnn), build=builder(attention_cnn),
                                     flops=flop_count(attention_cnn)),
    "vgg16": TrainClassifier(init=initial_weights(vgg16), build=builder(vgg16), flops=flop_count(vgg16)),
    "mobilenet": TrainClassifier(init=initial_weights(mobilenet), build=builder(mobilenet),
                                 flops=flop_count(mobilenet)),
}

if __name__ == "__main__":
    run_task(ALGORITHMS, torch.__version__, ["torch", "numpy"], setup=setup, kernels=kernels)
