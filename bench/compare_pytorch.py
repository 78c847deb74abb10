"""PyTorch side of bench/compare-pytorch.ts: the same MLP, initial weights, data order and
hyperparameters, on one thread. Reads the files the TypeScript side wrote; prints JSON."""
import json
import pathlib
import sys
import time

import numpy as np
import torch

d = pathlib.Path(sys.argv[1])
cfg = json.loads((d / "config.json").read_text())
torch.set_num_threads(1)
layers = cfg["layers"]
init = np.fromfile(d / "init.f32", dtype=np.float32)
x_train = torch.from_numpy(np.fromfile(d / "train_x.f32", dtype=np.float32).reshape(cfg["trainN"], layers[0]))
y_train = torch.from_numpy(np.fromfile(d / "train_y.u8", dtype=np.uint8).astype(np.int64))
x_test = torch.from_numpy(np.fromfile(d / "test_x.f32", dtype=np.float32).reshape(cfg["testN"], layers[0]))
y_test = torch.from_numpy(np.fromfile(d / "test_y.u8", dtype=np.uint8).astype(np.int64))
orders = np.fromfile(d / "orders.i32", dtype=np.int32).reshape(cfg["epochs"], cfg["trainN"])


def model_from_flat():
    mods, off = [], 0
    for i in range(1, len(layers)):
        fan_in, fan_out = layers[i - 1], layers[i]
        lin = torch.nn.Linear(fan_in, fan_out)
        w = init[off:off + fan_in * fan_out].reshape(fan_in, fan_out)  # our layout: W is in x out
        off += fan_in * fan_out
        b = init[off:off + fan_out]
        off += fan_out
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        mods.append(lin)
        if i < len(layers) - 1:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def train(model, batch, epoch_orders):
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    for order in epoch_orders:
        idx = torch.from_numpy(order.astype(np.int64))
        for s in range(0, len(idx), batch):
            b = idx[s:s + batch]
            opt.zero_grad()
            loss_fn(model(x_train[b]), y_train[b]).backward()
            opt.step()


m = model_from_flat()
train(m, cfg["accuracyBatch"], orders)
with torch.no_grad():
    acc = (m(x_test).argmax(1) == y_test).float().mean().item()

speed = {}
for b in cfg["speedBatches"]:
    train(model_from_flat(), b, orders[:1])  # warm-up
    t = time.perf_counter()
    train(model_from_flat(), b, orders[1:2])
    speed[b] = round(cfg["trainN"] / (time.perf_counter() - t))

print(json.dumps({"accuracy": acc, "samplesPerSecond": speed, "torch": torch.__version__}))
